//! Publish: validate a run's curated parts, then move the pointer `curated/_latest.json` to
//! it. The API only ever follows the pointer, so it never sees a half-written dataset; earlier
//! runs stay in place, so rollback is one pointer move ([`promote`]).

use std::sync::Arc;

use arrow_array::{Array, Float32Array, StringArray};
use chrono::Utc;
use reviews_domain::Topic;
use reviews_domain::schema::CURATED_SCHEMA_VERSION;
use reviews_lake::manifest::Manifest;
use reviews_lake::parquet_io::{Dataset, parquet_info, read_columns};
use reviews_lake::{Lake, LakeError, RunId, layout};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StageError;
use crate::score::TOPICS_METADATA_KEY;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishInput {
    pub run_id: RunId,
    /// The curated parts, in shard order.
    pub curated_keys: Vec<String>,
    /// Rows the scoring stage reported; publish refuses a dataset that disagrees.
    #[serde(default)]
    pub expected_rows: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishOutput {
    pub run_id: RunId,
    pub manifest_key: String,
    pub rows: u64,
    pub products: u64,
    pub checksum: String,
}

/// Validate the curated parts of a run and make it the live dataset.
pub async fn publish(
    lake: Arc<dyn Lake>,
    input: &PublishInput,
) -> Result<PublishOutput, StageError> {
    let run = &input.run_id;
    if input.curated_keys.is_empty() {
        return Err(StageError::Validation(format!(
            "run {run} has no curated parts to publish"
        )));
    }
    let mut rows = 0u64;
    let mut products = 0u64;
    let mut part_checksums = Vec::new();
    let mut topics: Option<Vec<Topic>> = None;
    let mut last_product: Option<String> = None;
    for key in &input.curated_keys {
        if layout::run_of_key(key).as_ref() != Some(run) || !key.starts_with("curated/") {
            return Err(StageError::Input(format!(
                "{key:?} is not a curated part of run {run}"
            )));
        }
        let bytes = lake.get(key).await?;
        part_checksums.push(hex::encode(Sha256::digest(&bytes)));
        let (info, part_products, first, last) = tokio::task::block_in_place(|| {
            let info = parquet_info(Dataset::Curated, bytes.clone())
                .map_err(|e| StageError::Validation(format!("{key}: {e}")))?;
            let (n, first, last) = check_order(key, bytes)?;
            Ok::<_, StageError>((info, n, first, last))
        })?;
        if let (Some(prev), Some(first)) = (&last_product, &first)
            && prev >= first
        {
            return Err(StageError::Validation(format!(
                "{key}: starts at product {first:?}, not after the previous part's {prev:?}"
            )));
        }
        if last.is_some() {
            last_product = last;
        }
        let part_topics = info
            .metadata
            .iter()
            .find(|(k, _)| k == TOPICS_METADATA_KEY)
            .and_then(|(_, v)| serde_json::from_str::<Vec<Topic>>(v).ok())
            .ok_or_else(|| StageError::Validation(format!("{key}: no topic labels in footer")))?;
        match &topics {
            None => topics = Some(part_topics),
            Some(t) if *t != part_topics => {
                return Err(StageError::Validation(format!(
                    "{key}: topic labels differ between parts"
                )));
            }
            Some(_) => {}
        }
        rows += info.rows;
        products += part_products;
    }
    if rows == 0 {
        return Err(StageError::Validation(format!(
            "run {run} has no curated rows"
        )));
    }
    if let Some(expected) = input.expected_rows
        && expected != rows
    {
        return Err(StageError::Validation(format!(
            "run {run}: curated parts hold {rows} rows, scoring reported {expected}"
        )));
    }
    let mut all = Sha256::new();
    for c in &part_checksums {
        all.update(c.as_bytes());
    }
    let manifest = Manifest {
        dataset: "curated".into(),
        schema_version: CURATED_SCHEMA_VERSION,
        run_id: run.clone(),
        keys: input.curated_keys.clone(),
        rows,
        products,
        checksum: hex::encode(all.finalize()),
        part_checksums,
        topics: topics.unwrap_or_default(),
        created_at: Utc::now(),
    };
    let manifest_key = layout::run_manifest_key(run);
    lake.put(&manifest_key, manifest.to_json().into()).await?;
    lake.put(layout::LATEST_MANIFEST, manifest.to_json().into())
        .await?;
    tracing::info!(run_id = %run, rows, products, checksum = %manifest.checksum, "published");
    Ok(PublishOutput {
        run_id: run.clone(),
        manifest_key,
        rows,
        products,
        checksum: manifest.checksum,
    })
}

/// Check a part is sorted by (product_id asc, relevance desc) with relevance in [0, 1].
/// Returns the number of products and the first and last product ids.
fn check_order(
    key: &str,
    bytes: bytes::Bytes,
) -> Result<(u64, Option<String>, Option<String>), StageError> {
    let invalid = |msg: String| StageError::Validation(format!("{key}: {msg}"));
    let batches = read_columns(Dataset::Curated, bytes, &["product_id", "relevance"])
        .map_err(|e| invalid(e.to_string()))?;
    let mut prev: Option<(String, f32)> = None;
    let mut first = None;
    let mut products = 0u64;
    for b in &batches {
        let ids = b
            .column_by_name("product_id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| invalid("product_id column".into()))?;
        let rel = b
            .column_by_name("relevance")
            .and_then(|c| c.as_any().downcast_ref::<Float32Array>())
            .ok_or_else(|| invalid("relevance column".into()))?;
        for i in 0..b.num_rows() {
            let (id, r) = (ids.value(i), rel.value(i));
            if ids.is_null(i) || !(0.0..=1.0).contains(&r) {
                return Err(invalid(format!("row {i}: bad product id or relevance {r}")));
            }
            match &prev {
                Some((p, pr)) if p.as_str() == id => {
                    if r > *pr {
                        return Err(invalid(format!("product {id}: relevance not descending")));
                    }
                }
                Some((p, _)) if p.as_str() > id => {
                    return Err(invalid(format!("product {id} after {p}: not sorted")));
                }
                _ => {
                    products += 1;
                    if first.is_none() {
                        first = Some(id.to_owned());
                    }
                }
            }
            prev = Some((id.to_owned(), r));
        }
    }
    Ok((products, first, prev.map(|(p, _)| p)))
}

/// Read the live manifest, if any.
pub async fn live_manifest(lake: &dyn Lake) -> Result<Option<Manifest>, StageError> {
    match lake.get(layout::LATEST_MANIFEST).await {
        Ok(b) => Manifest::from_json(&b)
            .map(Some)
            .map_err(|e| StageError::Validation(format!("{}: {e}", layout::LATEST_MANIFEST))),
        Err(LakeError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Make an already published run live again (rollback): its parts must still be there and
/// match their checksums.
pub async fn promote(lake: &dyn Lake, run: &RunId) -> Result<Manifest, StageError> {
    let key = layout::run_manifest_key(run);
    let bytes = match lake.get(&key).await {
        Ok(b) => b,
        Err(LakeError::NotFound(_)) => {
            return Err(StageError::Input(format!(
                "run {run} was never published ({key} is missing)"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let manifest =
        Manifest::from_json(&bytes).map_err(|e| StageError::Validation(format!("{key}: {e}")))?;
    for (part, expected) in manifest.keys.iter().zip(&manifest.part_checksums) {
        let data = lake.get(part).await?;
        if hex::encode(Sha256::digest(&data)) != *expected {
            return Err(StageError::Validation(format!(
                "{part}: checksum differs from its manifest"
            )));
        }
    }
    lake.put(layout::LATEST_MANIFEST, bytes).await?;
    tracing::info!(run_id = %run, "promoted to live");
    Ok(manifest)
}
