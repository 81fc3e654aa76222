//! IVF: an inverted file of k trained centroids, extended by Ada-IVF
//! maintenance into a small routing tree.
//!
//! Training is deterministic k-means ([`super::kmeans`]). A fresh index has
//! `k` root slots, each one cell. Ada-IVF ([`super::ada_ivf`]) changes an
//! index only locally so that records placed under an ancestor stay valid
//! in every unchanged cell (architecture §3.4):
//!
//! - a **split** turns a cell into an inner node that keeps its centroid
//!   for routing and gets children appended as new slots; only vectors that
//!   routed to that cell are re-routed, among its children;
//! - a **merge** turns a cold cell into a redirect to a neighbour; vectors
//!   that routed to it now land in that neighbour and nowhere else.
//!
//! The spatial key of a vector is therefore: argmin over the roots, then
//! follow redirects and descend into children (argmin among them) until a
//! leaf. Cell ids are slot ids and are never reused.

use dreamdb_core::{cbor, ContentHash};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bytes::f32_le;
use super::kmeans::{self, DOMAIN_KMEANS_PP, DOMAIN_SAMPLE};
use super::lanes::QUERY_BLOCK;
use super::metric::{check_batch, check_dim, check_vector, norm_f64, prepare, CentroidSet, Metric};
use super::SpatialError;

/// Training parameters of an IVF index (stored in its description).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvfParams {
    /// The metric of keys and search.
    pub metric: Metric,
    /// Number of cells to train (an input; see [`sqrt_guidance`]).
    pub k: u32,
    /// Seed of the k-means++ and sample streams.
    pub seed: u64,
    /// Number of Lloyd iterations (fixed, no convergence test).
    pub iterations: u32,
    /// Train on this many rows drawn from the input (all when `None` or
    /// larger than the input).
    pub sample: Option<u32>,
}

/// Largest accepted iteration count.
pub const MAX_ITERATIONS: u32 = 10_000;

/// A split slot: its children are `first_child .. first_child + children`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitEntry {
    /// The slot that became an inner node.
    pub slot: u32,
    /// Its first child slot.
    pub first_child: u32,
    /// How many consecutive child slots.
    pub children: u32,
}

/// A merged slot: vectors routed to `slot` continue at `into`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeEntry {
    /// The cold cell that was merged away.
    pub slot: u32,
    /// The slot it redirects to.
    pub into: u32,
}

/// What changed relative to the first parent (all lists ascending).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellChanges {
    /// Former cells that were split: their records are re-dispatched among
    /// their children.
    pub replaced: Vec<u32>,
    /// New cells (children of splits).
    pub added: Vec<u32>,
    /// Former cells merged away: their records belong to their target.
    pub removed: Vec<u32>,
    /// Cells that absorbed a removed cell: their own records stay valid.
    pub absorbed: Vec<u32>,
}

/// The stored, content-addressed description of an IVF index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvfDescription {
    /// `dreamdb.ivf-cosine`, `dreamdb.ivf-l2` or `dreamdb.ivf-ip`.
    pub algorithm: String,
    /// Vector dimension.
    pub dim: u32,
    /// How the roots were trained.
    pub params: IvfParams,
    /// Every slot's centroid, row-major little-endian f32.
    #[serde(with = "f32_le")]
    pub centroids: Vec<f32>,
    /// Slots `0..roots` are the roots.
    pub roots: u32,
    /// Split slots, ascending by slot.
    pub splits: Vec<SplitEntry>,
    /// Merged slots, ascending by slot.
    pub merges: Vec<MergeEntry>,
    /// Ancestor index hashes (empty for a trained index).
    pub parents: Vec<ContentHash>,
    /// Changed cells relative to `parents[0]`.
    pub changes: CellChanges,
}

/// The algorithm name for an IVF metric.
pub fn ivf_algorithm(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "dreamdb.ivf-cosine",
        Metric::L2 => "dreamdb.ivf-l2",
        Metric::InnerProduct => "dreamdb.ivf-ip",
    }
}

