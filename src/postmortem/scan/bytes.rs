//! The one pass over every byte of a buffer: its lowercase copy (what the
//! needles are searched in), whether a byte is binary or not ASCII, where its
//! newlines are (to count the lines of any stretch of it without passing
//! over it again), the line starts that may be blank, and the slashes that
//! may follow a size unit.
//!
//! That pass is what a scan of a noisy log costs beside the literal search,
//! so it looks at each byte once, 32 at a time where the CPU has AVX2 (any
//! x86-64 server of the last decade; checked at run time), and falls back to
//! a plain loop elsewhere. Both give the same answer, which the tests check.

/// What one pass over a buffer of whole lines found, for the scan to look up
/// instead of passing over the buffer again. Reused from buffer to buffer: it
/// holds a few words per 64 bytes of one buffer, whatever the log.
#[derive(Debug, Default)]
pub(super) struct Marks {
    /// The newlines, a bit per byte, 64 bytes a word (one word more than
    /// whole blocks, so that the end of the buffer has one).
    newlines: Vec<u64>,
    /// Newlines before each word of `newlines`.
    before: Vec<u64>,
    /// Line starts (0 and after each newline, before the end) whose first
    /// byte [may start a blank line](may_start_blank), in order.
    pub(super) blank_starts: Vec<u32>,
    /// Slashes (after the first byte) whose byte before [may end a size
    /// unit](may_end_size), in order.
    pub(super) slashes: Vec<u32>,
    /// Whether a byte [makes a line binary](is_binary).
    pub(super) binary: bool,
    /// Whether a byte is not ASCII (the buffer may not be UTF-8).
    pub(super) wide: bool,
}

impl Marks {
    /// Newlines in the buffer before byte `at` (at most its length).
    pub(super) fn newlines_before(&self, at: usize) -> u64 {
        let (word, bit) = (at / 64, at % 64);
        self.before[word] + u64::from((self.newlines[word] & ((1u64 << bit) - 1)).count_ones())
    }

    /// Newlines in bytes `from..to` of the buffer.
    pub(super) fn newlines_in(&self, from: usize, to: usize) -> u64 {
        self.newlines_before(to) - self.newlines_before(from)
    }
}

/// How far ahead of the block it looks at the survey asks the CPU to fetch:
/// a mapped log comes from memory, not cache, and the CPU's own prefetcher
/// stops at each 4 KiB page. Measured on the 1 GB bench log (mapped): 0.41 s
/// without, 0.38 s at 1 KiB, 0.36 s at 8 KiB (load 6, 2 cores).
#[cfg(target_arch = "x86_64")]
const PREFETCH_BYTES: usize = 8 << 10;

/// The masks of one block of 64 bytes (bit `i` for byte `i`).
#[derive(Debug, Default, Clone, Copy)]
struct Block {
    newlines: u64,
    /// [`may_start_blank`], which is also what [`may_end_size`] takes
    /// beside a `b`.
    blank_or_wide: u64,
    slashes: u64,
    /// `b` or `B`.
    unit: u64,
    binary: bool,
    wide: bool,
}

/// Surveys `bytes` (whole lines, at most 4 GiB): writes its lowercase copy
/// into `lower` and what it found into `marks`.
pub(super) fn survey(bytes: &[u8], lower: &mut Vec<u8>, marks: &mut Marks) {
    survey_with(Wide::best(), bytes, lower, marks);
}

/// How many bytes at a time the survey looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wide {
    /// One at a time (any CPU).
    Portable,
    /// 32 (x86-64 with AVX2 and POPCNT).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// 64 (x86-64 with AVX-512 BW: a compare gives the block's bits).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Wide {
    /// The widest this CPU has (checked once, cached by the standard library).
    fn best() -> Wide {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("popcnt") {
                return Wide::Avx512;
            }
            if has!("avx2") && has!("popcnt") {
                return Wide::Avx2;
            }
        }
        Wide::Portable
    }
}

