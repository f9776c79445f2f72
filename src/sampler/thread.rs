//! The sampling thread: one measurement every interval on a thread of its
//! own, kept on schedule, and what that cost ([`SamplerStats`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::procfs::Statm;
use super::timeline::Timeline;
use super::tree::ProcessTree;
use crate::protocol::monotonic_ns;

/// What measuring cost and how steady it was: a user sees in the report
/// that the sampler did not take the CPU the command needed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SamplerStats {
    /// Samples taken.
    pub samples: u64,
    /// CPU seconds (user + system) the sampler thread used, from
    /// `getrusage(RUSAGE_THREAD)`.
    pub cpu_s: f64,
    /// Seconds from the first sample to the last.
    pub wall_s: f64,
    /// The interval asked for, milliseconds.
    pub interval_ms: f64,
    /// The mean interval between samples achieved, milliseconds.
    pub achieved_interval_ms: f64,
    /// The largest distance of one interval from the one asked for, milliseconds.
    pub worst_jitter_ms: f64,
    /// CPU seconds all of oomlab's threads used while the child ran (the
    /// sampler, the output pumps, the live display), children not included.
    #[serde(default)]
    pub oomlab_cpu_s: f64,
}

impl SamplerStats {
    /// The sampler's CPU as a percentage of one core over the run.
    pub fn cpu_pct_of_core(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.cpu_s / self.wall_s * 100.0
        } else {
            0.0
        }
    }
}

/// CPU seconds (user + system) the calling thread has used.
pub fn thread_cpu_s() -> f64 {
    cpu_s(libc::RUSAGE_THREAD)
}

/// CPU seconds (user + system) this process's threads have used (its
/// children not included): what oomlab itself costs.
pub fn process_cpu_s() -> f64 {
    cpu_s(libc::RUSAGE_SELF)
}

fn cpu_s(who: libc::c_int) -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into `usage`.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Sleeps until `deadline_ns` on the monotonic clock (`clock_nanosleep`
/// with `TIMER_ABSTIME`): a relative sleep worked out from a clock reading
/// wakes late by whatever passed between the reading and the sleep (a
/// preemption, on a loaded machine), and a signal would restart it from the
/// full length; an absolute deadline is the tick's own, whatever happened.
fn sleep_until(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec and no remainder is asked for
    // (with TIMER_ABSTIME the kernel ignores it).
    while unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    } == libc::EINTR
    {}
}

/// A running sampler; stop it to get the timeline.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    latest: Arc<AtomicU64>,
    timeline: Arc<Mutex<Timeline>>,
    handle: Option<JoinHandle<SamplerStats>>,
}

/// Called on each sample with the RSS; returning `true` asks the sampler to stop.
pub type OnSample = Box<dyn FnMut(f64, u64) -> bool + Send>;

impl Sampler {
    /// Starts sampling `pid` every `interval`, with times relative to `origin_ns`.
    pub fn start(pid: i32, interval: Duration, origin_ns: u64, on_sample: OnSample) -> Self {
        let statm = Statm::open(pid);
        Self::spawn(interval, origin_ns, on_sample, move |_| {
            statm.as_ref()?.rss().ok().map(|r| r.unwrap_or(0))
        })
    }

    /// Starts sampling `root` and all its descendants (RSS summed), keeping each
    /// process's kernel high-water mark for stage boundaries ([`ProcessTree`]).
    pub fn start_tree(
        tree: Arc<Mutex<ProcessTree>>,
        interval: Duration,
        origin_ns: u64,
        on_sample: OnSample,
    ) -> Self {
        Self::spawn(interval, origin_ns, on_sample, move |t| {
            tree.lock().ok()?.sample(t)
        })
    }

    fn spawn(
        interval: Duration,
        origin_ns: u64,
        mut on_sample: OnSample,
        mut measure: impl FnMut(f64) -> Option<u64> + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let latest = Arc::new(AtomicU64::new(0));
        let interval_ms = interval.as_secs_f64() * 1e3;
        // Room for the first minutes, so a sample rarely grows the vectors.
        let room = (120_000.0 / interval_ms.max(1.0)) as usize;
        let timeline = Arc::new(Mutex::new(Timeline {
            interval_ms,
            t_s: Vec::with_capacity(room),
            rss_bytes: Vec::with_capacity(room),
            several: None,
        }));
        let handle = {
            let (stop, latest, timeline) = (stop.clone(), latest.clone(), timeline.clone());
            std::thread::Builder::new()
                .name("oomlab-sampler".into())
                .spawn(move || {
                    let mut stats = SamplerStats {
                        interval_ms,
                        ..SamplerStats::default()
                    };
                    let (mut first, mut last) = (None, 0u64);
                    let mut next = monotonic_ns();
                    while !stop.load(Ordering::Relaxed) {
                        let now_ns = monotonic_ns();
                        let t = now_ns.saturating_sub(origin_ns) as f64 / 1e9;
                        let Some(rss) = measure(t) else { break };
                        if first.is_some() {
                            let gap_ms = now_ns.saturating_sub(last) as f64 / 1e6;
                            stats.worst_jitter_ms =
                                stats.worst_jitter_ms.max((gap_ms - interval_ms).abs());
                        }
                        first.get_or_insert(now_ns);
                        last = now_ns;
                        stats.samples += 1;
                        latest.store(rss, Ordering::Relaxed);
                        if let Ok(mut tl) = timeline.lock() {
                            tl.t_s.push(t);
                            tl.rss_bytes.push(rss);
                        }
                        if on_sample(t, rss) {
                            break;
                        }
                        next += interval.as_nanos() as u64;
                        let now = monotonic_ns();
                        if next > now {
                            sleep_until(next);
                        } else {
                            next = now;
                        }
                    }
                    if let Some(first) = first {
                        stats.wall_s = last.saturating_sub(first) as f64 / 1e9;
                        if stats.samples > 1 {
                            stats.achieved_interval_ms =
                                stats.wall_s * 1e3 / (stats.samples - 1) as f64;
                        }
                    }
                    stats.cpu_s = thread_cpu_s();
                    stats
                })
                .ok()
        };
        Self {
            stop,
            latest,
            timeline,
            handle,
        }
    }

    /// The most recent sample, for live displays.
    pub fn latest(&self) -> u64 {
        self.latest.load(Ordering::Relaxed)
    }

    /// Stops sampling and returns what was seen and what seeing it cost.
    pub fn finish(mut self) -> (Timeline, SamplerStats) {
        self.stop.store(true, Ordering::Relaxed);
        let stats = self
            .handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let timeline = self
            .timeline
            .lock()
            .map(|tl| tl.clone())
            .unwrap_or_default();
        (timeline, stats)
    }
}