/// Advice on `k`: reported, never enforced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KGuidance {
    /// Number of vectors.
    pub n: u64,
    /// `√N`, the usual choice of `k`.
    pub sqrt_n: f64,
    /// `⌊2 · √N⌋`, the cap Ada-IVF merges keep `k` under.
    pub k_max: u64,
}

/// `√N` guidance for `n` vectors.
pub fn sqrt_guidance(n: u64) -> KGuidance {
    let sqrt_n = (n as f64).sqrt();
    KGuidance {
        n,
        sqrt_n,
        k_max: (2.0 * sqrt_n).floor() as u64,
    }
}

/// A slot's role in the routing tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// A cell.
    Leaf,
    /// An inner node with children `first .. first + count`.
    Split {
        /// First child.
        first: u32,
        /// Number of children.
        count: u32,
    },
    /// A redirect.
    Merged {
        /// Target slot.
        into: u32,
    },
}

/// An IVF index ready to assign and probe.
#[derive(Debug, Clone)]
pub struct IvfIndex {
    desc: IvfDescription,
    set: CentroidSet,
    kinds: Vec<SlotKind>,
}

impl IvfIndex {
    /// Trains an index on `data` (row-major, `dim` per row).
    pub fn train(params: IvfParams, dim: usize, data: &[f32]) -> Result<IvfIndex, SpatialError> {
        if params.k == 0 {
            return Err(SpatialError::Zero { name: "k" });
        }
        if params.iterations > MAX_ITERATIONS {
            return Err(SpatialError::OutOfRange {
                name: "iterations",
                value: u64::from(params.iterations),
                min: 0,
                max: u64::from(MAX_ITERATIONS),
            });
        }
        if params.sample == Some(0) {
            return Err(SpatialError::Zero { name: "sample" });
        }
        let n = check_batch(data, dim)?;
        if n == 0 {
            return Err(SpatialError::EmptyTrainingSet);
        }
        let chosen = match params.sample {
            Some(s) => kmeans::sample_indices(n, s as usize, params.seed, DOMAIN_SAMPLE),
            None => (0..n).collect(),
        };
        if params.k as usize > chosen.len() {
            return Err(SpatialError::KExceedsN {
                k: params.k as usize,
                n: chosen.len(),
            });
        }
        let rows = prepare_rows(params.metric, data, dim, &chosen)?;
        let centroids = kmeans::train(
            &rows,
            dim,
            params.k as usize,
            params.seed,
            params.iterations,
            kmeans::training_metric(params.metric),
            DOMAIN_KMEANS_PP,
        )?;
        IvfIndex::from_description(IvfDescription {
            algorithm: ivf_algorithm(params.metric).to_owned(),
            dim: dim as u32,
            params,
            centroids,
            roots: params.k,
            splits: Vec::new(),
            merges: Vec::new(),
            parents: Vec::new(),
            changes: CellChanges::default(),
        })
    }

    /// Builds an index from explicit centroids (no training): `k` roots.
    pub fn from_centroids(
        metric: Metric,
        dim: usize,
        centroids: Vec<f32>,
    ) -> Result<IvfIndex, SpatialError> {
        let k = check_batch(&centroids, dim)?;
        IvfIndex::from_description(IvfDescription {
            algorithm: ivf_algorithm(metric).to_owned(),
            dim: dim as u32,
            params: IvfParams {
                metric,
                k: k as u32,
                seed: 0,
                iterations: 0,
                sample: None,
            },
            centroids,
            roots: k as u32,
            splits: Vec::new(),
            merges: Vec::new(),
            parents: Vec::new(),
            changes: CellChanges::default(),
        })
    }

    /// Validates a description and builds the index.
    pub fn from_description(desc: IvfDescription) -> Result<IvfIndex, SpatialError> {
        let metric = desc.params.metric;
        if desc.algorithm != ivf_algorithm(metric) {
            return Err(SpatialError::UnknownAlgorithm(desc.algorithm));
        }
        let dim = desc.dim as usize;
        check_dim(dim)?;
        let slots = check_batch(&desc.centroids, dim)?;
        let kinds = validate_tree(&desc, slots)?;
        let set = CentroidSet::new(metric, dim, desc.centroids.clone());
        Ok(IvfIndex { desc, set, kinds })
    }