/// [`survey`] by the way given, which the CPU must have.
fn survey_with(wide: Wide, bytes: &[u8], lower: &mut Vec<u8>, marks: &mut Marks) {
    assert!(
        u32::try_from(bytes.len()).is_ok(),
        "a buffer is at most a few MiB"
    );
    // Reused: after the first buffer these only set lengths.
    lower.resize(bytes.len(), 0);
    let words = bytes.len() / 64 + 1;
    marks.newlines.resize(words, 0);
    marks.before.resize(words, 0);
    marks.blank_starts.clear();
    marks.slashes.clear();
    marks.binary = false;
    marks.wide = false;
    match wide {
        // SAFETY: the CPU has the features (`Wide::best`, or the tests ask).
        #[cfg(target_arch = "x86_64")]
        Wide::Avx2 => unsafe { avx2::survey(bytes, lower, marks) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Wide::Avx512 => unsafe { avx512::survey(bytes, lower, marks) },
        Wide::Portable => portable_survey(bytes, lower, marks),
    }
}

/// [`survey`] a byte at a time.
fn portable_survey(bytes: &[u8], lower: &mut [u8], marks: &mut Marks) {
    walk(bytes, lower, marks, |from, to| {
        portable_block(from, to.try_into().expect("64 bytes"))
    });
}

/// The survey's walk over a buffer, 64 bytes a block and the last one
/// padded, for every width: `block` (one width's masks of 64 bytes, writing
/// their lowercase into a slice of 64) is all that differs. Always inlined,
/// so that in each width's `#[target_feature]` function the walk and its
/// `block` closure (which inherits the features) compile with that width's
/// instructions.
#[inline(always)]
fn walk(
    bytes: &[u8],
    lower: &mut [u8],
    marks: &mut Marks,
    mut block: impl FnMut(&[u8; 64], &mut [u8]) -> Block,
) {
    let mut tally = Tally::default();
    let mut from = bytes.chunks_exact(64);
    let mut to = lower.chunks_exact_mut(64);
    for (from, to) in from.by_ref().zip(to.by_ref()) {
        let m = block(from.try_into().expect("64 bytes"), to);
        tally.record(marks, m);
    }
    let (from, to) = (from.remainder(), to.into_remainder());
    let mut low = [0u8; 64];
    let m = block(&padded(from), &mut low);
    to.copy_from_slice(&low[..to.len()]);
    tally.record(marks, m);
}

/// The last block of a buffer, shorter than 64 bytes, padded with a byte
/// that is none of what the pass looks for (its lowercase is copied back
/// only as long as the block).
#[inline(always)]
fn padded(from: &[u8]) -> [u8; 64] {
    let mut a = [b'x'; 64];
    a[..from.len()].copy_from_slice(from);
    a
}

/// [`Block`] byte by byte.
fn portable_block(from: &[u8; 64], to: &mut [u8; 64]) -> Block {
    let mut m = Block::default();
    for (i, (&b, t)) in from.iter().zip(to.iter_mut()).enumerate() {
        *t = b.to_ascii_lowercase();
        let bit = 1u64 << i;
        m.newlines |= if b == b'\n' { bit } else { 0 };
        m.blank_or_wide |= if may_start_blank(b) { bit } else { 0 };
        m.slashes |= if b == b'/' { bit } else { 0 };
        m.unit |= if b | 0x20 == b'b' { bit } else { 0 };
        m.binary |= is_binary(b);
        m.wide |= b >= 0x80;
    }
    m
}

/// What carries from one block to the next.
#[derive(Debug)]
struct Tally {
    /// Blocks done.
    blocks: usize,
    newlines: u64,
    /// Whether the last byte of the block before ended a line (the first
    /// byte of the buffer starts one), and may end a size unit (nothing
    /// comes before the first byte).
    line_start: u64,
    size_end: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            blocks: 0,
            newlines: 0,
            line_start: 1,
            size_end: 0,
        }
    }
}

impl Tally {
    /// Takes one block's masks into `marks`.
    #[inline(always)]
    fn record(&mut self, marks: &mut Marks, m: Block) {
        let k = self.blocks;
        marks.newlines[k] = m.newlines;
        marks.before[k] = self.newlines;
        self.newlines += u64::from(m.newlines.count_ones());
        let starts = ((m.newlines << 1) | self.line_start) & m.blank_or_wide;
        let ends = m.blank_or_wide | m.unit;
        let slashes = m.slashes & ((ends << 1) | self.size_end);
        self.line_start = m.newlines >> 63;
        self.size_end = ends >> 63;
        let base = (k * 64) as u32;
        push_bits(&mut marks.blank_starts, base, starts);
        push_bits(&mut marks.slashes, base, slashes);
        marks.binary |= m.binary;
        marks.wide |= m.wide;
        self.blocks += 1;
    }
}

/// Appends `base` plus the position of each bit set in `bits`.
#[inline(always)]
fn push_bits(to: &mut Vec<u32>, base: u32, mut bits: u64) {
    while bits != 0 {
        to.push(base + bits.trailing_zeros());
        bits &= bits - 1;
    }
}

/// Whether `b` makes a line binary: NUL or a control character other than
/// tab, CR, LF and ESC.
#[inline(always)]
fn is_binary(b: u8) -> bool {
    b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b)
}

