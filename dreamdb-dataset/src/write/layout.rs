//! How the SDK stores the spatial machinery of an embedding field, shared
//! by the write and read sides (spec/0006 §5.2):
//!
//! - a `spatial-index` object ([`SpatialIndexObject`]) holds, as `params`,
//!   the CBOR value of the `crate::spatial` description of the index (IVF,
//!   LSH, IMI or flat; its own `algorithm` field names the kind), so
//!   [`index_of_object`] rebuilds the [`SpatialIndex`] from it;
//! - a `vector-compressor` object ([`VectorCompressorObject`]) holds the
//!   RaBitQ parameters, rebuilt by [`compressor_of_object`];
//! - a spatial-bucket record's code is the RaBitQ code words (u64 LE, bit
//!   planes as `crate::spatial::rabitq` lays them out) with the three
//!   correction factors, encoded relative to the record's cell centroid for
//!   IVF ([`residual_centroid`]) and to the origin for the other indexes;
//!   without a compressor the code is the vector's f32 values (LE) as given;
//! - a `vector-storage` row is the vector's f32 values as given (not
//!   normalised), in the bucket's record order.

use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{Metric, ObjectKind, SpatialIndexObject, VectorCompressorObject};
use dreamdb_protocol::spatial::rabitq::{RaBitQ, VectorCompressor, RABITQ};
use dreamdb_protocol::spatial::{self, SpatialIndex};

use crate::DatasetError;

/// The spatial crate's metric of a stored metric.
pub fn spatial_metric(metric: Metric) -> spatial::Metric {
    match metric {
        Metric::Cosine => spatial::Metric::Cosine,
        Metric::L2 => spatial::Metric::L2,
        Metric::InnerProduct => spatial::Metric::InnerProduct,
    }
}

/// The stored metric of a spatial-crate metric.
pub fn stored_metric(metric: spatial::Metric) -> Metric {
    match metric {
        spatial::Metric::Cosine => Metric::Cosine,
        spatial::Metric::L2 => Metric::L2,
        spatial::Metric::InnerProduct => Metric::InnerProduct,
    }
}

fn integrity(what: &str, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Integrity(format!("{what}: {e}"))
}

/// Number of cell ids of an index (cells are `0 .. n`).
pub fn cell_count(index: &SpatialIndex) -> Result<u32, DatasetError> {
    let n: u64 = match index {
        SpatialIndex::Ivf(i) => i.slots() as u64,
        SpatialIndex::Lsh(i) => i.cell_count(),
        SpatialIndex::Imi(i) => i.cell_count(),
        SpatialIndex::Flat(_) => 1,
    };
    u32::try_from(n).map_err(|_| integrity("spatial index", format!("{n} cells exceed u32")))
}

/// The cells that can hold records (IVF: leaf slots; others: every cell).
pub fn live_cells(index: &SpatialIndex) -> Result<Vec<u32>, DatasetError> {
    Ok(match index {
        SpatialIndex::Ivf(i) => i.cells(),
        other => (0..cell_count(other)?).collect(),
    })
}

/// The stored object of an index.
pub fn object_of_index(
    index: &SpatialIndex,
    metric: Metric,
) -> Result<SpatialIndexObject, DatasetError> {
    let bytes = index.to_cbor()?;
    let params = cbor::decode_value(&bytes).map_err(|e| integrity("spatial index", e))?;
    let (dim, parents, changed_cells) = match index {
        SpatialIndex::Ivf(i) => {
            let d = i.description();
            let mut changed: Vec<u32> = d
                .changes
                .replaced
                .iter()
                .chain(&d.changes.added)
                .chain(&d.changes.removed)
                .copied()
                .collect();
            changed.sort_unstable();
            changed.dedup();
            (d.dim, d.parents.clone(), changed)
        }
        SpatialIndex::Lsh(i) => (i.description().dim, Vec::new(), Vec::new()),
        SpatialIndex::Imi(i) => (i.description().dim, Vec::new(), Vec::new()),
        SpatialIndex::Flat(i) => (i.dim, Vec::new(), Vec::new()),
    };
    let object = SpatialIndexObject {
        algorithm: index.algorithm().to_owned(),
        metric,
        dim,
        cells: cell_count(index)?,
        params,
        parents,
        changed_cells,
    };
    object
        .validate()
        .map_err(|i| integrity("spatial index", i))?;
    Ok(object)
}

/// Rebuilds the index a stored object describes.
pub fn index_of_object(object: &SpatialIndexObject) -> Result<SpatialIndex, DatasetError> {
    let bytes = cbor::encode_value(&object.params).map_err(|e| integrity("spatial index", e))?;
    SpatialIndex::from_cbor(&bytes).map_err(|e| integrity("spatial index", e))
}

/// The stored object of a RaBitQ compressor.
pub fn object_of_compressor(c: &RaBitQ) -> VectorCompressorObject {
    let d = c.description();
    VectorCompressorObject {
        algorithm: RABITQ.to_owned(),
        bits: d.bits,
        dim: d.dim,
        metric: stored_metric(d.metric),
        seed: d.seed,
    }
}

/// Rebuilds the compressor a stored object describes.
pub fn compressor_of_object(object: &VectorCompressorObject) -> Result<RaBitQ, DatasetError> {
    if object.algorithm != RABITQ {
        return Err(integrity(
            "vector compressor",
            format!("unknown algorithm {:?}", object.algorithm),
        ));
    }
    RaBitQ::new(VectorCompressor::rabitq(
        object.bits,
        object.dim,
        object.seed,
        spatial_metric(object.metric),
    ))
    .map_err(|e| integrity("vector compressor", e))
}

/// The centroid a record of `cell` is encoded relative to: the cell's
/// centroid for IVF, the origin (`None`) otherwise.
pub fn residual_centroid(index: &SpatialIndex, cell: u32) -> Result<Option<&[f32]>, DatasetError> {
    match index {
        SpatialIndex::Ivf(i) => Ok(Some(i.centroid(cell)?)),
        _ => Ok(None),
    }
}

/// An embedding field's spatial machinery, loaded.
#[derive(Debug, Clone)]
pub struct LoadedSpatial {
    /// The index.
    pub index: SpatialIndex,
    /// Its stored object's hash.
    pub index_hash: ContentHash,
    /// The compressor, if the field is compressed.
    pub compressor: Option<RaBitQ>,
    /// Its stored object's hash.
    pub compressor_hash: Option<ContentHash>,
}

/// Loads the index and compressor a track state names (cached by the
/// store).
pub async fn load_spatial(
    store: &dreamdb_protocol::store::ObjectStore,
    index_hash: ContentHash,
    compressor_hash: Option<ContentHash>,
) -> Result<LoadedSpatial, DatasetError> {
    // Both objects are named by the Manifest: read them concurrently.
    let (bytes, compressor_bytes) =
        futures::future::try_join(store.get_bytes(&index_hash), async {
            match compressor_hash {
                Some(h) => store.get_bytes(&h).await.map(Some),
                None => Ok(None),
            }
        })
        .await?;
    let object = SpatialIndexObject::decode(&index_hash, &bytes)?;
    let index = index_of_object(&object)?;
    let compressor = match (compressor_hash, compressor_bytes) {
        (Some(h), Some(bytes)) => Some(compressor_of_object(&VectorCompressorObject::decode(
            &h, &bytes,
        )?)?),
        _ => None,
    };
    Ok(LoadedSpatial {
        index,
        index_hash,
        compressor,
        compressor_hash,
    })
}
