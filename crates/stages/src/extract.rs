//! Extract: read review rows from a source and write them, as read, to raw/.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reviews_domain::RawReview;
use reviews_domain::schema::raw_to_batch;
use reviews_lake::parquet_io::{Dataset, ParquetBuffer};
use reviews_lake::{Lake, RunId, layout, state};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::StageError;
use crate::progress::Progress;

/// Rows per raw record batch (and per progress tick).
const BATCH_ROWS: usize = 16 * 1024;
/// Rows per raw/ part: a part is encoded in memory, then written, so memory stays flat however
/// many rows the source has.
pub const RAW_PART_ROWS: usize = 200_000;

/// What extract hands to the next stages, and (with a status) the extract Lambda's output:
/// every field is always present on the wire, since the state machine reads them by path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExtractOutput {
    pub run_id: RunId,
    /// The raw/ parts, in source order.
    pub raw_keys: Vec<String>,
    pub rows: u64,
    /// The run's logical start time: fixed on the first attempt, reused by re-runs, so the
    /// same run always produces the same objects.
    pub started_at: DateTime<Utc>,
    /// Where the next incremental extract starts (for database sources; null otherwise).
    #[serde(default)]
    pub watermark: Option<String>,
    /// Only rows changed since an earlier run were read (transform then carries the earlier
    /// cleaned rows over). False for a full read.
    #[serde(default)]
    pub incremental: bool,
    /// The review ids deleted at the source in the extracted range ([`write_deletions`]),
    /// when the source reports deletions.
    #[serde(default)]
    pub deletions_key: Option<String>,
    /// How many ids `deletions_key` lists.
    #[serde(default)]
    pub deleted: u64,
}

/// The logical start time of a run: fixed on its first attempt (with the commit it builds on,
/// see [`reviews_lake::state::run_base`]), reused by every retry.
pub async fn run_started_at(
    lake: &dyn Lake,
    run: &RunId,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StageError> {
    Ok(state::run_base(lake, run, now).await?.started_at)
}

/// `raw/run=<id>/deletions.json`: the review ids deleted at the source in the extracted range.
pub fn deletions_key(run: &RunId) -> String {
    format!("{}deletions.json", layout::run_prefix(layout::RAW, run))
}

/// A review deleted at the source (or moved away from a product), with the product it was
/// under when the source knows it: the deletion then touches one bucket, not all of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Deletion {
    pub review_id: String,
    #[serde(default)]
    pub product_id: Option<String>,
}

impl Deletion {
    pub fn of(review_id: impl Into<String>, product_id: Option<String>) -> Self {
        Self {
            review_id: review_id.into(),
            product_id,
        }
    }
}

/// Write the reviews deleted at the source (sorted, deduplicated) beside the run's raw
/// parts; transform removes them from the carried rows and counts them. Returns the key.
pub async fn write_deletions(
    lake: &dyn Lake,
    run: &RunId,
    deletions: &[Deletion],
) -> Result<String, StageError> {
    let rows: std::collections::BTreeSet<&Deletion> = deletions.iter().collect();
    let key = deletions_key(run);
    lake.put(&key, serde_json::to_vec(&rows).expect("serialises").into())
        .await?;
    Ok(key)
}

/// Read a deletions file written by [`write_deletions`] (or by an earlier version, which
/// listed review ids only: their product is unknown).
pub async fn read_deletions(lake: &dyn Lake, key: &str) -> Result<Vec<Deletion>, StageError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Id(String),
        Full(Deletion),
    }
    let bytes = lake.get(key).await?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes)
        .map_err(|e| StageError::Validation(format!("{key}: {e}")))?;
    Ok(entries
        .into_iter()
        .map(|e| match e {
            Entry::Id(id) => Deletion::of(id, None),
            Entry::Full(d) => d,
        })
        .collect())
}

/// Extract rows from any source iterator into `raw/run=<id>/part-NNNNN.parquet`, one part per
/// [`RAW_PART_ROWS`] rows. A source error stops the stage (nothing is published from a partial
/// extract; a re-run rewrites the run's parts and removes any left by an earlier attempt).
pub async fn extract_rows<I, E>(
    lake: Arc<dyn Lake>,
    run: &RunId,
    rows: I,
    progress: &dyn Progress,
    watermark: Option<String>,
) -> Result<ExtractOutput, StageError>
where
    I: Iterator<Item = Result<RawReview, E>> + Send,
    E: std::fmt::Display,
{
    extract_rows_in_parts(lake, run, rows, progress, watermark, RAW_PART_ROWS).await
}