    /// Decodes canonical CBOR bytes of an [`IvfDescription`].
    pub fn from_cbor(bytes: &[u8]) -> Result<IvfIndex, SpatialError> {
        IvfIndex::from_description(cbor::from_slice(bytes)?)
    }

    /// The stored description.
    pub fn description(&self) -> &IvfDescription {
        &self.desc
    }

    /// Canonical CBOR bytes of the description.
    pub fn to_cbor(&self) -> Result<Vec<u8>, SpatialError> {
        Ok(cbor::to_vec(&self.desc)?)
    }

    /// The content hash of [`IvfIndex::to_cbor`].
    pub fn hash(&self) -> Result<ContentHash, SpatialError> {
        Ok(ContentHash::of(&self.to_cbor()?))
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.desc.params.metric
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.desc.dim as usize
    }

    /// Number of slots (cells, inner nodes and redirects).
    pub fn slots(&self) -> usize {
        self.kinds.len()
    }

    /// A slot's role (`None` past the end).
    pub fn slot_kind(&self, slot: u32) -> Option<SlotKind> {
        self.kinds.get(slot as usize).copied()
    }

    /// The live cells (leaf slots), ascending.
    pub fn cells(&self) -> Vec<u32> {
        (0..self.kinds.len() as u32)
            .filter(|&s| self.kinds[s as usize] == SlotKind::Leaf)
            .collect()
    }

    /// Number of live cells.
    pub fn cell_count(&self) -> usize {
        self.kinds.iter().filter(|k| **k == SlotKind::Leaf).count()
    }

    /// The centroid of a slot.
    pub fn centroid(&self, slot: u32) -> Result<&[f32], SpatialError> {
        if slot as usize >= self.kinds.len() {
            return Err(SpatialError::UnknownCell { cell: slot });
        }
        Ok(self.set.row(slot as usize))
    }

    /// The centroid set (all slots).
    pub fn centroid_set(&self) -> &CentroidSet {
        &self.set
    }

    /// The cell of one prepared vector (normative routing, fast path).
    pub fn route_prepared(&self, v: &[f32]) -> u32 {
        let q_norm = norm_f64(v);
        self.route_from(v, q_norm, None, false)
    }

    /// The cell of one prepared vector by the reference path only.
    pub fn route_prepared_ref(&self, v: &[f32]) -> u32 {
        self.route_from(v, 0.0, None, true)
    }

    fn argmin(&self, v: &[f32], q_norm: f64, start: u32, end: u32, reference: bool) -> u32 {
        let (s, e) = (start as usize, end as usize);
        let r = if reference {
            self.set.argmin_range_ref(v, s, e)
        } else {
            self.set.argmin_range(v, q_norm, s, e)
        };
        r.unwrap_or(s) as u32
    }

    fn route_from(&self, v: &[f32], q_norm: f64, from: Option<u32>, reference: bool) -> u32 {
        let mut node = match from {
            Some(n) => n,
            None => self.argmin(v, q_norm, 0, self.desc.roots, reference),
        };
        // Validation guarantees termination within `slots` steps.
        for _ in 0..=self.kinds.len() {
            match self.kinds[node as usize] {
                SlotKind::Leaf => return node,
                SlotKind::Merged { into } => node = into,
                SlotKind::Split { first, count } => {
                    node = self.argmin(v, q_norm, first, first + count, reference)
                }
            }
        }
        node
    }

    /// The cell of one vector.
    pub fn assign_one(&self, v: &[f32]) -> Result<u32, SpatialError> {
        check_vector(v, self.dim(), 0)?;
        let p = prepare(self.metric(), v, 0)?;
        Ok(self.route_prepared(&p))
    }

