//! `genesis`: the root of a dataset — its name, the Unix instant that is
//! time anchor 0 (spec/0003 §2) and a random nonce, so two datasets created
//! with the same name at the same nanosecond still differ.

use serde::{Deserialize, Serialize};

use super::common::DatasetName;
use super::error::Invariant;
use super::ObjectKind;

/// The first object of a dataset. Every Manifest and Ref names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The dataset's name (a [`DatasetName`]).
    pub dataset: String,
    /// Nanoseconds since the Unix epoch at which anchor 0 lies.
    pub created_unix_nanos: u64,
    /// 16 random bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 16],
}

impl Genesis {
    /// The time origin of this dataset's anchors.
    pub fn time_origin(&self) -> dreamdb_core::time::Genesis {
        dreamdb_core::time::Genesis::new(self.created_unix_nanos)
    }
}

impl ObjectKind for Genesis {
    const KIND: &'static str = "genesis";

    fn validate(&self) -> Result<(), Invariant> {
        DatasetName::parse(&self.dataset)
            .map(drop)
            .map_err(|e| Invariant::new("dataset-name", e.to_string()))
    }
}
