//! `vector-storage`: the raw f32 vectors of one spatial bucket, in the
//! same order as the bucket's records, kept for re-ranking and for exact
//! rebuilds (re-dispatch from raw vectors, never from decoded codes).
//!
//! Because the order is the bucket's, a cell run's raw vectors are one
//! contiguous byte range too ([`VectorStorage::rows_range`]).

use dreamdb_core::ContentHash;
use serde::{Deserialize, Serialize};

use super::common::{check_dim, f32_at, ByteRange};
use super::envelope::{encode_with_blobs, BlobLayout};
use super::error::{Invariant, ObjectError, Problem};
use super::ObjectKind;

const VECTORS_KEY: &str = "vectors";

/// Raw vectors of one spatial bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorStorage {
    /// The spatial bucket whose records these vectors belong to.
    pub bucket: ContentHash,
    /// Vector dimension.
    pub dim: u32,
    /// `count × dim` f32, little-endian, row after row.
    #[serde(with = "serde_bytes")]
    pub vectors: Vec<u8>,
}

#[derive(Serialize)]
struct Header<'a> {
    bucket: &'a ContentHash,
    dim: u32,
}

impl VectorStorage {
    fn row_bytes(&self) -> u64 {
        4 * u64::from(self.dim)
    }

    /// Number of vectors.
    pub fn count(&self) -> u64 {
        (self.vectors.len() as u64)
            .checked_div(self.row_bytes())
            .unwrap_or(0)
    }

    /// Vector `i`, if it exists.
    pub fn vector(&self, i: u64) -> Option<Vec<f32>> {
        let row = usize::try_from(self.row_bytes()).ok()?;
        let start = usize::try_from(i).ok()?.checked_mul(row)?;
        let bytes = self.vectors.get(start..start.checked_add(row)?)?;
        Some(
            (0..self.dim as usize)
                .map(|d| f32_at(bytes, 4 * d))
                .collect(),
        )
    }

    /// Absolute offset of the first vector byte in the encoded object.
    pub fn vectors_offset(&self) -> Result<u64, ObjectError> {
        let header = Header {
            bucket: &self.bucket,
            dim: self.dim,
        };
        Ok(
            BlobLayout::new::<Self, _>(&header, &[(VECTORS_KEY, self.vectors.len())])?
                .blob_offset(0),
        )
    }

    /// Absolute byte range of rows `first .. first + count` (a cell run's
    /// raw vectors, given the run's `first` and `count`).
    pub fn rows_range(&self, first: u64, count: u64) -> Result<ByteRange, ObjectError> {
        Ok(ByteRange {
            offset: self.vectors_offset()? + first * self.row_bytes(),
            len: count * self.row_bytes(),
        })
    }

    /// BLAKE3 of rows `first .. first + count` (what a track's raw-rows
    /// entry records, so a ranged read of them is verified); `None` when
    /// the rows are out of range.
    pub fn rows_hash(&self, first: u64, count: u64) -> Option<ContentHash> {
        let row = self.row_bytes();
        let start = usize::try_from(first.checked_mul(row)?).ok()?;
        let len = usize::try_from(count.checked_mul(row)?).ok()?;
        let bytes = self.vectors.get(start..start.checked_add(len)?)?;
        Some(ContentHash::of(bytes))
    }
}

/// A `vector-storage` object encoded straight from rows in memory
/// ([`VectorStorage::encode_rows`]), with what a track needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVectorStorage {
    /// The canonical bytes.
    pub bytes: Vec<u8>,
    /// Their content hash.
    pub hash: ContentHash,
    /// Absolute offset of the first vector byte.
    pub vectors_offset: u64,
    /// Bytes per vector.
    row_bytes: u64,
}

impl EncodedVectorStorage {
    /// As [`VectorStorage::rows_range`].
    pub fn rows_range(&self, first: u64, count: u64) -> ByteRange {
        ByteRange {
            offset: self.vectors_offset + first * self.row_bytes,
            len: count * self.row_bytes,
        }
    }

    /// As [`VectorStorage::rows_hash`]: `None` when out of range.
    pub fn rows_hash(&self, first: u64, count: u64) -> Option<ContentHash> {
        let start = self
            .vectors_offset
            .checked_add(first.checked_mul(self.row_bytes)?)?;
        let len = count.checked_mul(self.row_bytes)?;
        let start = usize::try_from(start).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        Some(ContentHash::of(self.bytes.get(start..end)?))
    }
}

impl VectorStorage {
    /// Encodes the `vector-storage` of `bucket` whose vectors are the
    /// `dim`-long rows of `values` taken in `order`: the same bytes and
    /// hash as encoding a [`VectorStorage`] of those rows, written into
    /// the object's buffer directly (ingest would otherwise build every
    /// raw row twice).
    pub fn encode_rows(
        bucket: ContentHash,
        dim: u32,
        values: &[f32],
        order: &[usize],
    ) -> Result<EncodedVectorStorage, ObjectError> {
        let refuse = |i: Invariant| ObjectError::new(Self::KIND, None, Problem::Invariant(i));
        check_dim(dim).map_err(refuse)?;
        let width = dim as usize;
        let rows = values.len() / width;
        if order.is_empty() || order.iter().any(|&i| i >= rows) {
            return Err(refuse(Invariant::new(
                "vectors-length",
                format!(
                    "{} rows picked from {rows} is not a non-empty selection",
                    order.len()
                ),
            )));
        }
        let row_bytes = 4 * width;
        let header = Header {
            bucket: &bucket,
            dim,
        };
        let layout =
            BlobLayout::new::<Self, _>(&header, &[(VECTORS_KEY, order.len() * row_bytes)])?;
        let bytes = layout.write_filled::<Self>(|_, out| {
            for &i in order {
                let start = out.len();
                out.resize(start + row_bytes, 0);
                let row = &values[i * width..(i + 1) * width];
                for (to, x) in out[start..].chunks_exact_mut(4).zip(row) {
                    to.copy_from_slice(&x.to_le_bytes());
                }
            }
        })?;
        let hash = ContentHash::of(&bytes);
        Ok(EncodedVectorStorage {
            bytes,
            hash,
            vectors_offset: layout.blob_offset(0),
            row_bytes: row_bytes as u64,
        })
    }
}

impl ObjectKind for VectorStorage {
    const KIND: &'static str = "vector-storage";

    fn validate(&self) -> Result<(), Invariant> {
        check_dim(self.dim)?;
        let row = self.row_bytes();
        if self.vectors.is_empty() || !(self.vectors.len() as u64).is_multiple_of(row) {
            return Err(Invariant::new(
                "vectors-length",
                format!(
                    "{} bytes is not a non-zero whole number of {row}-byte vectors",
                    self.vectors.len()
                ),
            ));
        }
        Ok(())
    }

    fn canonical_bytes(&self) -> Result<Vec<u8>, ObjectError> {
        let header = Header {
            bucket: &self.bucket,
            dim: self.dim,
        };
        encode_with_blobs::<Self, _>(&header, &[(VECTORS_KEY, &self.vectors)])
    }
}