    /// The cells of a row-major batch, computed in parallel.
    pub fn assign(&self, batch: &[f32]) -> Result<Vec<u32>, SpatialError> {
        let dim = self.dim();
        let n = check_batch(batch, dim)?;
        let blocks = n.div_ceil(QUERY_BLOCK);
        let routed: Vec<Vec<u32>> = (0..blocks)
            .into_par_iter()
            .map(|b| self.route_block(batch, b * QUERY_BLOCK, n))
            .collect::<Result<_, _>>()?;
        Ok(routed.concat())
    }

    /// The cells of rows `first..first + QUERY_BLOCK` (fewer at the end
    /// of `batch`): a whole block picks its root through one tiled pass
    /// over the roots, then each row routes on alone.
    fn route_block(&self, batch: &[f32], first: usize, n: usize) -> Result<Vec<u32>, SpatialError> {
        let dim = self.dim();
        let last = (first + QUERY_BLOCK).min(n);
        let prepared = (first..last)
            .map(|i| prepare(self.metric(), &batch[i * dim..(i + 1) * dim], i))
            .collect::<Result<Vec<_>, _>>()?;
        if prepared.len() < QUERY_BLOCK {
            return Ok(prepared.iter().map(|p| self.route_prepared(p)).collect());
        }
        let rows: [&[f32]; QUERY_BLOCK] = std::array::from_fn(|i| prepared[i].as_slice());
        let norms = rows.map(norm_f64);
        let roots = self
            .set
            .argmin_range_block(rows, norms, 0, self.desc.roots as usize);
        Ok((0..QUERY_BLOCK)
            .map(|i| {
                let root = roots[i].unwrap_or(0) as u32;
                self.route_from(rows[i], norms[i], Some(root), false)
            })
            .collect())
    }

    /// The same as [`IvfIndex::assign`] by the scalar reference path only.
    pub fn assign_reference(&self, batch: &[f32]) -> Result<Vec<u32>, SpatialError> {
        let dim = self.dim();
        let n = check_batch(batch, dim)?;
        (0..n)
            .map(|i| {
                let p = prepare(self.metric(), &batch[i * dim..(i + 1) * dim], i)?;
                Ok(self.route_prepared_ref(&p))
            })
            .collect()
    }

    /// The `nprobe` cells nearest to `query`, nearest first.
    pub fn probe(&self, query: &[f32], nprobe: usize) -> Result<Vec<u32>, SpatialError> {
        if nprobe == 0 {
            return Err(SpatialError::Zero { name: "nprobe" });
        }
        check_vector(query, self.dim(), 0)?;
        let q = prepare(self.metric(), query, 0)?;
        Ok(self.probe_prepared(&q, nprobe))
    }

    /// [`IvfIndex::probe`] on a prepared query (`nprobe >= 1`): every leaf
    /// and redirect slot ranked by reference score, each resolved to its
    /// cell by routing from it, first occurrences kept.
    ///
    /// Only a prefix of the ranking is needed: it is computed for
    /// `nprobe` slots first (fast scores with error bounds, reference
    /// scores for the slots that could be in it), and for twice as many
    /// each time routing folds slots into cells already taken.
    pub fn probe_prepared(&self, q: &[f32], nprobe: usize) -> Vec<u32> {
        let points: Vec<usize> = (0..self.kinds.len())
            .filter(|&s| !matches!(self.kinds[s], SlotKind::Split { .. }))
            .collect();
        let q_norm = norm_f64(q);
        let mut want = nprobe;
        loop {
            let ranked = self.set.rank_ref_prefix(q, q_norm, &points, want);
            let complete = ranked.len() == points.len();
            let mut seen = vec![false; self.kinds.len()];
            let mut out = Vec::with_capacity(nprobe);
            for &(_, slot) in &ranked {
                let cell = self.route_from(q, 0.0, Some(slot as u32), true);
                if !seen[cell as usize] {
                    seen[cell as usize] = true;
                    out.push(cell);
                    if out.len() == nprobe {
                        return out;
                    }
                }
            }
            if complete || ranked.len() < want {
                return out;
            }
            want = want.saturating_mul(2);
        }
    }
}

