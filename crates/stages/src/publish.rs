//! Publish: validate a run's curated parts, then commit it: one conditional write of the
//! pointer `curated/_latest.json`, which carries the snapshot and the watermark together
//! ([`reviews_lake::state::commit`]). The API only ever follows the pointer, so it never sees
//! a half-written dataset; a run built on a commit that is no longer live is refused, so the
//! pointer never moves backwards; earlier runs stay in place, so rollback is one more commit
//! ([`promote`]).

use std::sync::Arc;

use arrow_array::{Array, Float32Array, StringArray};
use chrono::Utc;
use reviews_domain::Topic;
use reviews_domain::schema::CURATED_SCHEMA_VERSION;
use reviews_lake::manifest::Manifest;
use reviews_lake::parquet_io::{Dataset, parquet_info, read_columns};
use reviews_lake::state::{self, CommitOutcome};
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
    /// Where the next extract starts once this run is live (what extract returned); `None`
    /// keeps the base commit's watermark.
    #[serde(default)]
    pub watermark: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishStatus {
    /// This publish made the run live.
    Published,
    /// The run was already live with the same content (a re-run): nothing changed.
    AlreadyLive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishOutput {
    pub run_id: RunId,
    pub manifest_key: String,
    pub rows: u64,
    pub products: u64,
    pub checksum: String,
    pub status: PublishStatus,
    /// The live commit's sequence.
    pub sequence: u64,
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
    // The run's own records: what it was built on and what its transform wrote.
    if let Some(other) = state::lease_taken_by(lake.as_ref(), run).await? {
        return Err(StageError::Conflict(format!(
            "run {other} holds the lease now (run {run} lost it when it expired): not publishing"
        )));
    }
    let base = state::run_base(lake.as_ref(), run, Utc::now()).await?;
    let record = state::read_cleaned_record(lake.as_ref(), run)
        .await?
        .ok_or_else(|| {
            StageError::Validation(format!(
                "run {run} has no cleaned record: its transform did not complete"
            ))
        })?;
    if record.counts.total != rows {
        return Err(StageError::Validation(format!(
            "run {run}: curated parts hold {rows} rows, its transform wrote {}",
            record.counts.total
        )));
    }
    let erased_now = state::read_erased_buyers(lake.as_ref()).await?.len() as u64;
    if erased_now > record.erased_buyers {
        return Err(StageError::Conflict(format!(
            "{} buyer(s) asked for erasure after run {run} was transformed: run it again",
            erased_now - record.erased_buyers
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
        sequence: 0,
        base_sequence: base.sequence,
        watermark: input.watermark.clone().or(base.watermark.clone()),
        erased_buyers: record.erased_buyers,
    };
    let manifest_key = layout::run_manifest_key(run);
    let (status, live) = match state::commit(lake.as_ref(), &manifest).await? {
        CommitOutcome::Committed(live) => {
            // Beside the parts, for rollback; written after the commit so that a re-run that
            // finds its run already live does not rewrite it with a new date.
            lake.put(&manifest_key, manifest.to_json().into()).await?;
            (PublishStatus::Published, live)
        }
        CommitOutcome::AlreadyLive(live) => (PublishStatus::AlreadyLive, live),
        CommitOutcome::Stale { live } => {
            state::release_lease(lake.as_ref(), run).await?;
            return Err(StageError::Conflict(format!(
                "run {run} was built on commit {} but run {} published commit {} since: not \
                 publishing an older snapshot over a newer one (its rows are extracted again \
                 by the next run)",
                base.sequence, live.run_id, live.sequence
            )));
        }
    };
    state::release_lease(lake.as_ref(), run).await?;
    tracing::info!(
        run_id = %run, rows, products, checksum = %live.checksum, sequence = live.sequence,
        status = ?status, "published"
    );
    Ok(PublishOutput {
        run_id: run.clone(),
        manifest_key,
        rows,
        products,
        checksum: live.checksum,
        status,
        sequence: live.sequence,
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
    Ok(state::read_pointer(lake).await?.map(|(m, _)| m))
}

/// Make an already published run live again (rollback): its parts must still be there and
/// match their checksums. This is a new commit on top of the live one, with the earlier run's
/// rows and watermark: the next run extracts again whatever came after it.
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
    let live = state::commit_rollback(lake, &manifest).await?;
    tracing::info!(run_id = %run, sequence = live.sequence, "promoted to live");
    Ok(live)
}
