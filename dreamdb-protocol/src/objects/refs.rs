//! `ref`: what a branch or tag points at. Stored under a key
//! (`datasets/<dataset>/refs/<name>` or `.../tags/<name>`, see
//! [`super::keys`]) rather than under its hash, and read with
//! [`ObjectKind::decode_unverified`]; it still is canonical CBOR, so two
//! writers that point a ref at the same Manifest write the same bytes — a
//! retried compare-and-swap can recognise its own write.

use dreamdb_core::ContentHash;
use serde::{Deserialize, Serialize};

use super::error::Invariant;
use super::ObjectKind;

/// The target of a ref or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefObject {
    /// The Manifest pointed at.
    pub manifest: ContentHash,
    /// The dataset's Genesis (so a ref copied into another dataset is
    /// noticed).
    pub genesis: ContentHash,
}

impl ObjectKind for RefObject {
    const KIND: &'static str = "ref";

    fn validate(&self) -> Result<(), Invariant> {
        if self.manifest == self.genesis {
            return Err(Invariant::new(
                "ref-target",
                "a ref must point at a Manifest, not at the Genesis",
            ));
        }
        Ok(())
    }
}