/// [`extract_rows`] with the rows per part given.
pub async fn extract_rows_in_parts<I, E>(
    lake: Arc<dyn Lake>,
    run: &RunId,
    rows: I,
    progress: &dyn Progress,
    watermark: Option<String>,
    part_rows: usize,
) -> Result<ExtractOutput, StageError>
where
    I: Iterator<Item = Result<RawReview, E>> + Send,
    E: std::fmt::Display,
{
    let started_at = run_started_at(lake.as_ref(), run, Utc::now()).await?;
    // Rows of buyers who asked for erasure are written redacted (the review id only): raw/
    // never holds them again, and every count of the run still adds up.
    let erased = state::read_erased_buyers(lake.as_ref()).await?;
    let mut redacted = 0u64;
    let part_rows = part_rows.max(1);
    progress.start("extract", rows.size_hint().1.map(|n| n as u64));
    let handle = tokio::runtime::Handle::current();
    // The source iterator may block (a file, a channel fed by a database reader): run the
    // whole loop off the async workers; each full part is written as soon as it is encoded.
    let (keys, count) = tokio::task::block_in_place(|| {
        let mut keys: Vec<String> = Vec::new();
        let mut count = 0u64;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut rows = rows.peekable();
        // An empty source still gets one (empty) part: the run's raw/ always exists.
        let mut force_one = true;
        while rows.peek().is_some() || force_one {
            force_one = false;
            let key = layout::raw_key(run, keys.len());
            let mut buf = ParquetBuffer::new(Dataset::Raw).map_err(StageError::parquet(&key))?;
            let mut in_part = 0usize;
            for row in rows.by_ref() {
                let row = row.map_err(|e| StageError::Source {
                    message: e.to_string(),
                    retryable: false,
                })?;
                let row = if row.buyer_key().is_some_and(|b| erased.contains(b)) {
                    redacted += 1;
                    row.redacted()
                } else {
                    row
                };
                batch.push(row);
                count += 1;
                in_part += 1;
                if batch.len() == BATCH_ROWS || in_part == part_rows {
                    let b =
                        raw_to_batch(&batch).map_err(|e| StageError::Internal(e.to_string()))?;
                    buf.write(&b).map_err(StageError::parquet(&key))?;
                    progress.advance(batch.len() as u64);
                    batch.clear();
                }
                if in_part == part_rows {
                    break;
                }
            }
            if !batch.is_empty() {
                let b = raw_to_batch(&batch).map_err(|e| StageError::Internal(e.to_string()))?;
                buf.write(&b).map_err(StageError::parquet(&key))?;
                progress.advance(batch.len() as u64);
                batch.clear();
            }
            let bytes = buf
                .finish(&[("reviews.run_id", run.to_string())])
                .map_err(StageError::parquet(&key))?;
            handle.block_on(lake.put(&key, bytes))?;
            keys.push(key);
        }
        Ok::<_, StageError>((keys, count))
    })?;
    remove_stale_raw_parts(lake.as_ref(), run, &keys).await?;
    progress.finish();
    tracing::info!(
        run_id = %run, rows = count, parts = keys.len(), redacted, "extract done"
    );
    Ok(ExtractOutput {
        run_id: run.clone(),
        raw_keys: keys,
        rows: count,
        started_at,
        watermark,
        incremental: false,
        deletions_key: None,
        deleted: 0,
    })
}

/// A re-run with fewer rows must not leave an earlier attempt's extra parts behind.
async fn remove_stale_raw_parts(
    lake: &dyn Lake,
    run: &RunId,
    keep: &[String],
) -> Result<(), StageError> {
    for key in lake.list(&layout::run_prefix(layout::RAW, run)).await? {
        if key.ends_with(".parquet") && !keep.contains(&key) {
            lake.delete(&key).await?;
        }
    }
    Ok(())
}
