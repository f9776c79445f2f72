//! The passes over every byte of a buffer: its lowercase copy, the search for
//! binary bytes, counting its lines (and finding those that may be blank),
//! and finding the slashes that may follow a size unit.
//!
//! They are what a scan of a noisy log costs beside the literal search, so
//! each runs 32 bytes at a time where the CPU has AVX2 (any x86-64 server of
//! the last decade; checked at run time), and falls back to plain loops and
//! `memchr` elsewhere. Both give the same answer, which the tests check.

use memchr::memchr_iter;

/// Copies `bytes` into `lower` in ASCII lowercase (what the needles are
/// searched in), and says whether a byte of it makes a line binary (see
/// [`first_binary`]): one pass for both.
pub(super) fn lowercase(bytes: &[u8], lower: &mut Vec<u8>) -> bool {
    #[inline(always)]
    fn portable(bytes: &[u8], lower: &mut Vec<u8>) -> bool {
        // Reused: after the first buffer this only sets the length.
        lower.resize(bytes.len(), 0);
        let mut binary = false;
        let mut to = lower.chunks_exact_mut(64);
        let mut from = bytes.chunks_exact(64);
        for (to, from) in to.by_ref().zip(from.by_ref()) {
            let mut odd = false;
            for (t, &b) in to.iter_mut().zip(from) {
                *t = b.to_ascii_lowercase();
                odd |= is_binary(b);
            }
            binary |= odd;
        }
        for (t, &b) in to.into_remainder().iter_mut().zip(from.remainder()) {
            *t = b.to_ascii_lowercase();
            binary |= is_binary(b);
        }
        binary
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2(bytes: &[u8], lower: &mut Vec<u8>) -> bool {
            portable(bytes, lower)
        }
        if has_avx2() {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(bytes, lower) };
        }
    }
    portable(bytes, lower)
}

/// Whether `b` makes a line binary: NUL or a control character other than
/// tab, CR, LF and ESC.
#[inline(always)]
fn is_binary(b: u8) -> bool {
    b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b)
}

/// Offset of the first byte that [makes a line binary](is_binary).
pub(super) fn first_binary(bytes: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2(bytes: &[u8]) -> Option<usize> {
            find_binary(bytes)
        }
        if has_avx2() {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(bytes) };
        }
    }
    find_binary(bytes)
}

/// [`first_binary`], blocks at a time so the check vectorizes.
#[inline(always)]
fn find_binary(bytes: &[u8]) -> Option<usize> {
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
fn may_end_size(b: u8) -> bool {
    b | 0x20 == b'b' || b <= b' ' || b >= 0x80
}

/// Counts the newlines in `bytes`, and calls `blank(start)` for each line
/// start (0 and after each newline, before the end) whose first byte
/// [may start a blank line](may_start_blank), for the caller to check.
pub(super) fn count_lines(bytes: &[u8], mut blank: impl FnMut(usize)) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and POPCNT, checked just above.
        return unsafe { avx2::count_lines(bytes, &mut blank) };
    }
    if bytes.first().is_some_and(|&b| may_start_blank(b)) {
        blank(0);
    }
    let mut n = 0;
    for nl in memchr_iter(b'\n', bytes) {
        n += 1;
        if bytes.get(nl + 1).is_some_and(|&b| may_start_blank(b)) {
            blank(nl + 1);
        }
    }
    n
}

/// The first slash at or after `from` in `bytes` that [may follow a size
/// unit](may_end_size) and for which `check` says it does, or `usize::MAX`.
pub(super) fn find_slash(bytes: &[u8], from: usize, mut check: impl FnMut(usize) -> bool) -> usize {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and POPCNT, checked just above.
        return unsafe { avx2::find_slash(bytes, from, &mut check) };
    }
    let Some(rest) = bytes.get(from..) else {
        return usize::MAX;
    };
    for i in memchr_iter(b'/', rest) {
        let at = from + i;
        if at > 0 && may_end_size(bytes[at - 1]) && check(at) {
            return at;
        }
    }
    usize::MAX
}

