//! The memory allocator of DreamDB's own programs (the `dreamdb` CLI, the
//! Python extension, the bench binaries), behind feature `mimalloc`.
//!
//! Why: reading hands out fresh buffers on every pass (Arrow batches,
//! ranged reads). Under glibc, buffers allocated on the runtime's worker
//! threads come from per-thread arenas that give their pages back to the
//! kernel on free, so every pass faulted its pages in again: 1.0 GB/s
//! over a 5 MB dataset after query work, 2.3 GB/s with one arena
//! (design/0005). mimalloc reuses freed pages, and [`tune`] keeps the
//! delay before it returns them to 1 ms: with its default (1 s) freed
//! pages piled up while new ones were touched, and iterating
//! 1,000,000 × 128 peaked at 563 MiB; at 1 ms it peaks at 305–359 MiB
//! (glibc: 356 MiB) and a 5 MB set iterates at 2.4–2.8 GB/s.
//!
//! A library user picks their own allocator: [`install_allocator!`](crate::install_allocator)
//! is for programs.

#![allow(
    unsafe_code,
    reason = "one call into mimalloc's C option API, with a constant option and value"
)]

pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (mimalloc.h of the
/// vendored v3 sources; its default there is 1,000, options.c):
/// milliseconds before freed pages are purged.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds freed pages stay before mimalloc returns them.
pub const PURGE_DELAY_MS: std::os::raw::c_long = 1;

/// Sets mimalloc's options for DreamDB's read pattern; call once, early
/// (calling again is harmless).
pub fn tune() {
    // SAFETY: mi_option_set takes any option index and value; both are
    // constants naming a valid option of the linked mimalloc.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
}

/// The current purge delay (milliseconds), for tests and diagnostics.
pub fn purge_delay_ms() -> std::os::raw::c_long {
    // SAFETY: as in `tune`; mi_option_get only reads the option.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

/// Installs [`MiMalloc`] as the program's global allocator (in a binary
/// or cdylib crate root); the program then calls [`tune`] at start.
#[macro_export]
macro_rules! install_allocator {
    () => {
        #[global_allocator]
        static GLOBAL: $crate::allocator::MiMalloc = $crate::allocator::MiMalloc;
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_index_is_the_purge_delay_and_tune_sets_it() {
        // v3's default purge delay is 1,000 ms: the index must name it.
        let before = purge_delay_ms();
        assert!(
            before == 1_000 || before == PURGE_DELAY_MS,
            "option 15 reads {before}"
        );
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}
