//! Splitting sorted items into pages, and deciding when a page is too
//! small to stand alone.
//!
//! A page must hold at most `fanout` items and encode in at most
//! `page_target_bytes` (an internal page always takes at least two items,
//! so the tree's height converges even with absurdly small targets). When
//! items must be split, they are spread evenly over
//! `k = max(⌈n / (7/8·fanout)⌉, ⌈bytes / (7/8·target)⌉, 2)` pages, so new
//! pages start with about 1/8 slack: the next insert into a freshly split
//! or bulk-loaded leaf rewrites that leaf, not it and a new sibling.
//!
//! A page is *underfull* when it holds fewer than `max(2, fanout / 4)`
//! items and encodes in less than a quarter of the target; copy-on-write
//! merges such pages with a neighbour, so deletes cannot leave a tree of
//! near-empty pages.

use std::ops::Range;

use super::page::{child_len, entry_len, ChildRef, IndexPage, TrackEntry, PAGE_OVERHEAD};
use super::TrackConfig;

/// Fill factor of split pages, as a fraction: 7/8.
const FILL_NUM: usize = 7;
const FILL_DEN: usize = 8;

/// Splits items of the given encoded sizes into consecutive page ranges.
pub(crate) fn split_ranges(
    sizes: &[usize],
    cfg: &TrackConfig,
    min_items: usize,
) -> Vec<Range<usize>> {
    let n = sizes.len();
    if n == 0 {
        return Vec::new();
    }
    let total: usize = sizes.iter().sum();
    let fits = |items: usize, bytes: usize| {
        items <= cfg.fanout && bytes + PAGE_OVERHEAD <= cfg.page_target_bytes
    };
    if fits(n, total) || n <= min_items {
        let whole = 0..n;
        return vec![whole];
    }
    let fill_items = (cfg.fanout * FILL_NUM / FILL_DEN).max(min_items).max(1);
    let fill_bytes = (cfg.page_target_bytes * FILL_NUM / FILL_DEN)
        .saturating_sub(PAGE_OVERHEAD)
        .max(1);
    let k = n
        .div_ceil(fill_items)
        .max(total.div_ceil(fill_bytes))
        .max(2)
        .min(n / min_items.max(1))
        .max(1);

    let mut pages = Vec::with_capacity(k + 1);
    let mut start = 0;
    let mut page_bytes = 0usize;
    let mut cum_bytes = 0usize;
    for (i, &size) in sizes.iter().enumerate() {
        let page_items = i - start;
        // Hard limits: close the page before this item would break them.
        if page_items >= min_items && !fits(page_items + 1, page_bytes + size) {
            pages.push(start..i);
            start = i;
            page_bytes = 0;
        }
        page_bytes += size;
        cum_bytes += size;
        let page_items = i + 1 - start;
        let j = pages.len();
        let remaining = n - i - 1;
        // Soft targets: close at the j-th even share of bytes or items.
        let at_share = cum_bytes * k >= total * (j + 1) || (i + 1) * k >= n * (j + 1);
        if j + 1 < k && page_items >= min_items && remaining >= min_items && at_share {
            pages.push(start..i + 1);
            start = i + 1;
            page_bytes = 0;
        }
    }
    if start < n {
        pages.push(start..n);
    }
    // A last page below the minimum takes items from its predecessor if
    // it can spare them, else joins it.
    let len = pages.len();
    if len >= 2 && pages[len - 1].len() < min_items {
        let need = min_items - pages[len - 1].len();
        if pages[len - 2].len() >= min_items + need {
            pages[len - 2].end -= need;
            pages[len - 1].start -= need;
        } else if let Some(last) = pages.pop() {
            if let Some(prev) = pages.last_mut() {
                prev.end = last.end;
            }
        }
    }
    pages
}