/// Whether the 32-byte paths may run (AVX2, and POPCNT which every AVX2 CPU
/// has); the answer is cached by the standard library.
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! [`super::count_lines`] and [`super::find_slash`] 32 bytes at a time:
    //! each window `c` is compared with the window one byte earlier `p`
    //! (the byte before each), and only the positions a mask marks are
    //! looked at one by one.

    use std::arch::x86_64::*;

    use super::{may_end_size, may_start_blank};

    /// Bytes that are ASCII white space or control, or not ASCII.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn blank_or_wide(v: __m256i) -> __m256i {
        let space = _mm256_set1_epi8(b' ' as i8);
        let low = _mm256_cmpeq_epi8(_mm256_min_epu8(v, space), v);
        let wide = _mm256_cmpgt_epi8(_mm256_setzero_si256(), v);
        _mm256_or_si256(low, wide)
    }

    /// The 32 bytes at `at` (in bounds: the callers check).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load(bytes: &[u8], at: usize) -> __m256i {
        _mm256_loadu_si256(bytes.as_ptr().add(at).cast())
    }

    #[target_feature(enable = "avx2,popcnt")]
    pub(super) unsafe fn count_lines(bytes: &[u8], blank: &mut impl FnMut(usize)) -> u64 {
        let Some(&first) = bytes.first() else {
            return 0;
        };
        if may_start_blank(first) {
            blank(0);
        }
        let mut n = u64::from(first == b'\n');
        let newline = _mm256_set1_epi8(b'\n' as i8);
        let mut i = 1;
        while i + 32 <= bytes.len() {
            let (c, p) = (load(bytes, i), load(bytes, i - 1));
            n += u64::from(
                (_mm256_movemask_epi8(_mm256_cmpeq_epi8(c, newline)) as u32).count_ones(),
            );
            let starts = _mm256_and_si256(_mm256_cmpeq_epi8(p, newline), blank_or_wide(c));
            let mut m = _mm256_movemask_epi8(starts) as u32;
            while m != 0 {
                blank(i + m.trailing_zeros() as usize);
                m &= m - 1;
            }
            i += 32;
        }
        for j in i..bytes.len() {
            n += u64::from(bytes[j] == b'\n');
            if bytes[j - 1] == b'\n' && may_start_blank(bytes[j]) {
                blank(j);
            }
        }
        n
    }

    #[target_feature(enable = "avx2,popcnt")]
    pub(super) unsafe fn find_slash(
        bytes: &[u8],
        from: usize,
        check: &mut impl FnMut(usize) -> bool,
    ) -> usize {
        let slash = _mm256_set1_epi8(b'/' as i8);
        let (b, case) = (_mm256_set1_epi8(b'b' as i8), _mm256_set1_epi8(0x20));
        let mut i = from.max(1);
        while i + 32 <= bytes.len() {
            let (c, p) = (load(bytes, i), load(bytes, i - 1));
            let unit = _mm256_cmpeq_epi8(_mm256_or_si256(p, case), b);
            let before = _mm256_or_si256(unit, blank_or_wide(p));
            let found = _mm256_and_si256(_mm256_cmpeq_epi8(c, slash), before);
            let mut m = _mm256_movemask_epi8(found) as u32;
            while m != 0 {
                let at = i + m.trailing_zeros() as usize;
                if check(at) {
                    return at;
                }
                m &= m - 1;
            }
            i += 32;
        }
        for at in i..bytes.len() {
            if bytes[at] == b'/' && may_end_size(bytes[at - 1]) && check(at) {
                return at;
            }
        }
        usize::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the passes must find, byte by byte.
    fn reference(bytes: &[u8], from: usize) -> (u64, Vec<usize>, Vec<usize>) {
        let n = bytes.iter().filter(|b| **b == b'\n').count() as u64;
        let starts = (0..bytes.len())
            .filter(|&i| (i == 0 || bytes[i - 1] == b'\n') && may_start_blank(bytes[i]))
            .collect();
        let slashes = (from.max(1)..bytes.len())
            .filter(|&i| bytes[i] == b'/' && may_end_size(bytes[i - 1]))
            .collect();
        (n, starts, slashes)
    }

    proptest! {
        #[test]
        fn the_wide_passes_find_what_a_byte_by_byte_look_does(
            bytes in proptest::collection::vec(
                prop::sample::select(b"ab B/\n\t\r\x00\xc2\xa0\xe3 9-".to_vec()), 0..300),
            from in 0usize..320,
        ) {
            let (n, starts, slashes) = reference(&bytes, from);
            let mut seen = Vec::new();
            prop_assert_eq!(count_lines(&bytes, |s| seen.push(s)), n);
            prop_assert_eq!(seen, starts);
            let mut seen = Vec::new();
            let none = find_slash(&bytes, from, |at| {
                seen.push(at);
                false
            });
            prop_assert_eq!(none, usize::MAX);
            prop_assert_eq!(&seen, &slashes);
            if let Some(&second) = slashes.get(1) {
                prop_assert_eq!(find_slash(&bytes, from, |at| at == second), second);
            }
            let mut lower = vec![b'x'; 400];
            let binary = lowercase(&bytes, &mut lower);
            prop_assert_eq!(binary, first_binary(&bytes).is_some());
            prop_assert_eq!(lower, bytes.to_ascii_lowercase());
        }
    }
}
