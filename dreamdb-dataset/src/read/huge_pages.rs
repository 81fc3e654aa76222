//! Transparent huge pages for large read buffers (Linux).
//!
//! A pass over a large dataset fills one fresh buffer per unit: 154 MB for
//! 100,000 × 384 f32. With 4 KiB pages, its first touch costs one page
//! fault per 4 KiB, about a third of such a pass (design/0005). On a kernel
//! whose huge-page mode is `madvise` (a common default), advising the
//! buffer's 2 MiB-aligned interior makes the kernel back it with 2 MiB
//! pages: 512 times fewer faults.
//!
//! This is advice only. The allocation and its contents are unchanged.
//! Small buffers, other systems and a refused call do nothing.

/// The huge-page size advised for (x86-64 and aarch64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 << 20;

/// Buffers smaller than this are left alone: the saving is a few faults.
const MIN_BYTES: usize = 8 * HUGE_PAGE;

/// Advises the kernel to back `buf`'s spare capacity with huge pages. Call
/// it right after allocating, before the buffer is written.
pub(crate) fn advise_huge_pages<T>(buf: &mut Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        let bytes = buf.capacity().saturating_mul(std::mem::size_of::<T>());
        if bytes < MIN_BYTES {
            return;
        }
        let start = buf.as_mut_ptr() as usize;
        let (Some(lo), Some(end)) = (
            start.checked_next_multiple_of(HUGE_PAGE),
            start.checked_add(bytes),
        ) else {
            return;
        };
        let hi = end / HUGE_PAGE * HUGE_PAGE;
        if hi <= lo {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: `[lo, hi)` lies inside the allocation `buf` owns (its
        // capacity, from `start` for `bytes` bytes). `MADV_HUGEPAGE` only
        // changes how the kernel backs those pages, never their contents,
        // their validity or the allocation. The result is ignored, since
        // the advice is optional.
        unsafe {
            libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_keeps_contents_and_capacity() {
        for len in [0usize, 1, 1000, (MIN_BYTES / 4) + 12_345] {
            let mut v: Vec<f32> = Vec::with_capacity(len);
            advise_huge_pages(&mut v);
            v.extend((0..len).map(|i| i as f32));
            assert_eq!(v.len(), len);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
        }
    }
}
