//! The global allocator: the system allocator, or dhat when heap profiling is on.
//!
//! RSS figures are only comparable if every run allocates the same way, so by
//! default every allocation goes straight to [`System`] (glibc malloc, tuned in
//! `child.rs`) at the cost of one relaxed atomic load. Heap profiling is
//! switched on once, at child start, and only when the job asks for it
//! (`--heap-profile`, or the gate's heap run). From then on allocations go
//! through [`dhat::Alloc`], which counts every block exactly.
//!
//! `dhat::Alloc` is not free even with no profiler running: every call takes
//! dhat's global mutex, and with a profiler it also captures a backtrace. That
//! is why it is never the allocator of a run that did not ask for it.
//!
//! dhat's own figures (`HeapStats`) are totals since the profiler started, and
//! its `max_bytes` is the global peak, which cannot be reset per stage. To get
//! an exact per-stage heap peak this allocator also keeps a signed counter of
//! live bytes and a resettable high-water mark over it, updated with the same
//! sizes dhat sees. A stage's heap peak is then dhat's live bytes at the stage
//! start plus the largest rise of that counter within the stage.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The allocator `main.rs` installs as `#[global_allocator]`.
///
/// Forwards to [`System`] unless [`HeapProfiler::start`] switched heap profiling
/// on, so runs without it allocate exactly as the bare system allocator would.
pub struct OomlabAlloc;

/// Whether allocations go through dhat (set once, at child start).
static PROFILING: AtomicBool = AtomicBool::new(false);
/// Live bytes of the program since profiling started (may go negative when
/// blocks allocated before the switch are freed: only differences are used).
static LIVE: AtomicI64 = AtomicI64::new(0);
/// High-water mark of [`LIVE`] since the last [`stage_start`].
static HIGH: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// Set while this thread is inside dhat: allocations dhat makes for its
    /// own bookkeeping come back through this allocator and must not count.
    static IN_DHAT: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as inside dhat; returns whether it already was.
fn enter_dhat() -> bool {
    IN_DHAT.try_with(|c| c.replace(true)).unwrap_or(true)
}

fn leave_dhat(was: bool) {
    if !was {
        let _ = IN_DHAT.try_with(|c| c.set(false));
    }
}

fn grow(bytes: i64) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    HIGH.fetch_max(now, Ordering::Relaxed);
}

fn shrink(bytes: i64) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` or `dhat::Alloc` (which forwards to
// `System`), so blocks from either path can be freed by either.
unsafe impl GlobalAlloc for OomlabAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !PROFILING.load(Ordering::Relaxed) {
            return System.alloc(layout);
        }
        let was = enter_dhat();
        let ptr = dhat::Alloc.alloc(layout);
        leave_dhat(was);
        if !was && !ptr.is_null() {
            grow(layout.size() as i64);
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !PROFILING.load(Ordering::Relaxed) {
            // calloc: large zeroed blocks are not touched, as without oomlab.
            return System.alloc_zeroed(layout);
        }
        let ptr = self.alloc(layout);
        if !ptr.is_null() {
            std::ptr::write_bytes(ptr, 0, layout.size());
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !PROFILING.load(Ordering::Relaxed) {
            return System.dealloc(ptr, layout);
        }
        let was = enter_dhat();
        dhat::Alloc.dealloc(ptr, layout);
        leave_dhat(was);
        if !was {
            shrink(layout.size() as i64);
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !PROFILING.load(Ordering::Relaxed) {
            return System.realloc(ptr, layout, new_size);
        }
        let was = enter_dhat();
        let new_ptr = dhat::Alloc.realloc(ptr, layout, new_size);
        leave_dhat(was);
        if !was && !new_ptr.is_null() {
            let delta = new_size as i64 - layout.size() as i64;
            if delta >= 0 {
                grow(delta);
            } else {
                shrink(-delta);
            }
        }
        new_ptr
    }
}

/// Keeps dhat's profiler alive for the rest of the child; heap profiling is on
/// while it exists.
///
/// Built in dhat's testing mode, which neither writes `dhat-heap.json` into the
/// working directory nor prints a summary on drop: the figures leave the child
/// only through stage markers.
pub struct HeapProfiler {
    _profiler: dhat::Profiler,
}

impl HeapProfiler {
    /// Starts dhat heap profiling and routes every later allocation through it.
    ///
    /// Call once, first thing in the child, only when the job asked for it.
    pub fn start() -> Self {
        let profiler = dhat::Profiler::builder()
            .testing()
            .trim_backtraces(Some(4))
            .build();
        PROFILING.store(true, Ordering::SeqCst);
        Self {
            _profiler: profiler,
        }
    }
}

impl Drop for HeapProfiler {
    fn drop(&mut self) {
        PROFILING.store(false, Ordering::SeqCst);
    }
}

/// Whether this process is heap profiling (so stages report heap figures).
pub fn profiling() -> bool {
    PROFILING.load(Ordering::Relaxed)
}

/// Heap state at a stage start, to be turned into figures at its end.
pub struct StageHeap {
    stats: dhat::HeapStats,
    live: i64,
}

/// Snapshots the heap at a stage start and resets the per-stage high-water mark.
///
/// `None` when heap profiling is off.
pub fn stage_start() -> Option<StageHeap> {
    if !profiling() {
        return None;
    }
    let stats = dhat::HeapStats::get();
    let live = LIVE.load(Ordering::SeqCst);
    HIGH.store(live, Ordering::SeqCst);
    Some(StageHeap { stats, live })
}

/// What the heap did during one stage, exact for a given build and input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageHeapFigures {
    /// Largest number of live heap bytes at any moment of the stage (all
    /// threads, bytes requested from the allocator, without malloc overhead).
    pub peak_bytes: u64,
    /// Bytes allocated during the stage (a `realloc` counts its new size).
    pub total_bytes: u64,
    /// Number of allocations during the stage (a `realloc` counts as one).
    pub allocs: u64,
    /// Live heap bytes when the stage started.
    pub start_bytes: u64,
    /// Live heap bytes when the stage ended.
    pub end_bytes: u64,
}

impl StageHeap {
    /// The stage's figures, read now (call right after the stage's body).
    pub fn finish(self) -> StageHeapFigures {
        let high = HIGH.load(Ordering::SeqCst);
        let end = dhat::HeapStats::get();
        let rise = (high - self.live).max(0) as u64;
        let start_bytes = self.stats.curr_bytes as u64;
        StageHeapFigures {
            peak_bytes: (start_bytes + rise).max(end.curr_bytes as u64),
            total_bytes: end.total_bytes.saturating_sub(self.stats.total_bytes),
            allocs: end.total_blocks.saturating_sub(self.stats.total_blocks),
            start_bytes,
            end_bytes: end.curr_bytes as u64,
        }
    }
}
