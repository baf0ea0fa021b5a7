//! Merge + score one product bucket: the bucket's carried rows (from the base snapshot) with
//! the run's changes routed to it ([`crate::transform`]), then product statistics and
//! relevance for the bucket, written to `cleaned/run=<id>/bucket=<b>.parquet` and
//! `curated/run=<id>/bucket=<b>.parquet`. Only reviews whose text is new or changed go
//! through the classifier; the others reuse the topic scores of the base's curated file.
//! The bucket's record (`state/runs/run=<id>/bucket-<b>.json`) is written last: publish
//! takes only buckets that have one.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use reviews_domain::Topic;
use reviews_domain::clean::fill_product_stats;
use reviews_domain::schema::{batch_to_curated, curated_to_batch};
use reviews_lake::manifest::{BucketFile, ProductDirectory, ProductEntry};
use reviews_lake::parquet_io::{Dataset, ParquetBuffer, parquet_info, read_parquet};
use reviews_lake::state::{self, BucketRecord, BucketTask};
use reviews_lake::{Lake, LakeError, layout};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::carry::{self, read_cleaned_file};
use crate::error::StageError;
use crate::progress::Progress;
use crate::score::{
    CLASSIFIER_METADATA_KEY, EarlierTopics, Scorer, TOPICS_METADATA_KEY, sorted_by,
};
use crate::transform::{BucketItem, ENCODE_ROWS, encode_cleaned, put_all};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BucketOutput {
    pub run_id: reviews_lake::RunId,
    pub bucket: u32,
    /// The bucket's curated file; `None` when no row is left in the bucket.
    pub curated_key: Option<String>,
    pub rows: u64,
    /// Reviews the classifier saw / whose topics were reused.
    pub encoded: u64,
    pub reused: u64,
}

/// Merge and score one bucket of a run.
#[tracing::instrument(name = "merge_bucket", skip_all, fields(run_id = %item.run_id, bucket = item.bucket))]
pub async fn merge_bucket(
    lake: Arc<dyn Lake>,
    scorer: &Scorer,
    item: &BucketItem,
    progress: &dyn Progress,
) -> Result<BucketOutput, StageError> {
    let run = &item.run_id;
    let lake = lake.as_ref();
    let task: BucketTask =
        match state::read_required(lake, &state::bucket_task_key(run, item.bucket)).await {
            Ok(t) => t,
            Err(LakeError::NotFound(key)) => {
                return Err(StageError::Input(format!(
                    "run {run} has no task for bucket {} ({key}): its transform did not plan it",
                    item.bucket
                )));
            }
            Err(e) => return Err(e.into()),
        };
    let base = state::run_base(lake, run, chrono::Utc::now()).await?;
    let started_at = base.started_at;

    let earlier_rows = match &task.base {
        Some(b) => read_cleaned_file(lake, &b.cleaned_key, Some(b.rows)).await?,
        None => Vec::new(),
    };
    let mut fresh = Vec::new();
    for change in &task.changes {
        fresh.extend(read_cleaned_file(lake, &change.key, Some(change.rows)).await?);
    }
    let mut seen = HashSet::with_capacity(fresh.len());
    if let Some(dup) = fresh.iter().find(|r| !seen.insert(r.review_id.as_str())) {
        // The cleaner drops duplicates across the parts it routes together; a source whose
        // parts were routed apart must not hold one id twice (PostgreSQL: the primary key).
        return Err(StageError::Validation(format!(
            "review {} arrives twice in bucket {} of run {run}",
            dup.review_id, task.bucket
        )));
    }
    drop(seen);
    let earlier_topics = match &task.base.as_ref().and_then(|b| b.curated_key.clone()) {
        Some(key) => load_earlier_topics(lake, key, scorer).await?,
        None => HashMap::new(),
    };
    let erased: BTreeSet<String> = state::read_erased_buyers(lake).await?;

    let rejected: HashSet<&str> = task.rejected.iter().map(String::as_str).collect();
    let deleted: HashSet<&str> = task.deleted.iter().map(String::as_str).collect();
    let (mut counts, tombstones) =
        carry::merge(&mut fresh, earlier_rows, &rejected, &deleted, &erased);
    if !counts.balanced() {
        return Err(StageError::Internal(format!(
            "change accounting broken in bucket {}: {counts:?}",
            task.bucket
        )));
    }
    counts.rejected = 0;
    let mut rows = fresh;
    let cleaned_key = layout::cleaned_bucket_key(run, task.bucket);
    let curated_key = layout::curated_bucket_key(run, task.bucket);
    let directory_key = layout::directory_bucket_key(run, task.bucket);
    lake.put(
        &carry::tombstones_key(run, task.bucket),
        serde_json::to_vec(&tombstones).expect("serialises").into(),
    )
    .await?;

    let (file, encoded, reused) = if rows.is_empty() {
        for key in [&cleaned_key, &curated_key, &directory_key] {
            lake.delete(key).await?;
        }
        (None, 0, 0)
    } else {
        let (cleaned_bytes, curated_bytes, directory, encoded, reused, rows) =
            tokio::task::block_in_place(|| {
                fill_product_stats(&mut rows);
                let rows = sorted_by(std::mem::take(&mut rows), |a, b| {
                    a.product_id
                        .cmp(&b.product_id)
                        .then_with(|| a.review_id.cmp(&b.review_id))
                });
                let cleaned = encode_cleaned(run, &cleaned_key, &rows)?;
                progress.start(
                    &format!("score bucket {}", task.bucket),
                    Some(rows.len() as u64),
                );
                let scored = scorer.score_reusing(
                    rows,
                    &earlier_topics,
                    started_at.date_naive(),
                    started_at,
                    progress,
                )?;
                progress.finish();
                let directory = product_directory(task.bucket, &scored.rows);
                let mut buf = ParquetBuffer::new(Dataset::Curated)
                    .map_err(StageError::parquet(&curated_key))?;
                for chunk in scored.rows.chunks(ENCODE_ROWS) {
                    let batch =
                        curated_to_batch(chunk).map_err(|e| StageError::Internal(e.to_string()))?;
                    buf.write(&batch)
                        .map_err(StageError::parquet(&curated_key))?;
                }
                let topics = serde_json::to_string(scorer.classifier.topics()).expect("serialises");
                let curated = buf
                    .finish(&[
                        (TOPICS_METADATA_KEY, topics),
                        (CLASSIFIER_METADATA_KEY, scorer.classifier_id.clone()),
                        ("reviews.run_id", run.to_string()),
                        ("reviews.bucket", task.bucket.to_string()),
                    ])
                    .map_err(StageError::parquet(&curated_key))?;
                Ok::<_, StageError>((
                    cleaned,
                    curated,
                    directory,
                    scored.encoded,
                    scored.reused,
                    scored.rows.len() as u64,
                ))
            })?;
        let checksum = hex::encode(Sha256::digest(&curated_bytes));
        let products = directory.products.len() as u64;
        let directory_bytes = serde_json::to_vec(&directory).expect("serialises");
        let directory_checksum = hex::encode(Sha256::digest(&directory_bytes));
        // At once: the bucket's record, written after all three, is what makes them count.
        put_all(
            lake,
            [
                (cleaned_key.clone(), cleaned_bytes, ()),
                (curated_key.clone(), curated_bytes, ()),
                (directory_key.clone(), directory_bytes.into(), ()),
            ],
        )
        .await?;
        let file = BucketFile {
            bucket: task.bucket,
            cleaned_key,
            curated_key,
            rows,
            products,
            checksum,
            run_id: run.clone(),
            directory_key: Some(directory_key),
            directory_checksum: Some(directory_checksum),
        };
        (Some(file), encoded, reused)
    };
    let record = BucketRecord {
        run_id: run.clone(),
        bucket: task.bucket,
        file,
        counts,
        encoded,
        reused,
    };
    state::write_record(lake, &state::bucket_record_key(run, task.bucket), &record).await?;
    tracing::info!(
        run_id = %run, bucket = task.bucket, rows = record.counts.total, encoded, reused,
        "bucket merged"
    );
    Ok(BucketOutput {
        run_id: run.clone(),
        bucket: task.bucket,
        curated_key: record.file.as_ref().map(|f| f.curated_key.clone()),
        rows: record.counts.total,
        encoded,
        reused,
    })
}

