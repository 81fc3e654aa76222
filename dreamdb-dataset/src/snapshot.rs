//! A [`Snapshot`]: one immutable dataset version opened for reading — the
//! object store session, the Manifest and its Schema. Every read function
//! takes a snapshot, so reads never depend on a ref moving underneath them.

use std::sync::Arc;

use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{Manifest, ObjectKind, Schema};
use dreamdb_protocol::store::ObjectStore;

use crate::DatasetError;

/// One dataset version, pinned.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) store: ObjectStore,
    pub(crate) manifest_hash: ContentHash,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) schema: Arc<Schema>,
}

impl Snapshot {
    /// Opens the version named by `manifest_hash` (one verified read of the
    /// Manifest and one of the Schema, each decoded strictly as its object
    /// kind; both are cached by the store).
    pub async fn open(
        store: ObjectStore,
        manifest_hash: ContentHash,
    ) -> Result<Self, DatasetError> {
        let bytes = store.get_bytes(&manifest_hash).await?;
        let manifest = Manifest::decode(&manifest_hash, &bytes)?;
        let bytes = store.get_bytes(&manifest.schema).await?;
        let schema = Schema::decode(&manifest.schema, &bytes)?;
        Ok(Snapshot {
            store,
            manifest_hash,
            manifest: Arc::new(manifest),
            schema: Arc::new(schema),
        })
    }

    /// [`Snapshot::open`], and while the Schema is read, the objects
    /// `prefetch` names from the Manifest are read into the session cache
    /// in the same round trip (a read that needs them next finds them
    /// cached). A failed prefetch is ignored: the read that needs the
    /// object reports its error.
    pub async fn open_prefetching(
        store: ObjectStore,
        manifest_hash: ContentHash,
        prefetch: impl FnOnce(&Manifest) -> Vec<ContentHash>,
    ) -> Result<Self, DatasetError> {
        let bytes = store.get_bytes(&manifest_hash).await?;
        let manifest = Manifest::decode(&manifest_hash, &bytes)?;
        let wanted = prefetch(&manifest);
        let (bytes, _) = futures::future::join(
            store.get_bytes(&manifest.schema),
            futures::future::join_all(wanted.iter().map(|h| store.get_bytes(h))),
        )
        .await;
        let schema = Schema::decode(&manifest.schema, &bytes?)?;
        Ok(Snapshot {
            store,
            manifest_hash,
            manifest: Arc::new(manifest),
            schema: Arc::new(schema),
        })
    }

    /// The Manifest's hash: the version's identity.
    pub fn manifest_hash(&self) -> ContentHash {
        self.manifest_hash
    }

    /// The Manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The Schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The object store session this snapshot reads through.
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// Live records in this version (appended minus deleted, as recorded).
    pub fn records(&self) -> u64 {
        self.manifest.records
    }
}
