//! Hostile declared lengths must not make the decoder allocate more than
//! the input justifies.
//!
//! A counting global allocator tracks the peak of live heap bytes while
//! decoding. (On Linux a huge untouched allocation usually "succeeds"
//! thanks to overcommit, so without it this test could not fail.) This file
//! holds only this test, so the allocator affects nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The allocator wrapper is the one place a test needs `unsafe`: the
// `GlobalAlloc` trait is unsafe to implement. It only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use dreamdb_core::cbor::{decode_value, decode_value_lenient, CborError};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrink(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grow(new_size);
        shrink(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak heap growth (bytes) while running `f`.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

#[test]
fn hostile_counts_do_not_preallocate() {
    // 100 nested arrays, each claiming as many elements as there are bytes
    // left, then 1 MiB of zeros that fill the innermost array exactly; its
    // parent then finds the input exhausted. Reserving every claimed
    // element up front would hold ~1M `Value`s at each of the 100 levels
    // at once (gigabytes); growing as elements arrive needs only the
    // innermost array's real elements.
    const LEVELS: usize = 100;
    const FILL: usize = 1 << 20;
    let mut bytes = Vec::with_capacity(LEVELS * 5 + FILL);
    for level in 0..LEVELS {
        let remaining = (LEVELS - level - 1) * 5 + FILL;
        bytes.push(0x9a);
        bytes.extend_from_slice(&u32::try_from(remaining).unwrap().to_be_bytes());
    }
    bytes.resize(LEVELS * 5 + FILL, 0);
    let expected = Err(CborError::Truncated {
        offset: (LEVELS - 2) * 5,
    });
    for decode in [decode_value, decode_value_lenient] {
        let peak = peak_during(|| assert_eq!(decode(&bytes), expected));
        assert!(
            peak < 256 << 20,
            "peak {peak} bytes for {} input bytes",
            bytes.len()
        );
    }

    // Claims larger than the input allocate nothing proportional to them.
    let peak = peak_during(|| {
        for input in [
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x7a, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert!(matches!(
                decode_value(input),
                Err(CborError::Truncated { offset: 0 })
            ));
        }
    });
    assert!(peak < 1 << 16, "peak {peak}");
}