/// Offset of the first byte that [makes a line binary](is_binary).
pub(super) fn first_binary(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    for block in bytes.chunks(64) {
        if block.iter().fold(false, |any, &b| any | is_binary(b)) {
            return block.iter().position(|&b| is_binary(b)).map(|i| at + i);
        }
        at += block.len();
    }
    None
}

/// Whether a line starting with `b` may be blank: `b` is ASCII white space
/// or control, or not ASCII (a wider superset of what can start a white
/// space character is cheaper to test 32 bytes at a time).
fn may_start_blank(b: u8) -> bool {
    b <= b' ' || b >= 0x80
}

/// Whether a slash after `b` may follow a size unit (`GiB /`, `MB/`): `b` is
/// a `b`, ASCII white space or control, or not ASCII.
#[cfg(test)]
fn may_end_size(b: u8) -> bool {
    b | 0x20 == b'b' || may_start_blank(b)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! [`super::survey`] 64 bytes at a time: each comparison gives the
    //! block's bits directly.

    use std::arch::x86_64::*;

    use super::{walk, Block, Marks, PREFETCH_BYTES};

    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    pub(super) fn survey(bytes: &[u8], lower: &mut [u8], marks: &mut Marks) {
        walk(bytes, lower, marks, |from, to| {
            _mm_prefetch::<_MM_HINT_T0>(from.as_ptr().wrapping_add(PREFETCH_BYTES).cast());
            block(from, to)
        });
    }

    /// The masks of 64 bytes, and their lowercase copy.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    fn block(from: &[u8; 64], to: &mut [u8]) -> Block {
        let set = |b: u8| _mm512_set1_epi8(b as i8);
        assert_eq!(to.len(), 64);
        // SAFETY: both are 64 bytes (checked for `to`).
        let v = unsafe { _mm512_loadu_si512(from.as_ptr().cast()) };
        // Lowercase: `A..=Z` gain 0x20.
        let upper = _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, set(b'A')), set(26));
        let low = _mm512_mask_add_epi8(v, upper, v, set(0x20));
        // SAFETY: as above.
        unsafe { _mm512_storeu_si512(to.as_mut_ptr().cast(), low) };
        let top = _mm512_movepi8_mask(v);
        // Binary: see the AVX2 path.
        let control = _mm512_cmplt_epu8_mask(v, set(0x20));
        #[rustfmt::skip]
        let allowed_by_nibble = _mm512_broadcast_i32x4(_mm_setr_epi8(
            -1, -1, -1, -1, -1, -1, -1, -1, -1, 0x09, 0x0a, 0x1b, -1, 0x0d, -1, -1,
        ));
        let allowed = _mm512_cmpeq_epi8_mask(
            _mm512_shuffle_epi8(allowed_by_nibble, _mm512_and_si512(v, set(0x0f))),
            v,
        );
        Block {
            newlines: _mm512_cmpeq_epi8_mask(v, set(b'\n')),
            blank_or_wide: _mm512_cmple_epu8_mask(v, set(b' ')) | top,
            slashes: _mm512_cmpeq_epi8_mask(v, set(b'/')),
            unit: _mm512_cmpeq_epi8_mask(_mm512_or_si512(v, set(0x20)), set(b'b')),
            binary: control & !allowed != 0,
            wide: top != 0,
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! [`super::survey`] 32 bytes at a time: each comparison marks a whole
    //! window, and its movemask gives the block's bits.

    use std::arch::x86_64::*;

    use super::{walk, Block, Marks, PREFETCH_BYTES};

    #[target_feature(enable = "avx2,popcnt")]
    pub(super) fn survey(bytes: &[u8], lower: &mut [u8], marks: &mut Marks) {
        walk(bytes, lower, marks, |from, to| {
            _mm_prefetch::<_MM_HINT_T0>(from.as_ptr().wrapping_add(PREFETCH_BYTES).cast());
            block(from, to)
        });
    }

    /// The masks of 64 bytes, and their lowercase copy.
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    fn block(from: &[u8; 64], to: &mut [u8]) -> Block {
        let (lo, los) = half(&from[..32], &mut to[..32]);
        let (hi, his) = half(&from[32..], &mut to[32..]);
        let join = |a: i32, b: i32| u64::from(a as u32) | (u64::from(b as u32) << 32);
        let odd = _mm256_or_si256(los.0, his.0);
        let wide = _mm256_or_si256(los.1, his.1);
        Block {
            newlines: join(lo[0], hi[0]),
            blank_or_wide: join(lo[1], hi[1]),
            slashes: join(lo[2], hi[2]),
            unit: join(lo[3], hi[3]),
            binary: _mm256_testz_si256(odd, odd) == 0,
            wide: _mm256_movemask_epi8(wide) != 0,
        }
    }

    /// One window of 32 bytes: its movemasks (newline, blank or wide,
    /// slash, `b`), and the vectors whose bits say binary and not ASCII.
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    fn half(from: &[u8], to: &mut [u8]) -> ([i32; 4], (__m256i, __m256i)) {
        let set = |b: u8| _mm256_set1_epi8(b as i8);
        // SAFETY: both slices are 32 bytes (the caller splits 64).
        let v = unsafe { _mm256_loadu_si256(from.as_ptr().cast()) };
        // Lowercase: `A..=Z` gain 0x20.
        let shifted = _mm256_sub_epi8(v, set(b'A'));
        let upper = _mm256_cmpeq_epi8(_mm256_min_epu8(shifted, set(25)), shifted);
        let low = _mm256_or_si256(v, _mm256_and_si256(upper, set(0x20)));
        // SAFETY: as above.
        unsafe { _mm256_storeu_si256(to.as_mut_ptr().cast(), low) };
        let newline = _mm256_cmpeq_epi8(v, set(b'\n'));
        // At most a space, or not ASCII (the top bit, which movemask reads).
        let blank = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(v, set(b' ')), v), v);
        let slash = _mm256_cmpeq_epi8(v, set(b'/'));
        let unit = _mm256_cmpeq_epi8(_mm256_or_si256(v, set(0x20)), set(b'b'));
        // Binary: a control byte that is not tab, LF, CR or ESC. A control
        // byte's low nibble picks the one allowed byte with that nibble
        // (0xff for none), which it equals only if it is that byte.
        let control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, set(0x1f)), v);
        #[rustfmt::skip]
        let allowed_by_nibble = _mm256_setr_epi8(
            -1, -1, -1, -1, -1, -1, -1, -1, -1, 0x09, 0x0a, 0x1b, -1, 0x0d, -1, -1,
            -1, -1, -1, -1, -1, -1, -1, -1, -1, 0x09, 0x0a, 0x1b, -1, 0x0d, -1, -1,
        );
        let allowed = _mm256_cmpeq_epi8(
            _mm256_shuffle_epi8(allowed_by_nibble, _mm256_and_si256(v, set(0x0f))),
            v,
        );
        let binary = _mm256_andnot_si256(allowed, control);
        (
            [
                _mm256_movemask_epi8(newline),
                _mm256_movemask_epi8(blank),
                _mm256_movemask_epi8(slash),
                _mm256_movemask_epi8(unit),
            ],
            (binary, v),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every way this CPU can run.
    fn ways() -> Vec<Wide> {
        let mut ways = vec![Wide::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("popcnt") {
                ways.push(Wide::Avx2);
            }
            if has!("avx512f") && has!("avx512bw") && has!("popcnt") {
                ways.push(Wide::Avx512);
            }
        }
        assert!(ways.contains(&Wide::best()));
        ways
    }

    proptest! {
        #[test]
        fn each_way_finds_what_a_byte_by_byte_look_does(
            bytes in proptest::collection::vec(
                prop::sample::select(b"ab B/\n\t\r\x00\x1b\x0b\x19\x7f\xc2\xa0\xe3 9-AZ@[`{".to_vec()), 0..300),
            cut in 0usize..300,
        ) {
            let starts: Vec<u32> = (0..bytes.len())
                .filter(|&i| (i == 0 || bytes[i - 1] == b'\n') && may_start_blank(bytes[i]))
                .map(|i| i as u32)
                .collect();
            let slashes: Vec<u32> = (1..bytes.len())
                .filter(|&i| bytes[i] == b'/' && may_end_size(bytes[i - 1]))
                .map(|i| i as u32)
                .collect();
            let cut = cut.min(bytes.len());
            let newlines = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count() as u64;
            for wide in ways() {
                let mut lower = vec![b'x'; 400];
                let mut marks = Marks::default();
                survey_with(wide, &bytes, &mut lower, &mut marks);
                prop_assert_eq!(&marks.blank_starts, &starts, "{:?}", wide);
                prop_assert_eq!(&marks.slashes, &slashes, "{:?}", wide);
                prop_assert_eq!(marks.binary, first_binary(&bytes).is_some(), "{:?}", wide);
                prop_assert_eq!(marks.wide, !bytes.is_ascii(), "{:?}", wide);
                prop_assert_eq!(&lower, &bytes.to_ascii_lowercase(), "{:?}", wide);
                prop_assert_eq!(marks.newlines_before(cut), newlines(&bytes[..cut]), "{:?}", wide);
                prop_assert_eq!(
                    marks.newlines_in(cut, bytes.len()),
                    newlines(&bytes[cut..]),
                    "{:?}",
                    wide
                );
            }
        }
    }
}
