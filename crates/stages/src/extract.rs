//! Extract: read review rows from a source and write them, as read, to raw/.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reviews_domain::RawReview;
use reviews_domain::schema::raw_to_batch;
use reviews_lake::parquet_io::{Dataset, ParquetBuffer};
use reviews_lake::{Lake, LakeError, RunId, layout};
use serde::{Deserialize, Serialize};

use crate::error::StageError;
use crate::progress::Progress;

/// Rows per raw record batch (and per progress tick).
const BATCH_ROWS: usize = 16 * 1024;

/// What extract hands to the next stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractOutput {
    pub run_id: RunId,
    pub raw_key: String,
    pub rows: u64,
    /// The run's logical start time: fixed on the first attempt, reused by re-runs, so the
    /// same run always produces the same objects.
    pub started_at: DateTime<Utc>,
    /// Where the next incremental extract starts (for database sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    /// Only rows changed since an earlier run were read (transform then carries the earlier
    /// cleaned rows over). False for a full read.
    #[serde(default)]
    pub incremental: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunRecord {
    run_id: RunId,
    started_at: DateTime<Utc>,
}

fn run_record_key(run: &RunId) -> String {
    format!("state/runs/run={run}/run.json")
}

/// The logical start time of a run: recorded on its first attempt, reused afterwards.
pub async fn run_started_at(
    lake: &dyn Lake,
    run: &RunId,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StageError> {
    let key = run_record_key(run);
    match lake.get(&key).await {
        Ok(bytes) => {
            let rec: RunRecord = serde_json::from_slice(&bytes)
                .map_err(|e| StageError::Validation(format!("{key}: {e}")))?;
            Ok(rec.started_at)
        }
        Err(LakeError::NotFound(_)) => {
            // Microsecond precision: what Parquet timestamps keep.
            let started_at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
            let rec = RunRecord {
                run_id: run.clone(),
                started_at,
            };
            lake.put(&key, serde_json::to_vec(&rec).expect("serialises").into())
                .await?;
            Ok(started_at)
        }
        Err(e) => Err(e.into()),
    }
}

/// Extract rows from any source iterator into `raw/run=<id>/part-00000.parquet`.
/// A source error stops the stage (nothing is published from a partial extract).
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
    let started_at = run_started_at(lake.as_ref(), run, Utc::now()).await?;
    let key = layout::raw_key(run, 0);
    progress.start("extract", rows.size_hint().1.map(|n| n as u64));
    let encode = || -> Result<(bytes::Bytes, u64), StageError> {
        let mut buf = ParquetBuffer::new(Dataset::Raw).map_err(StageError::parquet(&key))?;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut count = 0u64;
        let flush = |batch: &mut Vec<RawReview>, buf: &mut ParquetBuffer| {
            let b = raw_to_batch(batch).map_err(|e| StageError::Internal(e.to_string()))?;
            buf.write(&b).map_err(StageError::parquet(&key))?;
            progress.advance(batch.len() as u64);
            batch.clear();
            Ok::<_, StageError>(())
        };
        for row in rows {
            let row = row.map_err(|e| StageError::Source {
                message: e.to_string(),
                retryable: false,
            })?;
            batch.push(row);
            count += 1;
            if batch.len() == BATCH_ROWS {
                flush(&mut batch, &mut buf)?;
            }
        }
        if !batch.is_empty() {
            flush(&mut batch, &mut buf)?;
        }
        let bytes = buf
            .finish(&[("reviews.run_id", run.to_string())])
            .map_err(StageError::parquet(&key))?;
        Ok((bytes, count))
    };
    let (bytes, count) = tokio::task::block_in_place(encode)?;
    lake.put(&key, bytes).await?;
    progress.finish();
    tracing::info!(run_id = %run, rows = count, key = %key, "extract done");
    Ok(ExtractOutput {
        run_id: run.clone(),
        raw_key: key,
        rows: count,
        started_at,
        watermark,
        incremental: false,
    })
}
