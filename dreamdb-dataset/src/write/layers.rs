//! Layers: a new field's values for records that already exist, written
//! without re-ingesting them (seeds/003 P0: "add tracks on a branch").
//!
//! A layer adds the field to the schema and writes its segments keyed by
//! the given existing anchors, in one Manifest. Records without a value in
//! the layer read as absent (scalar layers are nullable).

use std::sync::Arc;

use dreamdb_protocol::objects::FieldSpec;

use super::anchors::existing_anchors;

use super::append::{embedding_spec, spatial_for, CommitCtx, Committed, SchemaRule, TrainingRows};
use super::segments::{plan_embedding, plan_scalar};
use super::{AppendOptions, LayerResult};
use crate::batch::{Batch, ScalarColumn};
use crate::schema::{EmbeddingField, ScalarType};
use crate::{Dataset, DatasetError};

fn check_layer_anchors(anchors: &[u64]) -> Result<Vec<u64>, DatasetError> {
    if anchors.is_empty() {
        return Err(DatasetError::invalid(
            "_anchor",
            "a layer needs at least one anchor",
        ));
    }
    // Duplicates are refused by the batch's own check.
    Batch::new(anchors.len()).anchors(anchors.to_vec())?;
    let mut sorted = anchors.to_vec();
    sorted.sort_unstable();
    Ok(sorted)
}

impl Dataset {
    async fn layer_base(
        &self,
        field: &str,
        spec: &FieldSpec,
        anchors: &[u64],
    ) -> Result<
        (
            dreamdb_core::ContentHash,
            dreamdb_protocol::objects::Manifest,
        ),
        DatasetError,
    > {
        self.writable_ref()?;
        let (hash, tip) = self.tip().await?;
        let schema = self
            .repo()
            .schema(&tip.schema)
            .await
            .map_err(DatasetError::from_dag)?;
        if let Some(existing) = schema.fields.get(field) {
            if existing.spec != *spec {
                return Err(DatasetError::InvalidSchema {
                    reason: format!(
                        "field {field:?} already exists as {:?}; a layer adds a new field (or more values of the same spec)",
                        existing.spec
                    ),
                });
            }
        }
        let sorted = check_layer_anchors(anchors)?;
        let found = existing_anchors(self.store(), &tip, &sorted).await?;
        if let Some(missing) = sorted.iter().find(|a| !found.contains(a)) {
            return Err(DatasetError::invalid(
                field,
                format!(
                    "no record at anchor {missing}: a layer only adds values to existing records"
                ),
            ));
        }
        Ok((hash, tip))
    }

    /// Adds scalar field `field` (nullable) to the schema and writes one
    /// value per given anchor (`values[i]` for `anchors[i]`; every anchor
    /// must have a record). One Manifest; rebases like an append.
    pub async fn add_scalar_layer(
        &self,
        field: &str,
        dtype: ScalarType,
        anchors: &[u64],
        values: ScalarColumn,
    ) -> Result<LayerResult, DatasetError> {
        let schema_field = dtype.nullable().to_field();
        let spec = schema_field.spec.clone();
        // Validate the values like a one-field batch.
        let probe = crate::schema::SchemaBuilder::new()
            .scalar(field, dtype.nullable())
            .build()?;
        Batch::new(anchors.len())
            .scalars(field, values.clone())
            .validate(&probe)?;
        let (hash, tip) = self.layer_base(field, &spec, anchors).await?;
        let plan = plan_scalar(field, dtype.dtype(), &values, anchors)?;
        let ctx = CommitCtx::new(
            self.clone(),
            vec![plan],
            (hash, tip),
            None,
            SchemaRule::Add {
                field: field.to_owned(),
                spec: schema_field,
            },
            0,
            format!("add scalar layer {field} ({} records)", anchors.len()),
        );
        match ctx.run(None).await? {
            Committed::Done {
                manifest,
                attempts,
                signals,
            } => Ok(LayerResult {
                manifest,
                records: anchors.len() as u64,
                attempts,
                signals,
            }),
            Committed::Replan { .. } => Err(DatasetError::Conflict {
                reason: "the layer could not be placed".to_owned(),
            }),
        }
    }

    /// Adds embedding field `field` to the schema and writes one vector per
    /// given anchor (`vectors` row-major, `anchors[i]`'s at row `i`),
    /// training the field's spatial index on them (or `options.training`).
    pub async fn add_embedding_layer(
        &self,
        field: &str,
        spec: EmbeddingField,
        anchors: &[u64],
        vectors: Vec<f32>,
        options: AppendOptions,
    ) -> Result<LayerResult, DatasetError> {
        let schema_field = spec.to_field(field)?;
        let probe = crate::schema::SchemaBuilder::new()
            .embedding(field, spec.clone())
            .build()?;
        let batch = Batch::new(anchors.len()).embeddings(field, spec.dim(), vectors);
        batch.validate(&probe)?;
        let (hash, tip) = self.layer_base(field, &schema_field.spec, anchors).await?;
        let Some(espec) = embedding_spec(&schema_field.spec) else {
            return Err(DatasetError::InvalidSchema {
                reason: format!("field {field:?} is not an embedding"),
            });
        };
        let batch = Arc::new(batch);
        let training = match options.training.get(field) {
            Some(sample) => TrainingRows::Sample(sample.clone()),
            None => TrainingRows::Column(batch.clone(), field.to_owned()),
        };
        let (loaded, objects, trained) =
            spatial_for(self, &tip, field, espec, Some(training), options.seed).await?;
        let field_owned = field.to_owned();
        let anchors_owned = anchors.to_vec();
        let plan = tokio::task::spawn_blocking(move || {
            let values = match batch.columns().get(&field_owned) {
                Some(crate::batch::Column::Embedding { values, .. }) => values.as_slice(),
                _ => &[],
            };
            plan_embedding(
                &field_owned,
                &espec,
                values,
                &anchors_owned,
                &loaded,
                objects,
                trained,
            )
        })
        .await
        .map_err(|e| DatasetError::Protocol(format!("planning task failed: {e}")))??;
        let ctx = CommitCtx::new(
            self.clone(),
            vec![plan],
            (hash, tip),
            None,
            SchemaRule::Add {
                field: field.to_owned(),
                spec: schema_field,
            },
            0,
            options.message.unwrap_or_else(|| {
                format!("add embedding layer {field} ({} records)", anchors.len())
            }),
        );
        match ctx.run(options.max_attempts).await? {
            Committed::Done {
                manifest,
                attempts,
                signals,
            } => Ok(LayerResult {
                manifest,
                records: anchors.len() as u64,
                attempts,
                signals,
            }),
            Committed::Replan { .. } => Err(DatasetError::Conflict {
                reason: "the layer could not be placed".to_owned(),
            }),
        }
    }
}