/// The topics of the base's curated file, by review id, when the same classifier with the
/// same labels wrote it (else nothing is reused).
async fn load_earlier_topics(
    lake: &dyn Lake,
    key: &str,
    scorer: &Scorer,
) -> Result<HashMap<String, EarlierTopics>, StageError> {
    let bytes = match lake.get(key).await {
        Ok(b) => b,
        Err(LakeError::NotFound(_)) => {
            return Err(StageError::Validation(format!(
                "the base's curated file {key} is missing"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    tokio::task::block_in_place(|| {
        let info =
            parquet_info(Dataset::Curated, bytes.clone()).map_err(StageError::parquet(key))?;
        let footer = |name: &str| {
            info.metadata
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let same_topics = footer(TOPICS_METADATA_KEY)
            .and_then(|v| serde_json::from_str::<Vec<Topic>>(v).ok())
            .is_some_and(|t| t == scorer.classifier.topics());
        let same_classifier = !scorer.classifier_id.is_empty()
            && footer(CLASSIFIER_METADATA_KEY) == Some(scorer.classifier_id.as_str());
        if !(same_topics && same_classifier) {
            tracing::info!(
                key,
                "base written by another classifier: every text is classified again"
            );
            return Ok(HashMap::new());
        }
        let mut out = HashMap::new();
        for batch in read_parquet(Dataset::Curated, bytes).map_err(StageError::parquet(key))? {
            for r in batch_to_curated(&batch).map_err(|e| StageError::Parquet {
                key: key.to_owned(),
                source: e.into(),
            })? {
                out.insert(
                    r.review_id,
                    EarlierTopics {
                        text: r.text,
                        topics: r.topics,
                        informativeness: r.signals.informativeness,
                    },
                );
            }
        }
        Ok(out)
    })
}

/// The bucket's products in id order, from its curated rows (sorted by product).
pub(crate) fn product_directory(
    bucket: u32,
    sorted: &[reviews_domain::schema::CuratedReview],
) -> ProductDirectory {
    let mut products: Vec<ProductEntry> = Vec::new();
    for r in sorted {
        match products.last_mut() {
            Some(p) if p.product_id == r.product_id => {
                p.reviews += 1;
                p.rating_sum += u64::from(r.rating);
            }
            _ => products.push(ProductEntry {
                product_id: r.product_id.clone(),
                title: r.product_title.clone(),
                category: r.product_category.clone(),
                reviews: 1,
                rating_sum: u64::from(r.rating),
            }),
        }
    }
    ProductDirectory { bucket, products }
}