/// Prepares the chosen rows for `metric` (cosine: unit-normalised).
pub fn prepare_rows(
    metric: Metric,
    data: &[f32],
    dim: usize,
    chosen: &[usize],
) -> Result<Vec<f32>, SpatialError> {
    let parts: Result<Vec<Vec<f32>>, SpatialError> = chosen
        .par_iter()
        .map(|&i| prepare(metric, &data[i * dim..(i + 1) * dim], i))
        .collect();
    Ok(parts?.concat())
}

/// Checks the routing tree and returns each slot's kind.
fn validate_tree(desc: &IvfDescription, slots: usize) -> Result<Vec<SlotKind>, SpatialError> {
    let bad = |m: String| Err(SpatialError::Malformed(m));
    if desc.roots == 0 || desc.roots as usize > slots {
        return bad(format!("roots = {} with {slots} slots", desc.roots));
    }
    let mut kinds = vec![SlotKind::Leaf; slots];
    let mut owned = vec![false; slots];
    owned[..desc.roots as usize]
        .iter_mut()
        .for_each(|o| *o = true);
    let mut last: Option<u32> = None;
    for s in &desc.splits {
        let end = u64::from(s.first_child) + u64::from(s.children);
        if s.slot as usize >= slots || s.children == 0 || end > slots as u64 {
            return bad(format!("split of slot {} out of range", s.slot));
        }
        if last.is_some_and(|l| s.slot <= l) {
            return bad("splits not ascending".to_owned());
        }
        last = Some(s.slot);
        if s.first_child <= s.slot {
            return bad(format!("children of slot {} precede it", s.slot));
        }
        for c in s.first_child..s.first_child + s.children {
            if owned[c as usize] {
                return bad(format!("slot {c} has two parents"));
            }
            owned[c as usize] = true;
        }
        kinds[s.slot as usize] = SlotKind::Split {
            first: s.first_child,
            count: s.children,
        };
    }
    if let Some(s) = owned.iter().position(|o| !o) {
        return bad(format!("slot {s} is neither a root nor a child"));
    }
    let mut last: Option<u32> = None;
    for m in &desc.merges {
        if m.slot as usize >= slots || m.into as usize >= slots || m.slot == m.into {
            return bad(format!("merge of slot {} out of range", m.slot));
        }
        if last.is_some_and(|l| m.slot <= l) {
            return bad("merges not ascending".to_owned());
        }
        last = Some(m.slot);
        if kinds[m.slot as usize] != SlotKind::Leaf {
            return bad(format!("slot {} is both split and merged", m.slot));
        }
        kinds[m.slot as usize] = SlotKind::Merged { into: m.into };
    }
    if has_cycle(&kinds) {
        return bad("the routing graph has a cycle".to_owned());
    }
    if !kinds.contains(&SlotKind::Leaf) {
        return bad("no live cell".to_owned());
    }
    Ok(kinds)
}

/// Whether following redirects and child edges can loop (iterative DFS
/// with three colours).
fn has_cycle(kinds: &[SlotKind]) -> bool {
    let edges = |s: usize| -> Vec<usize> {
        match kinds[s] {
            SlotKind::Leaf => Vec::new(),
            SlotKind::Merged { into } => vec![into as usize],
            SlotKind::Split { first, count } => {
                (first as usize..(first + count) as usize).collect()
            }
        }
    };
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut colour = vec![0u8; kinds.len()];
    for root in 0..kinds.len() {
        if colour[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(root, edges(root))];
        colour[root] = 1;
        while let Some((node, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) => match colour[next] {
                    0 => {
                        colour[next] = 1;
                        let e = edges(next);
                        stack.push((next, e));
                    }
                    1 => return true,
                    _ => {}
                },
                None => {
                    colour[*node] = 2;
                    stack.pop();
                }
            }
        }
    }
    false
}
