//! # dreamdb-core
//!
//! The primitives every other DreamDB layer stands on, with no I/O:
//!
//! - [`hash`]: BLAKE3-256 content hashes in multihash form (code `0x1e`),
//!   with a compact 33-byte binary form and a 66-character hex text form.
//! - [`cbor`]: deterministic CBOR (RFC 8949 §4.2.1) on top of `ciborium`:
//!   an encoder that always produces the canonical bytes, and a strict
//!   decoder that rejects anything non-canonical and names the rule broken.
//! - [`time`]: u64 nanosecond ticks with integer-only, checked arithmetic.
//! - [`address`], [`ref_name`], [`modality`]: the `dreamdb://` URI grammar,
//!   ref/tag names and modality tags, each parsed strictly.
//! - [`random`]: ChaCha20 streams keyed from a seed, giving bit-identical
//!   integers and f32 values on every platform.
//!
//! The normative description of each lives in `spec/` (0002, 0003, 0009);
//! `dreamdb-conformance` holds hex test vectors the code here must pass.

pub mod address;
pub mod cbor;
pub mod hash;
pub mod modality;
pub mod random;
pub mod ref_name;
pub mod time;

pub use hash::{ContentHash, HashError};
