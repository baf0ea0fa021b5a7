//! Publish: validate a run's curated parts, then commit it: one conditional write of the
//! pointer `curated/_latest.json`, which carries the snapshot and the watermark together
//! ([`reviews_lake::state::commit`]). The API only ever follows the pointer, so it never sees
//! a half-written dataset; a run built on a commit that is no longer live is refused, so the
//! pointer never moves backwards; earlier runs stay in place, so rollback is one more commit
//! ([`promote`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Array, Float32Array, StringArray};
use chrono::Utc;
use reviews_domain::Topic;
use reviews_domain::schema::CURATED_SCHEMA_VERSION;
use reviews_lake::manifest::{BucketFile, Manifest, ProductDirectory};
use reviews_lake::parquet_io::{Dataset, parquet_info, read_columns};
use reviews_lake::state::{self, BucketRecord, ChangeCounts, CommitOutcome, Plan};
use reviews_lake::{Lake, LakeError, RunId, layout};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StageError;
use crate::score::TOPICS_METADATA_KEY;
use crate::transform::base_snapshot;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PublishInput {
    pub run_id: RunId,
    /// Rows the bucket merges reported; publish refuses a dataset that disagrees.
    #[serde(default)]
    pub expected_rows: Option<u64>,
    /// Where the next extract starts once this run is live (what extract returned); `None`
    /// keeps the base commit's watermark.
    #[serde(default)]
    pub watermark: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublishStatus {
    /// This publish made the run live.
    Published,
    /// The run was already live with the same content (a re-run): nothing changed.
    AlreadyLive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PublishOutput {
    pub run_id: RunId,
    pub manifest_key: String,
    pub rows: u64,
    pub products: u64,
    pub checksum: String,
    pub status: PublishStatus,
    /// The live commit's sequence.
    pub sequence: u64,
    /// How the dataset changed against the commit the run built on (summed over buckets).
    pub changes: ChangeCounts,
    /// Buckets of the snapshot, and how many of them this run wrote.
    pub buckets: u32,
    pub buckets_written: u64,
    /// Reviews the classifier saw / whose topics were reused from the base.
    pub encoded: u64,
    pub reused: u64,
}

/// Validate the buckets a run wrote and make the run live: its snapshot lists, per bucket,
/// the files this run wrote or, for a bucket it did not change, the base's files.
#[tracing::instrument(name = "publish", skip_all, fields(run_id = %input.run_id))]
pub async fn publish(
    lake: Arc<dyn Lake>,
    input: &PublishInput,
) -> Result<PublishOutput, StageError> {
    let run = &input.run_id;
    let plan: Plan = match state::read_required(lake.as_ref(), &state::plan_key(run)).await {
        Ok(p) => p,
        Err(LakeError::NotFound(_)) => {
            return Err(StageError::Validation(format!(
                "run {run} has no plan: its transform did not complete"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(other) = state::lease_taken_by(lake.as_ref(), run).await? {
        return Err(StageError::Conflict(format!(
            "run {other} holds the lease now (run {run} lost it when it expired): not publishing"
        )));
    }
    let base = state::run_base(lake.as_ref(), run, Utc::now()).await?;
    if plan.base_sequence != base.sequence {
        return Err(StageError::Internal(format!(
            "run {run}: its plan was built on commit {}, its base is commit {}",
            plan.base_sequence, base.sequence
        )));
    }
    let snapshot = if plan.carry_base {
        base_snapshot(lake.as_ref(), &base).await?
    } else {
        None
    };

    // The buckets this run wrote: each must have its record, and its file must check out.
    let mut files: BTreeMap<u32, BucketFile> = BTreeMap::new();
    let mut changes = ChangeCounts {
        rejected: plan.rejected,
        ..Default::default()
    };
    let (mut encoded, mut reused) = (0u64, 0u64);
    let mut topics: Option<Vec<Topic>> = None;
    for &bucket in &plan.changed {
        let record: BucketRecord =
            match state::read_required(lake.as_ref(), &state::bucket_record_key(run, bucket)).await
            {
                Ok(r) => r,
                Err(LakeError::NotFound(_)) => {
                    return Err(StageError::Validation(format!(
                        "run {run}: bucket {bucket} was not merged (no record)"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
        changes.add(&record.counts);
        encoded += record.encoded;
        reused += record.reused;
        let Some(file) = record.file else {
            if record.counts.total != 0 {
                return Err(StageError::Validation(format!(
                    "run {run}: bucket {bucket} counts {} rows but has no file",
                    record.counts.total
                )));
            }
            continue;
        };
        if file.rows != record.counts.total {
            return Err(StageError::Validation(format!(
                "{}: {} rows, its merge counted {}",
                file.curated_key, file.rows, record.counts.total
            )));
        }
        let part_topics = check_bucket_file(lake.as_ref(), &file, plan.buckets).await?;
        match &topics {
            None => topics = Some(part_topics),
            Some(t) if *t != part_topics => {
                return Err(StageError::Validation(format!(
                    "{}: topic labels differ between buckets",
                    file.curated_key
                )));
            }
            Some(_) => {}
        }
        files.insert(bucket, file);
    }
    // The buckets it did not change: the base's files, as they are.
    let mut carried_rows = 0u64;
    if let Some(snap) = &snapshot {
        for f in &snap.bucket_files {
            if !plan.changed.contains(&f.bucket) {
                carried_rows += f.rows;
                files.insert(f.bucket, f.clone());
            }
        }
        let topics_now = topics.get_or_insert_with(|| snap.topics.clone());
        if !files.is_empty()
            && snap.buckets == plan.buckets
            && *topics_now != snap.topics
            && files.values().any(|f| f.run_id != *run)
        {
            return Err(StageError::Validation(format!(
                "run {run}: the classifier's topic labels changed since the live snapshot, so \
                 the buckets this run did not rewrite have other labels: run a full load"
            )));
        }
        let accounted = changes.previous + carried_rows;
        if accounted != snap.rows {
            return Err(StageError::Validation(format!(
                "run {run}: the base snapshot has {} rows but its buckets account for {accounted}",
                snap.rows
            )));
        }
        // Rows in unchanged buckets were carried as they were.
        changes.previous += carried_rows;
        changes.carried += carried_rows;
        changes.total += carried_rows;
    }
    if !changes.balanced() {
        return Err(StageError::Internal(format!(
            "run {run}: change accounting broken: {changes:?}"
        )));
    }
    let rows: u64 = files.values().map(|f| f.rows).sum();
    let products: u64 = files.values().map(|f| f.products).sum();
    if rows == 0 {
        return Err(StageError::Validation(format!(
            "run {run} has no curated rows"
        )));
    }
    if rows != changes.total {
        return Err(StageError::Validation(format!(
            "run {run}: its buckets hold {rows} rows, its changes count {}",
            changes.total
        )));
    }
    if let Some(expected) = input.expected_rows
        && expected != rows - carried_rows
    {
        return Err(StageError::Validation(format!(
            "run {run}: the buckets it wrote hold {} rows, the merges reported {expected}",
            rows - carried_rows
        )));
    }
    let erased_now = state::read_erased_buyers(lake.as_ref()).await?.len() as u64;
    if erased_now > plan.erased_buyers {
        return Err(StageError::Conflict(format!(
            "{} buyer(s) asked for erasure after run {run} was transformed: run it again",
            erased_now - plan.erased_buyers
        )));
    }
    let bucket_files: Vec<BucketFile> = files.into_values().collect();
    let part_checksums: Vec<String> = bucket_files.iter().map(|f| f.checksum.clone()).collect();
    let mut all = Sha256::new();
    for c in &part_checksums {
        all.update(c.as_bytes());
    }
    let manifest = Manifest {
        dataset: "curated".into(),
        schema_version: CURATED_SCHEMA_VERSION,
        run_id: run.clone(),
        keys: bucket_files.iter().map(|f| f.curated_key.clone()).collect(),
        rows,
        products,
        checksum: hex::encode(all.finalize()),
        part_checksums,
        topics: topics.unwrap_or_default(),
        created_at: Utc::now(),
        sequence: 0,
        base_sequence: base.sequence,
        watermark: input.watermark.clone().or(base.watermark.clone()),
        erased_buyers: plan.erased_buyers,
        buckets: plan.buckets,
        bucket_files,
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
    crate::athena::write_symlink_listing(lake.as_ref()).await?;
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
        changes,
        buckets: plan.buckets,
        buckets_written: plan.changed.len() as u64,
        encoded,
        reused,
    })
}

/// Check one bucket file this run wrote: its checksum, its schema and footer, curated order,
/// and that every product in it belongs to the bucket. Returns its topic labels.
async fn check_bucket_file(
    lake: &dyn Lake,
    file: &BucketFile,
    buckets: u32,
) -> Result<Vec<Topic>, StageError> {
    check_directory(lake, file).await?;
    let key = &file.curated_key;
    let bytes = lake.get(key).await?;
    if hex::encode(Sha256::digest(&bytes)) != file.checksum {
        return Err(StageError::Validation(format!(
            "{key}: checksum differs from its merge's record"
        )));
    }
    tokio::task::block_in_place(|| {
        let info = parquet_info(Dataset::Curated, bytes.clone())
            .map_err(|e| StageError::Validation(format!("{key}: {e}")))?;
        if info.rows != file.rows {
            return Err(StageError::Validation(format!(
                "{key}: holds {} rows, its merge recorded {}",
                info.rows, file.rows
            )));
        }
        let (products, first, _) = check_order(key, bytes, Some((file.bucket, buckets)))?;
        if products != file.products || first.is_none() {
            return Err(StageError::Validation(format!(
                "{key}: {products} products, its merge recorded {}",
                file.products
            )));
        }
        info.metadata
            .iter()
            .find(|(k, _)| k == TOPICS_METADATA_KEY)
            .and_then(|(_, v)| serde_json::from_str::<Vec<Topic>>(v).ok())
            .ok_or_else(|| StageError::Validation(format!("{key}: no topic labels in footer")))
    })
}

/// Check a bucket's product directory: its checksum, and that it lists the bucket's products
/// and rows.
async fn check_directory(lake: &dyn Lake, file: &BucketFile) -> Result<(), StageError> {
    let (Some(key), Some(checksum)) = (&file.directory_key, &file.directory_checksum) else {
        return Err(StageError::Validation(format!(
            "{}: its merge recorded no product directory",
            file.curated_key
        )));
    };
    let bytes = lake.get(key).await?;
    if hex::encode(Sha256::digest(&bytes)) != *checksum {
        return Err(StageError::Validation(format!(
            "{key}: checksum differs from its merge's record"
        )));
    }
    let dir: ProductDirectory = serde_json::from_slice(&bytes)
        .map_err(|e| StageError::Validation(format!("{key}: {e}")))?;
    let rows: u64 = dir.products.iter().map(|p| u64::from(p.reviews)).sum();
    if dir.bucket != file.bucket || dir.products.len() as u64 != file.products || rows != file.rows
    {
        return Err(StageError::Validation(format!(
            "{key}: lists {} products and {rows} rows of bucket {}, the bucket file holds {} \
             and {} of bucket {}",
            dir.products.len(),
            dir.bucket,
            file.products,
            file.rows,
            file.bucket
        )));
    }
    Ok(())
}

/// Check a part is sorted by (product_id asc, relevance desc) with relevance in [0, 1].
/// Returns the number of products and the first and last product ids.
fn check_order(
    key: &str,
    bytes: bytes::Bytes,
    bucket: Option<(u32, u32)>,
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
                    if let Some((b, n)) = bucket
                        && layout::bucket_of(id, n) != b
                    {
                        return Err(invalid(format!("product {id} is not in bucket {b}")));
                    }
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
    crate::athena::write_symlink_listing(lake).await?;
    tracing::info!(run_id = %run, sequence = live.sequence, "promoted to live");
    Ok(live)
}
