//! A bounded set of the best candidates by `(distance, id)`.
//!
//! Search keeps only the `k · refine` best estimates instead of collecting
//! every estimate and selecting afterwards: a binary max-heap of fixed
//! capacity whose root is the worst kept candidate, so a candidate that
//! cannot enter costs one comparison ([`BoundedTop::admits`]). The kept set
//! is exactly the `cap` smallest by `(distance, id)` (`f32::total_cmp`,
//! then id), the same set a full sort would give, whatever the order of
//! the pushes. The buffer is reused across queries ([`BoundedTop::reset`]).

use std::cmp::Ordering;

/// One kept candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked<T> {
    /// Its distance (smaller is better).
    pub distance: f32,
    /// Its id (ties go to the smaller id).
    pub id: u64,
    /// What the caller needs to find it again.
    pub payload: T,
}

fn order<T>(a: &Ranked<T>, b: &Ranked<T>) -> Ordering {
    a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id))
}

/// The `cap` best candidates seen so far.
#[derive(Debug, Clone, Default)]
pub struct BoundedTop<T> {
    cap: usize,
    heap: Vec<Ranked<T>>,
}

impl<T: Copy> BoundedTop<T> {
    /// An empty set keeping at most `cap`.
    pub fn new(cap: usize) -> BoundedTop<T> {
        BoundedTop {
            cap,
            heap: Vec::new(),
        }
    }

    /// Empties the set and sets a new capacity (the buffer is kept).
    pub fn reset(&mut self, cap: usize) {
        self.cap = cap;
        self.heap.clear();
    }

    /// Candidates kept.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Whether a candidate at `distance` may enter (a cheap pre-check:
    /// `false` means [`BoundedTop::push`] would reject it whatever its id).
    #[inline]
    pub fn admits(&self, distance: f32) -> bool {
        if self.heap.len() < self.cap {
            return true;
        }
        match self.heap.first() {
            Some(worst) => distance.total_cmp(&worst.distance) != Ordering::Greater,
            None => false,
        }
    }

    /// Offers a candidate; keeps it if it is among the `cap` best.
    #[inline]
    pub fn push(&mut self, distance: f32, id: u64, payload: T) {
        let item = Ranked {
            distance,
            id,
            payload,
        };
        if self.heap.len() < self.cap {
            self.heap.push(item);
            self.sift_up(self.heap.len() - 1);
        } else if let Some(worst) = self.heap.first_mut() {
            if order(&item, worst) == Ordering::Less {
                *worst = item;
                self.sift_down(0);
            }
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if order(&self.heap[i], &self.heap[parent]) == Ordering::Greater {
                self.heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut big = i;
            if l < n && order(&self.heap[l], &self.heap[big]) == Ordering::Greater {
                big = l;
            }
            if r < n && order(&self.heap[r], &self.heap[big]) == Ordering::Greater {
                big = r;
            }
            if big == i {
                break;
            }
            self.heap.swap(i, big);
            i = big;
        }
    }

    /// The kept candidates, best first, appended to `out`; the set is left
    /// empty.
    pub fn drain_sorted(&mut self, out: &mut Vec<Ranked<T>>) {
        let start = out.len();
        out.append(&mut self.heap);
        out[start..].sort_unstable_by(order);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keeps_the_same_set_as_a_full_sort(
            items in proptest::collection::vec((0u8..20, 0u64..50), 0..200),
            cap in 0usize..40,
        ) {
            let mut top = BoundedTop::new(cap);
            for (i, &(d, id)) in items.iter().enumerate() {
                top.push(f32::from(d) / 4.0, id, i);
            }
            let mut got = Vec::new();
            top.drain_sorted(&mut got);
            let mut all: Vec<(f32, u64)> =
                items.iter().map(|&(d, id)| (f32::from(d) / 4.0, id)).collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            all.truncate(cap);
            let got: Vec<(f32, u64)> = got.iter().map(|r| (r.distance, r.id)).collect();
            prop_assert_eq!(got, all);
        }
    }

    #[test]
    fn admits_is_a_sound_pre_check() {
        let mut top = BoundedTop::new(2);
        assert!(top.admits(5.0));
        top.push(1.0, 1, ());
        top.push(2.0, 2, ());
        assert!(!top.admits(2.5));
        assert!(top.admits(2.0));
        top.push(2.0, 1, ());
        let mut out = Vec::new();
        top.drain_sorted(&mut out);
        assert_eq!(
            out.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![1, 1],
            "(2.0, 1) beats (2.0, 2)"
        );
        assert!(top.is_empty());
    }
}
