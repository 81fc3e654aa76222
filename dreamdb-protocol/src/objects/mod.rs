//! The object kinds of the DreamDB protocol: their canonical CBOR shapes,
//! hash rules and strict decoders (spec/0001, spec/0007, spec/0020; design
//! 0001).
//!
//! Every immutable object is one canonical CBOR map with text keys, two of
//! which are common to every kind: `kind` and `v` (see [`envelope`]). Each
//! kind is a Rust type implementing [`ObjectKind`]; encoding gives the
//! canonical bytes and the content hash that names them, and decoding
//! checks, in order, the hash, canonical CBOR, the envelope, the shape
//! (unknown fields are refused), the kind's invariants, and that the value
//! has no second spelling. Any failure is an [`ObjectError`] naming the
//! object and carrying a stable class id.
//!
//! Every hash an object holds is a [`ContentHash`] (CBOR tag 65521), so the
//! links out of any object are found by a generic walk of its CBOR value,
//! without knowing its kind. Large numeric arrays (anchors, codes, vectors,
//! offsets) are little-endian byte strings, readable by byte range; the
//! segment kinds tell a reader the absolute byte range of each record run
//! or blob so that one ranged GET fetches it.
//!
//! One file per kind:
//!
//! | kind | type |
//! |---|---|
//! | `genesis` | [`Genesis`] |
//! | `schema` | [`Schema`] |
//! | `manifest` | [`Manifest`] |
//! | `ref` | [`RefObject`] (read by key, see [`keys`]) |
//! | `spatial-index` | [`SpatialIndexObject`] |
//! | `vector-compressor` | [`VectorCompressorObject`] |
//! | `spatial-bucket` | [`SpatialBucket`] |
//! | `vector-storage` | [`VectorStorage`] |
//! | `scalar-bucket` | [`ScalarBucket`] |
//! | `blob-segment` | [`BlobSegment`] |
//! | `fragment` | [`Fragment`] |
//! | `item-manifest` | [`ItemManifest`] |
//! | `tombstones` | [`TombstoneList`] |
//! | `cell-stats` | [`CellStats`] |
//!
//! `index-page` (the track B-tree node) belongs to `crate::track`.

use dreamdb_core::ContentHash;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub mod blob_segment;
pub mod cell_stats;
pub mod common;
pub mod compressor;
pub mod envelope;
pub mod error;
pub mod fragment;
pub mod genesis;
pub mod item_manifest;
pub mod keys;
pub mod manifest;
pub mod refs;
pub mod scalar_bucket;
pub mod schema;
pub mod spatial_bucket;
pub mod spatial_index;
pub mod tombstones;
pub mod vector_storage;

pub use crate::track::TrackRoot;
pub use blob_segment::BlobSegment;
pub use cell_stats::CellStats;
pub use common::{ByteRange, DatasetName, Metric};
pub use compressor::VectorCompressorObject;
pub use envelope::{encode_generic, FORMAT_VERSION};
pub use error::{Invariant, ObjectError, Problem};
pub use fragment::Fragment;
pub use genesis::Genesis;
pub use item_manifest::ItemManifest;
pub use keys::{object_key, ref_key, tag_key};
pub use manifest::{Manifest, TrackState, TrackStats, HELD_STATS_MAX_CELLS};
pub use refs::RefObject;
pub use scalar_bucket::{ScalarBucket, ScalarValues};
pub use schema::{Compression, FieldSpec, IndexSpec, ScalarDtype, Schema, SchemaField};
pub use spatial_bucket::{
    BucketParams, CellRun, RecordLayout, RecordView, SpatialBucket, SpatialRecord, ANCHOR_BYTES,
};
pub use spatial_index::SpatialIndexObject;
pub use tombstones::{Tombstone, TombstoneList};
pub use vector_storage::{EncodedVectorStorage, VectorStorage};

/// One kind of immutable object: a serde type whose fields are the object's
/// keys other than `kind` and `v`.
///
/// Implementors give the kind name and its invariants; encoding and
/// decoding are provided. Kinds with one large payload override
/// [`ObjectKind::canonical_bytes`] with a writer that does not copy the
/// payload through a value tree (it must return the same bytes as
/// [`encode_generic`]).
pub trait ObjectKind: Serialize + DeserializeOwned + Sized {
    /// The value of the `kind` field, e.g. `"manifest"`.
    const KIND: &'static str;

    /// Checks the kind's rules (sorted and unique lists, consistent
    /// lengths, ranges). Run before encoding and after decoding.
    fn validate(&self) -> Result<(), Invariant>;

    /// The canonical bytes of this object, without validating it first.
    fn canonical_bytes(&self) -> Result<Vec<u8>, ObjectError> {
        encode_generic(self)
    }

    /// Validates this object and returns its canonical bytes and the
    /// content hash that names them.
    fn encode(&self) -> Result<(Vec<u8>, ContentHash), ObjectError> {
        self.validate()
            .map_err(|i| ObjectError::new(Self::KIND, None, Problem::Invariant(i)))?;
        let bytes = self.canonical_bytes()?;
        let hash = ContentHash::of(&bytes);
        Ok((bytes, hash))
    }

    /// Decodes `bytes` fetched under the name `expected`: checks that they
    /// hash to it, then decodes strictly (see the module docs).
    fn decode(expected: &ContentHash, bytes: &[u8]) -> Result<Self, ObjectError> {
        let actual = ContentHash::of(bytes);
        if actual != *expected {
            return Err(ObjectError::new(
                Self::KIND,
                Some(*expected),
                Problem::HashMismatch { actual },
            ));
        }
        envelope::decode_checked(actual, bytes)
    }

    /// Decodes `bytes` that are not named by their hash (a Ref, read by
    /// key): every check of [`ObjectKind::decode`] except the hash one.
    /// Errors name the object by the hash of `bytes`.
    fn decode_unverified(bytes: &[u8]) -> Result<Self, ObjectError> {
        envelope::decode_checked(ContentHash::of(bytes), bytes)
    }
}
