//! Extract: read review rows from a source and write them, as read, to raw/.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reviews_domain::RawReview;
use reviews_domain::schema::raw_to_batch;
use reviews_lake::parquet_io::{Dataset, ParquetBuffer};
use reviews_lake::{Lake, RunId, layout, state};
pub use reviews_ports::Deletion;
use reviews_ports::{ChangeFeed, PortError, RawSource, ReadRange};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::StageError;
use crate::progress::Progress;

/// Rows per raw record batch (and per progress tick), and per batch an [`IterSource`] reads.
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

/// A synchronous row iterator (a file reader, a generator) as a [`RawSource`]. A row error
/// ends the read as a fatal source error. Reading may block: on a multi-thread runtime each
/// batch is read in `block_in_place`, off the async workers.
pub struct IterSource<I> {
    rows: I,
}

impl<I> IterSource<I> {
    pub fn new(rows: I) -> Self {
        Self { rows }
    }
}

#[async_trait::async_trait]
impl<I, E> RawSource for IterSource<I>
where
    I: Iterator<Item = Result<RawReview, E>> + Send,
    E: std::fmt::Display,
{
    async fn next_batch(&mut self) -> Result<Option<Vec<RawReview>>, PortError> {
        let rows = &mut self.rows;
        let mut read = || {
            let mut batch = Vec::with_capacity(BATCH_ROWS);
            for row in rows.by_ref() {
                batch.push(row.map_err(|e| PortError::fatal(format!("source: {e}")))?);
                if batch.len() == BATCH_ROWS {
                    break;
                }
            }
            Ok((!batch.is_empty()).then_some(batch))
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(read),
            _ => read(),
        }
    }

    fn size_hint(&self) -> Option<u64> {
        self.rows.size_hint().1.map(|n| n as u64)
    }
}

/// Extract rows from any source iterator into `raw/run=<id>/part-NNNNN.parquet`, one part per
/// [`RAW_PART_ROWS`] rows ([`extract_source`] over an [`IterSource`]).
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
    let mut source = IterSource::new(rows);
    extract_source(lake, run, &mut source, progress, watermark, RAW_PART_ROWS).await
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
    let mut source = IterSource::new(rows);
    extract_source(lake, run, &mut source, progress, watermark, part_rows).await
}

