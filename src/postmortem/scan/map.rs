//! Reading a log file through memory maps instead of copies.
//!
//! A `read` copies every byte from the page cache into the reader's buffer:
//! on a log already in memory that copy was a quarter of a postmortem's
//! time. A map lets the scan read the page cache itself. The file is mapped
//! [`WINDOW_BYTES`] at a time (each window is unmapped before the next, so
//! the pages it holds stay few whatever the log) and each window is scanned
//! a buffer's worth of whole lines at a time, as [`Analyzer::read_all`]
//! does, with the same findings (the tests check both against feeding every
//! line).
//!
//! A mapped file that shrinks while it is read (a `copytruncate` rotation, a
//! restarted job writing its log afresh) raises `SIGBUS` on the first page
//! past its new end, which would kill the process. So while a window is
//! scanned a handler stands by: a fault inside the window gets a page of
//! zeros mapped in its place, and the scan ends with a clear error (the log
//! changed under it; run again). A fault anywhere else still kills, as it
//! would have. A pipe, a non-regular file or a small log is read with `read`
//! ([`Analyzer::read_all`]) instead.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use memchr::{memchr, memrchr};
use memmap2::MmapOptions;

use super::bytes::Marks;
use super::read::kept;
use super::Analyzer;

/// Bytes mapped at a time: enough that mapping costs little per byte, few
/// enough that the pages mapped stay a small part of the peak.
pub const WINDOW_BYTES: usize = 4 << 20;
/// Smaller logs are read: a map saves nothing worth its setup.
pub const MIN_MAP_BYTES: u64 = 8 << 20;

/// The size of the page maps are aligned to.
fn page_bytes() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

/// Whether `file` is a log to map rather than read: a regular file, large
/// enough to gain from it. Its length then, the most the maps cover.
fn worth_mapping(file: &File) -> Option<u64> {
    let meta = file.metadata().ok()?;
    (meta.is_file() && meta.len() >= MIN_MAP_BYTES).then_some(meta.len())
}

/// The `SIGBUS` handler's view of the window being scanned: its address
/// range, and whether a page of it was past the file's end.
static WINDOW_START: AtomicUsize = AtomicUsize::new(0);
static WINDOW_END: AtomicUsize = AtomicUsize::new(0);
static SHRANK: AtomicBool = AtomicBool::new(false);
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// One mapped scan at a time in a process: the handler watches one window.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Maps a page of zeros over a faulting page of the window (the scan's
/// reads go on, and the scan reports the shrink); any other fault gets the
/// default action back, so the fault happens again and kills, as without
/// this handler. Only atomics and system calls: safe in a signal handler.
extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, end) = (
        WINDOW_START.load(Ordering::SeqCst),
        WINDOW_END.load(Ordering::SeqCst),
    );
    if (start..end).contains(&addr) {
        let page = PAGE.load(Ordering::Relaxed);
        // SAFETY: the page lies in the window's map, which the scan owns
        // and reads only; MAP_FIXED replaces just that page.
        let zeros = unsafe {
            libc::mmap(
                (addr & !(page - 1)) as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            SHRANK.store(true, Ordering::SeqCst);
            return;
        }
    }
    // SAFETY: a zeroed sigaction with SIG_DFL is the default action.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
    }
}

/// Installs [`on_sigbus`] (once per process); false when it could not be,
/// and the log is then read instead.
fn guard_installed(page: usize) -> bool {
    static INSTALL: Once = Once::new();
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    INSTALL.call_once(|| {
        PAGE.store(page, Ordering::Relaxed);
        // SAFETY: a zeroed sigaction is valid; the handler has the
        // SA_SIGINFO signature and touches only atomics and system calls.
        let ok = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) == 0
        };
        INSTALLED.store(ok, Ordering::SeqCst);
    });
    INSTALLED.load(Ordering::SeqCst)
}

/// Where the window after a scanned one starts.
enum Next {
    /// No window: the file is read.
    Done,
    /// Right after this one.
    Window,
    /// At the unfinished line of this many bytes that ends this one.
    Line(usize),
}

/// What a scan that met a page past the file's end says.
fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file shrank while it was read (truncated or rotated); run again once it is complete",
    )
}

impl Analyzer {
    /// Reads a log file through the analyzer: mapped when it
    /// [looks finished](worth_mapping), read otherwise; the same findings
    /// either way.
    pub fn read_file(&mut self, file: File) -> io::Result<()> {
        match worth_mapping(&file) {
            Some(len) if guard_installed(page_bytes()) => self.map_all(&file, len),
            _ => self.read_all(file),
        }
    }

