//! [`SpatialIndex`]: any of the spatial index kinds behind one interface,
//! with its stored description, content hash and decoder.
//!
//! Each kind's description is a canonical-CBOR map whose first field is
//! `algorithm`; [`SpatialIndex::from_cbor`] reads that name and decodes the
//! matching kind. The hash of an index is the content hash of those
//! bytes, so the same inputs and seed always give the same hash.

use dreamdb_core::{cbor, ContentHash};

use super::flat::{FlatIndex, FLAT};
use super::imi::{ImiIndex, IMI_COSINE};
use super::ivf::IvfIndex;
use super::lsh::{LshIndex, LSH_COSINE};
use super::SpatialError;

/// A spatial index of any kind.
#[derive(Debug, Clone)]
pub enum SpatialIndex {
    /// `dreamdb.ivf-{cosine,l2,ip}`.
    Ivf(IvfIndex),
    /// `dreamdb.lsh-cosine`.
    Lsh(LshIndex),
    /// `dreamdb.imi-cosine`.
    Imi(ImiIndex),
    /// `dreamdb.flat`.
    Flat(FlatIndex),
}

impl SpatialIndex {
    /// The algorithm name.
    pub fn algorithm(&self) -> &str {
        match self {
            SpatialIndex::Ivf(i) => &i.description().algorithm,
            SpatialIndex::Lsh(i) => &i.description().algorithm,
            SpatialIndex::Imi(i) => &i.description().algorithm,
            SpatialIndex::Flat(i) => &i.algorithm,
        }
    }

    /// Canonical CBOR bytes of the description.
    pub fn to_cbor(&self) -> Result<Vec<u8>, SpatialError> {
        match self {
            SpatialIndex::Ivf(i) => i.to_cbor(),
            SpatialIndex::Lsh(i) => i.to_cbor(),
            SpatialIndex::Imi(i) => i.to_cbor(),
            SpatialIndex::Flat(i) => i.to_cbor(),
        }
    }

    /// The content hash of [`SpatialIndex::to_cbor`].
    pub fn hash(&self) -> Result<ContentHash, SpatialError> {
        Ok(ContentHash::of(&self.to_cbor()?))
    }

    /// Decodes any kind by its `algorithm` field.
    pub fn from_cbor(bytes: &[u8]) -> Result<SpatialIndex, SpatialError> {
        let value = cbor::decode_value(bytes)?;
        let name = value
            .as_map()
            .and_then(|entries| {
                entries
                    .iter()
                    .find_map(|(k, v)| match (k.as_text(), v.as_text()) {
                        (Some("algorithm"), Some(name)) => Some(name.to_owned()),
                        _ => None,
                    })
            })
            .ok_or_else(|| SpatialError::Malformed("no algorithm field".to_owned()))?;
        match name.as_str() {
            "dreamdb.ivf-cosine" | "dreamdb.ivf-l2" | "dreamdb.ivf-ip" => {
                Ok(SpatialIndex::Ivf(IvfIndex::from_cbor(bytes)?))
            }
            LSH_COSINE => Ok(SpatialIndex::Lsh(LshIndex::from_cbor(bytes)?)),
            IMI_COSINE => Ok(SpatialIndex::Imi(ImiIndex::from_cbor(bytes)?)),
            FLAT => Ok(SpatialIndex::Flat(FlatIndex::from_cbor(bytes)?)),
            _ => Err(SpatialError::UnknownAlgorithm(name)),
        }
    }

    /// The primary cell of one vector.
    pub fn assign_one(&self, v: &[f32]) -> Result<u32, SpatialError> {
        match self {
            SpatialIndex::Ivf(i) => i.assign_one(v),
            SpatialIndex::Lsh(i) => i.assign_one(v),
            SpatialIndex::Imi(i) => i.assign_one(v),
            SpatialIndex::Flat(i) => i.assign_one(v),
        }
    }

    /// The cells a query probes, best first.
    pub fn probe(&self, query: &[f32], nprobe: usize) -> Result<Vec<u32>, SpatialError> {
        match self {
            SpatialIndex::Ivf(i) => i.probe(query, nprobe),
            SpatialIndex::Lsh(i) => i.probe(query, nprobe),
            SpatialIndex::Imi(i) => i.probe(query, nprobe),
            SpatialIndex::Flat(i) => i.probe(query, nprobe),
        }
    }
}
