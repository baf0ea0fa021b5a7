//! Archive: keep every raw row a run extracted, as read, in the archive port (MongoDB in
//! production: `reviews_archive::Archive`), for audit.
//!
//! The archive being down must not stop the pipeline: a retryable error tells the state
//! machine to catch it, and the next run archives the backlog. The backlog is known from the
//! lake: a run is archived once `state/archived/run=<id>.json` exists, written only after all
//! its rows are upserted; [`archive`] archives every run whose raw/ exists without that
//! marker, oldest first, then the current run.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use reviews_domain::schema::batch_to_raw;
use reviews_lake::parquet_io::{Dataset, parquet_batches};
use reviews_lake::{Lake, LakeError, RunId, layout, state};
use reviews_ports::RawArchive;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::StageError;

/// One archived run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedRun {
    pub run_id: RunId,
    /// Raw rows read, one document each.
    pub documents: u64,
    /// Documents created (new review ids) and replaced (already archived).
    pub inserted: u64,
    pub replaced: u64,
    /// Rows of erased buyers (or already redacted) that were not archived; `documents`
    /// counts the rows archived.
    #[serde(default)]
    pub erased: u64,
}

/// A backlog run that could not be archived for a reason a retry will not fix (e.g. its raw/
/// file is unreadable). It keeps no marker, so it is tried again, and is reported every time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedRun {
    pub run_id: RunId,
    pub error: String,
}

/// What the archive stage hands on (small: run ids and counts); also the archive Lambda's
/// output, as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArchiveOutput {
    pub run_id: RunId,
    /// The runs archived by this call: the backlog (oldest first), then this run.
    pub archived_runs: Vec<RunId>,
    /// Over every run in `archived_runs`: documents written, of which created and replaced,
    /// and rows of erased buyers left out (each run's own figures are in its log line).
    pub documents: u64,
    pub inserted: u64,
    pub replaced: u64,
    pub erased: u64,
    /// Backlog runs that failed for a reason a retry will not fix; tried again next time.
    #[serde(default)]
    pub skipped: Vec<SkippedRun>,
}

impl ArchiveOutput {
    fn add(&mut self, run: ArchivedRun) {
        self.documents += run.documents;
        self.inserted += run.inserted;
        self.replaced += run.replaced;
        self.erased += run.erased;
        self.archived_runs.push(run.run_id);
    }
}

/// The archive stage: archive every earlier run whose raw/ exists but has no marker (the
/// backlog left while the archive was down), oldest first, then `run` itself (again, if it
/// was archived before: upserts make that harmless). A retryable error stops at once; a
/// backlog run failing for another reason is reported in [`ArchiveOutput::skipped`] and does
/// not block the others.
pub async fn archive(
    lake: &dyn Lake,
    store: &dyn RawArchive,
    run: &RunId,
) -> Result<ArchiveOutput, StageError> {
    store.prepare().await?;
    let backlog = backlog(lake, run).await?;
    if !backlog.is_empty() {
        tracing::info!(run_id = %run, backlog = backlog.len(), "archiving the backlog");
    }
    let mut out = ArchiveOutput {
        run_id: run.clone(),
        archived_runs: Vec::new(),
        documents: 0,
        inserted: 0,
        replaced: 0,
        erased: 0,
        skipped: Vec::new(),
    };
    for earlier in backlog {
        match archive_run(lake, store, &earlier).await {
            Ok(a) => out.add(a),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::error!(run_id = %earlier, error = %e, "backlog run not archived");
                out.skipped.push(SkippedRun {
                    run_id: earlier,
                    error: e.to_string(),
                });
            }
        }
    }
    out.add(archive_run(lake, store, run).await?);
    Ok(out)
}

/// Archive one run's raw/ files (all parts, a batch at a time), then write its marker. Rows of
/// buyers on the erased list, and rows already redacted, are left out.
#[tracing::instrument(name = "archive_run", skip_all, fields(run_id = %run))]
pub async fn archive_run(
    lake: &dyn Lake,
    store: &dyn RawArchive,
    run: &RunId,
) -> Result<ArchivedRun, StageError> {
    let prefix = layout::run_prefix(layout::RAW, run);
    let parts: Vec<String> = lake
        .list(&prefix)
        .await?
        .into_iter()
        .filter(|k| k.ends_with(".parquet"))
        .collect();
    if parts.is_empty() {
        return Err(LakeError::NotFound(layout::raw_key(run, 0)).into());
    }
    // Read for every run: a backlog run extracted before an erasure may still hold the
    // buyer's rows (until the erasure's scrub reaches it), and must not bring them back.
    let erased = state::read_erased_buyers(lake).await?;
    let mut out = ArchivedRun {
        run_id: run.clone(),
        documents: 0,
        inserted: 0,
        replaced: 0,
        erased: 0,
    };
    for key in parts {
        let bytes = lake.get(&key).await?;
        let bad = |e: reviews_lake::parquet_io::ParquetIoError| StageError::Parquet {
            key: key.clone(),
            source: e,
        };
        for batch in parquet_batches(Dataset::Raw, bytes).map_err(bad)? {
            let batch = batch.map_err(bad)?;
            let mut rows = batch_to_raw(&batch).map_err(|e| bad(e.into()))?;
            let before = rows.len();
            rows.retain(|row| {
                !row.is_redacted() && !row.buyer_key().is_some_and(|b| erased.contains(b))
            });
            out.erased += (before - rows.len()) as u64;
            let upserted = store.upsert(run.as_str(), &rows).await?;
            out.documents += rows.len() as u64;
            out.inserted += upserted.inserted;
            out.replaced += upserted.replaced;
        }
    }
    let marker = state::ArchivedMarker {
        run_id: run.clone(),
        documents: out.documents,
        archived_at: Utc::now(),
    };
    state::write_archived_marker(lake, &marker).await?;
    tracing::info!(
        run_id = %run, documents = out.documents, inserted = out.inserted,
        replaced = out.replaced, erased = out.erased, "run archived"
    );
    Ok(out)
}

/// Runs with raw/ and no archive marker, except `current`, oldest first (by the run's recorded
/// start time, then id).
pub async fn backlog(lake: &dyn Lake, current: &RunId) -> Result<Vec<RunId>, StageError> {
    let with_raw: BTreeSet<RunId> = lake
        .list(&format!("{}/", layout::RAW))
        .await?
        .iter()
        .filter(|k| k.ends_with(".parquet"))
        .filter_map(|k| layout::run_of_key(k))
        .collect();
    let archived = state::archived_runs(lake).await?;
    let mut pending: BTreeMap<(Option<DateTime<Utc>>, RunId), ()> = BTreeMap::new();
    for run in with_raw.difference(&archived) {
        if run != current {
            pending.insert((started_at(lake, run).await?, run.clone()), ());
        }
    }
    Ok(pending.into_keys().map(|(_, r)| r).collect())
}

/// The run's logical start time, fixed by its first extract attempt (the run's base record).
/// `None` for a run without one (raw/ written by hand): those sort first, by id.
async fn started_at(lake: &dyn Lake, run: &RunId) -> Result<Option<DateTime<Utc>>, StageError> {
    Ok(state::read_run_base(lake, run)
        .await?
        .map(|base| base.started_at))
}