/// Extract a source's rows into `raw/run=<id>/part-NNNNN.parquet`, `part_rows` rows per part.
/// A part is encoded in memory and written as soon as it is full, so memory stays flat
/// however many rows the source has. A source error stops the stage (nothing is published
/// from a partial extract; a re-run rewrites the run's parts and removes any left by an
/// earlier attempt).
pub async fn extract_source<S: RawSource + ?Sized>(
    lake: Arc<dyn Lake>,
    run: &RunId,
    source: &mut S,
    progress: &dyn Progress,
    watermark: Option<String>,
    part_rows: usize,
) -> Result<ExtractOutput, StageError> {
    let started_at = run_started_at(lake.as_ref(), run, Utc::now()).await?;
    // Rows of buyers who asked for erasure are written redacted (the review id only): raw/
    // never holds them again, and every count of the run still adds up.
    let erased = state::read_erased_buyers(lake.as_ref()).await?;
    let mut redacted = 0u64;
    let part_rows = part_rows.max(1);
    progress.start("extract", source.size_hint());
    let mut keys: Vec<String> = Vec::new();
    let mut count = 0u64;
    // Rows read from the source and not yet encoded, in order.
    let mut pending: std::collections::VecDeque<RawReview> = Default::default();
    let mut ended = false;
    loop {
        fill(source, &mut pending, &mut ended).await?;
        // An empty source still gets one (empty) part: the run's raw/ always exists.
        if pending.is_empty() && !keys.is_empty() {
            break;
        }
        let key = layout::raw_key(run, keys.len());
        let mut buf = ParquetBuffer::new(Dataset::Raw).map_err(StageError::parquet(&key))?;
        let mut in_part = 0usize;
        while in_part < part_rows {
            fill(source, &mut pending, &mut ended).await?;
            if pending.is_empty() {
                break;
            }
            let take = pending.len().min(part_rows - in_part).min(BATCH_ROWS);
            let chunk: Vec<RawReview> = pending
                .drain(..take)
                .map(|row| {
                    if row.buyer_key().is_some_and(|b| erased.contains(b)) {
                        redacted += 1;
                        row.redacted()
                    } else {
                        row
                    }
                })
                .collect();
            let b = raw_to_batch(&chunk).map_err(|e| StageError::Internal(e.to_string()))?;
            buf.write(&b).map_err(StageError::parquet(&key))?;
            progress.advance(take as u64);
            in_part += take;
            count += take as u64;
        }
        let bytes = buf
            .finish(&[("reviews.run_id", run.to_string())])
            .map_err(StageError::parquet(&key))?;
        lake.put(&key, bytes).await?;
        keys.push(key);
    }
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

/// Read from the source until some rows are pending or it ended.
async fn fill<S: RawSource + ?Sized>(
    source: &mut S,
    pending: &mut std::collections::VecDeque<RawReview>,
    ended: &mut bool,
) -> Result<(), StageError> {
    while pending.is_empty() && !*ended {
        match source.next_batch().await? {
            Some(batch) => pending.extend(batch),
            None => *ended = true,
        }
    }
    Ok(())
}

/// Extract what a change feed (the database source) reports into raw/: the rows changed in
/// the run's range into the raw/ parts, the deletions into `raw/run=<id>/deletions.json`.
///
/// The range starts at `from` when given; else, when this run id already extracted once, it
/// is the same range as then (a re-run re-reads its own range and overwrites only its own
/// objects); else it starts at the watermark of the commit the run builds on
/// ([`reviews_lake::state::run_base`], fixed on the run's first attempt); else the read is
/// full. Only after raw/ and the deletions are written is the run's range recorded
/// (`state/runs/run=<id>/extract.json`). The watermark itself does not move here:
/// [`ExtractOutput::watermark`] carries the new position, which publish commits with the data.
pub async fn extract_changes(
    lake: Arc<dyn Lake>,
    run: &RunId,
    feed: &dyn ChangeFeed,
    from: Option<String>,
    progress: &dyn Progress,
) -> Result<ExtractOutput, StageError> {
    extract_changes_in_parts(lake, run, feed, from, progress, RAW_PART_ROWS).await
}

/// [`extract_changes`] with the rows per raw/ part given.
#[tracing::instrument(name = "extract", skip_all, fields(run_id = %run, source = %feed.describe()))]
pub async fn extract_changes_in_parts(
    lake: Arc<dyn Lake>,
    run: &RunId,
    feed: &dyn ChangeFeed,
    from: Option<String>,
    progress: &dyn Progress,
    part_rows: usize,
) -> Result<ExtractOutput, StageError> {
    let (from, upto) = match from {
        Some(w) => (Some(w), None),
        None => match state::read_extract_range::<serde_json::Value>(lake.as_ref(), run).await? {
            Some(range) => {
                tracing::info!(run_id = %run, "re-run: extracting the run's recorded range again");
                let upto = range.to.clone().or(range.from.clone());
                (
                    range.from.map(|v| v.to_string()),
                    upto.map(|v| v.to_string()),
                )
            }
            None => {
                let base = state::run_base(lake.as_ref(), run, Utc::now()).await?;
                (base.watermark, None)
            }
        },
    };
    let mut read = feed
        .read(&ReadRange {
            from: from.clone(),
            upto,
        })
        .await?;
    let mut out =
        extract_source(lake.clone(), run, read.as_mut(), progress, None, part_rows).await?;
    let end = read.finish().await?;
    if let Some(deletions) = &end.deletions {
        out.deletions_key = Some(write_deletions(lake.as_ref(), run, deletions).await?);
        out.deleted = deletions.len() as u64;
    }
    let position = |p: &Option<String>| {
        p.as_deref()
            .map(serde_json::from_str::<serde_json::Value>)
            .transpose()
            .map_err(|e| StageError::Internal(format!("the source's position is not JSON: {e}")))
    };
    let range = state::ExtractRange {
        from: position(&from)?,
        to: position(&end.position)?,
        rows: out.rows,
        deleted: out.deleted,
    };
    state::write_extract_range(lake.as_ref(), run, &range).await?;
    out.watermark = end.position;
    out.incremental = from.is_some();
    tracing::info!(
        run_id = %run, rows = out.rows, deleted = out.deleted, source = %feed.describe(),
        watermark = out.watermark.as_deref().unwrap_or(""), "extract from the change feed done"
    );
    Ok(out)
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
