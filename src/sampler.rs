//! RSS over time, sampled from outside the measured process.
//!
//! The sampler runs in the parent on its own thread and reads `/proc/<pid>/statm`
//! at a fixed interval: cheap (one small read), and it never allocates in the child.
//! Samples give the shape of memory over time; exact peaks come from the child's
//! kernel high-water marks (see `probe`), so the sampler can afford to be coarse.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::monotonic_ns;

/// RSS samples of one process, columnar so large timelines stay compact in JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    /// Sampling interval asked for, in milliseconds.
    pub interval_ms: f64,
    /// Seconds since the child was started.
    pub t_s: Vec<f64>,
    /// Resident set size at that time, bytes.
    pub rss_bytes: Vec<u64>,
}

impl Timeline {
    /// The largest sampled RSS within `[from_s, to_s]`, if any sample fell there.
    pub fn peak_between(&self, from_s: f64, to_s: f64) -> Option<u64> {
        self.t_s
            .iter()
            .zip(&self.rss_bytes)
            .filter(|(t, _)| **t >= from_s && **t <= to_s)
            .map(|(_, r)| *r)
            .max()
    }

    /// The largest sampled RSS overall.
    pub fn peak(&self) -> u64 {
        self.rss_bytes.iter().copied().max().unwrap_or(0)
    }
}

/// Reads the resident set size of `pid` in bytes (`None` once it is gone).
pub fn rss_of(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident * page_size())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// A running sampler; stop it to get the timeline.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    latest: Arc<AtomicU64>,
    timeline: Arc<Mutex<Timeline>>,
    handle: Option<JoinHandle<()>>,
}

/// Called on each sample with the RSS; returning `true` asks the sampler to stop.
pub type OnSample = Box<dyn FnMut(f64, u64) -> bool + Send>;

impl Sampler {
    /// Starts sampling `pid` every `interval`, with times relative to `origin_ns`.
    pub fn start(pid: i32, interval: Duration, origin_ns: u64, mut on_sample: OnSample) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let latest = Arc::new(AtomicU64::new(0));
        let timeline = Arc::new(Mutex::new(Timeline {
            interval_ms: interval.as_secs_f64() * 1e3,
            ..Timeline::default()
        }));
        let handle = {
            let (stop, latest, timeline) = (stop.clone(), latest.clone(), timeline.clone());
            std::thread::Builder::new()
                .name("oomlab-sampler".into())
                .spawn(move || {
                    let mut next = monotonic_ns();
                    while !stop.load(Ordering::Relaxed) {
                        let Some(rss) = rss_of(pid) else { break };
                        let now = monotonic_ns();
                        let t = now.saturating_sub(origin_ns) as f64 / 1e9;
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
                            std::thread::sleep(Duration::from_nanos(next - now));
                        } else {
                            next = now;
                        }
                    }
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

    /// Stops sampling and returns what was seen.
    pub fn finish(mut self) -> Timeline {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.timeline
            .lock()
            .map(|tl| tl.clone())
            .unwrap_or_default()
    }
}