    /// Reads the first `len` bytes of `file` through maps of a window at a
    /// time: [`Analyzer::read_all`] with the page cache for its buffer.
    pub(super) fn map_all(&mut self, file: &File, len: u64) -> io::Result<()> {
        let page = page_bytes();
        if !guard_installed(page) {
            return Err(io::Error::other("cannot watch for SIGBUS"));
        }
        // A poisoned lock only means another scan panicked.
        let _one = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A window holds a longest kept line and its start, page aligned.
        let window = self
            .window_bytes
            .max(self.chunk_bytes)
            .max(2 * (self.max_line + 1) + page)
            .next_multiple_of(page);
        let (mut lower, mut marks) = (Vec::new(), Marks::default());
        // The window's file offset (page aligned), and where in it the next
        // line starts.
        let (mut offset, mut skip) = (0u64, 0usize);
        // The head of a line longer than the cap, while its tail is skipped.
        let mut long_head: Option<Vec<u8>> = None;
        while offset < len {
            let size = usize::try_from(len - offset).map_or(window, |left| left.min(window));
            // SAFETY: the bytes are only read, and a page the file no longer
            // has reads as zeros (on_sigbus) before the scan errs.
            let map = unsafe {
                MmapOptions::new()
                    .offset(offset)
                    .len(size)
                    .populate()
                    .map(file)?
            };
            let last = offset + size as u64 >= len;
            let range = map.as_ptr_range();
            WINDOW_START.store(range.start as usize, Ordering::SeqCst);
            WINDOW_END.store(range.end as usize, Ordering::SeqCst);
            let result = self.scan_map(&map[skip..], last, &mut long_head, &mut lower, &mut marks);
            WINDOW_END.store(0, Ordering::SeqCst);
            drop(map);
            if SHRANK.swap(false, Ordering::SeqCst) {
                return Err(shrank());
            }
            match result {
                Next::Done => break,
                Next::Window => {
                    offset += size as u64;
                    skip = 0;
                }
                Next::Line(unfinished) => {
                    // Map again from the page the unfinished line starts in.
                    let start = offset + (size - unfinished) as u64;
                    let aligned = start - start % page as u64;
                    skip = (start - aligned) as usize;
                    offset = aligned;
                }
            }
        }
        if let Some(head) = long_head {
            let (line, truncated) = kept(&head, self.max_line);
            self.feed(line, truncated);
        }
        // `feed` counts only what each line kept; the map had every byte.
        self.out.source.bytes = len;
        Ok(())
    }

    /// Scans one window from where its first new line starts (`data`, the
    /// file's last bytes when `last`), finishing first a long line whose
    /// tail is being skipped, and says where the next window starts.
    fn scan_map(
        &mut self,
        mut data: &[u8],
        last: bool,
        long_head: &mut Option<Vec<u8>>,
        lower: &mut Vec<u8>,
        marks: &mut Marks,
    ) -> Next {
        if let Some(head) = long_head {
            let Some(nl) = memchr(b'\n', data) else {
                return Next::Window;
            };
            let (line, truncated) = kept(head, self.max_line);
            self.feed(line, truncated);
            *long_head = None;
            data = &data[nl + 1..];
        }
        let end = memrchr(b'\n', data).map_or(0, |i| i + 1);
        self.scan_window(&data[..end], lower, marks);
        let rest = &data[end..];
        if last {
            if !rest.is_empty() {
                // The last line, without a line ending.
                let (line, truncated) = kept(rest, self.max_line);
                self.feed(line, truncated);
            }
            Next::Done
        } else if rest.len() > self.max_line {
            // Longer than the cap: keep its head, skip to its end.
            *long_head = Some(rest[..self.max_line + 1].to_vec());
            Next::Window
        } else {
            Next::Line(rest.len())
        }
    }

    /// Scans whole lines of a window a buffer's worth at a time (so the
    /// survey's copy stays in a core's cache): each piece is the lines that
    /// end within [`super::CHUNK_BYTES`] of its start, or one longer line.
    fn scan_window(&mut self, mut lines: &[u8], lower: &mut Vec<u8>, marks: &mut Marks) {
        while !lines.is_empty() {
            let reach = lines.len().min(self.chunk_bytes);
            let end = match memrchr(b'\n', &lines[..reach]) {
                Some(i) => i + 1,
                // One line longer than a buffer: it ends in `lines`.
                None => memchr(b'\n', &lines[reach..]).map_or(lines.len(), |i| reach + i + 1),
            };
            self.scan_lines(&lines[..end], lower, marks);
            lines = &lines[end..];
        }
    }
}