/// Splits sorted entries into leaves.
pub(crate) fn split_leaf(entries: Vec<TrackEntry>, cfg: &TrackConfig) -> Vec<IndexPage> {
    let sizes: Vec<usize> = entries.iter().map(|(k, v)| entry_len(k, v)).collect();
    let ranges = split_ranges(&sizes, cfg, 1);
    let mut rest = entries;
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges.iter().rev() {
        let tail = rest.split_off(r.start);
        out.push(IndexPage::Leaf { entries: tail });
    }
    out.reverse();
    out
}

/// Splits sorted child references into internal pages at `level`.
pub(crate) fn split_internal(
    level: u8,
    children: Vec<ChildRef>,
    cfg: &TrackConfig,
) -> Vec<IndexPage> {
    let sizes: Vec<usize> = children.iter().map(child_len).collect();
    let ranges = split_ranges(&sizes, cfg, 2);
    let mut rest = children;
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges.iter().rev() {
        let tail = rest.split_off(r.start);
        out.push(IndexPage::Internal {
            level,
            children: tail,
        });
    }
    out.reverse();
    out
}

/// Splits any page's items (used after merging neighbours).
pub(crate) fn split_page(page: IndexPage, cfg: &TrackConfig) -> Vec<IndexPage> {
    match page {
        IndexPage::Leaf { entries } => split_leaf(entries, cfg),
        IndexPage::Internal { level, children } => split_internal(level, children, cfg),
    }
}

/// Whether a page is small enough that it should merge with a neighbour.
pub(crate) fn underfull(page: &IndexPage, cfg: &TrackConfig) -> bool {
    let min_items = (cfg.fanout / 4).max(2);
    page.len() < min_items && (page.items_len() + PAGE_OVERHEAD) * 4 < cfg.page_target_bytes
}

/// The items of two adjacent pages of one level, `left` first.
pub(crate) fn concat(left: IndexPage, right: IndexPage) -> IndexPage {
    match (left, right) {
        (IndexPage::Leaf { mut entries }, IndexPage::Leaf { entries: more }) => {
            entries.extend(more);
            IndexPage::Leaf { entries }
        }
        (
            IndexPage::Internal {
                level,
                mut children,
            },
            IndexPage::Internal { children: more, .. },
        ) => {
            children.extend(more);
            IndexPage::Internal { level, children }
        }
        // Callers only join pages of one level; keep the left one if not.
        (left, _) => left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(fanout: usize, target: usize) -> TrackConfig {
        TrackConfig {
            fanout,
            page_target_bytes: target,
            inline_max_bytes: target,
        }
    }

    #[test]
    fn ranges_respect_limits_and_cover_everything() {
        for (n, size, fanout, target, min) in [
            (1000, 100, 256, 16384, 1),
            (10, 100, 4, 100_000, 1),
            (10, 100, 4, 10, 2),
            (257, 10, 256, 1 << 20, 1),
            (4, 5000, 256, 4096, 2),
            (10, 2000, 256, 4096, 2),
            (7, 90, 4, 512, 2),
        ] {
            let sizes = vec![size; n];
            let c = cfg(fanout, target);
            let ranges = split_ranges(&sizes, &c, min);
            assert_eq!(ranges.first().map(|r| r.start), Some(0));
            assert_eq!(ranges.last().map(|r| r.end), Some(n));
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            for r in &ranges {
                assert!(
                    r.len() >= min.min(n),
                    "{n} {size} {fanout} {target}: {ranges:?}"
                );
                let bytes = r.len() * size + PAGE_OVERHEAD;
                if r.len() > min {
                    assert!(r.len() <= fanout, "{ranges:?}");
                    assert!(bytes <= target, "{n} {size} {fanout} {target}: {ranges:?}");
                }
            }
        }
    }

    #[test]
    fn split_leaves_slack() {
        let sizes = vec![100; 10_000];
        let c = cfg(256, 16384);
        let ranges = split_ranges(&sizes, &c, 1);
        for r in &ranges[..ranges.len() - 1] {
            assert!(r.len() * 100 + PAGE_OVERHEAD <= 16384 * 7 / 8 + 100);
        }
    }
}
