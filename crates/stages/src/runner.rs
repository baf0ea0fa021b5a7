//! The local runner: the stages in order, in one process, exactly as the state machine chains
//! them in AWS (extract → transform → merge + score each changed bucket → publish), with a
//! run summary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use reviews_domain::RawReview;
use reviews_lake::state::{self, ChangeCounts, LeaseOutcome, RunBase};
use reviews_lake::{Lake, RunId, layout};
use serde::{Deserialize, Serialize};

use crate::bucket::{BucketOutput, merge_bucket};
use crate::error::StageError;
use reviews_ports::ChangeFeed;

use crate::extract::{ExtractOutput, extract_changes, extract_rows};
use crate::progress::Progress;
use crate::publish::{PublishInput, PublishStatus, publish};
use crate::score::Scorer;
use crate::transform::{BucketItem, TransformInput, plan_items, transform};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: RunId,
    /// Product buckets (see [`TransformInput::buckets`]).
    pub buckets: Option<u32>,
    /// Buckets merged and scored at once.
    pub workers: usize,
    /// Carry the cleaned rows of the previous run over (the source holds only what changed;
    /// see [`crate::carry`]). False for a source read whole.
    pub merge_previous: bool,
    /// How long the run lease holds; a run that dies keeps later runs out this long.
    pub lease_ttl: std::time::Duration,
}

/// The default lease: longer than any run, shorter than the daily schedule.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(4 * 3600);

/// The lease duration: `REVIEWS_LEASE_TTL_SECS` when set, else [`DEFAULT_LEASE_TTL`].
pub fn lease_ttl_from_env() -> Result<std::time::Duration, StageError> {
    match std::env::var("REVIEWS_LEASE_TTL_SECS") {
        Err(_) => Ok(DEFAULT_LEASE_TTL),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(std::time::Duration::from_secs)
            .map_err(|_| {
                StageError::Input(format!(
                    "REVIEWS_LEASE_TTL_SECS={v:?} is not a whole number of seconds"
                ))
            }),
    }
}

/// The bucket count: `REVIEWS_BUCKETS` when set, else `None` (the default,
/// [`reviews_lake::layout::DEFAULT_BUCKETS`]).
pub fn buckets_from_env() -> Result<Option<u32>, StageError> {
    match std::env::var("REVIEWS_BUCKETS") {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=reviews_lake::layout::MAX_BUCKETS).contains(&n) => Ok(Some(n)),
            _ => Err(StageError::Input(format!(
                "REVIEWS_BUCKETS={v:?}: use a whole number from 1 to {}",
                reviews_lake::layout::MAX_BUCKETS
            ))),
        },
    }
}

/// Start (or retry) run `run`: take the run lease, then fix the commit the run builds on.
/// [`StageError::LeaseHeld`] when another run holds the lease: this run must do nothing.
#[tracing::instrument(name = "begin_run", skip_all, fields(run_id = %run))]
pub async fn begin_run(
    lake: &dyn Lake,
    run: &RunId,
    lease_ttl: std::time::Duration,
) -> Result<RunBase, StageError> {
    let ttl = chrono::Duration::from_std(lease_ttl)
        .map_err(|e| StageError::Input(format!("lease duration: {e}")))?;
    match state::acquire_lease(lake, run, ttl, chrono::Utc::now()).await? {
        LeaseOutcome::Held(lease) => Err(StageError::LeaseHeld {
            holder: lease.run_id,
            expires_at: lease.expires_at,
        }),
        LeaseOutcome::Acquired(_) => Ok(state::run_base(lake, run, chrono::Utc::now()).await?),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTiming {
    pub stage: String,
    pub seconds: f64,
}

/// What a run did, stage by stage. Written to `state/runs/run=<id>/summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: RunId,
    pub lake: String,
    pub rows_extracted: u64,
    pub cleaned: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub rejects_key: String,
    pub curated: u64,
    pub products: u64,
    /// Product buckets of the snapshot, and how many of them this run wrote (the others
    /// are the base's files, referenced).
    pub buckets: u32,
    pub buckets_written: u64,
    /// Why every bucket was rewritten, when it was.
    pub full_pass: Option<String>,
    /// Reviews the classifier saw / whose topics were reused by unchanged text.
    pub encoded: u64,
    pub reused: u64,
    pub manifest_key: String,
    pub checksum: String,
    pub stages: Vec<StageTiming>,
    /// How the dataset changed against the commit the run built on.
    pub changes: ChangeCounts,
    pub status: PublishStatus,
    /// The live commit's sequence after the run.
    pub sequence: u64,
    /// rows_extracted == cleaned + rejected, the change counts add up, and the snapshot holds
    /// every row transform wrote.
    pub accounted: bool,
}

/// Merge and score every changed bucket, `workers` at a time, as the state machine's Map
/// state does in AWS. Results come back in bucket order.
pub async fn merge_buckets(
    lake: Arc<dyn Lake>,
    scorer: Arc<Scorer>,
    items: &[BucketItem],
    workers: usize,
    progress: Arc<dyn Progress>,
) -> Result<Vec<BucketOutput>, StageError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(workers.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for item in items {
        let (lake, scorer, progress, permits, item) = (
            lake.clone(),
            scorer.clone(),
            progress.clone(),
            permits.clone(),
            item.clone(),
        );
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            merge_bucket(lake, &scorer, &item, progress.as_ref()).await
        });
    }
    let mut merged = Vec::with_capacity(items.len());
    while let Some(done) = tasks.join_next().await {
        merged.push(done.map_err(|e| StageError::Internal(format!("bucket task: {e}")))??);
    }
    merged.sort_by_key(|m| m.bucket);
    Ok(merged)
}

/// Run the whole pipeline locally on rows from `source` (a file, a generator): a full read
/// each time; `options.merge_previous` carries the live snapshot's rows over.
pub async fn run_local<I, E>(
    lake: Arc<dyn Lake>,
    source: I,
    scorer: Arc<Scorer>,
    options: &RunOptions,
    progress: Arc<dyn Progress>,
) -> Result<RunSummary, StageError>
where
    I: Iterator<Item = Result<RawReview, E>> + Send,
    E: std::fmt::Display,
{
    let (run, bars) = (&options.run_id, progress.clone());
    let extract = |lake: Arc<dyn Lake>| async move {
        let mut out = extract_rows(lake, run, source, bars.as_ref(), None).await?;
        out.incremental = options.merge_previous;
        Ok(out)
    };
    run_with(lake, extract, scorer, options, progress).await
}

/// Run the whole pipeline locally on a change feed (the database source): the extract reads
/// what changed since the live commit ([`extract_changes`]), as the extract Lambda does.
pub async fn run_from_feed(
    lake: Arc<dyn Lake>,
    feed: &dyn ChangeFeed,
    scorer: Arc<Scorer>,
    options: &RunOptions,
    progress: Arc<dyn Progress>,
) -> Result<RunSummary, StageError> {
    let (run, bars) = (&options.run_id, progress.clone());
    let extract = |lake: Arc<dyn Lake>| async move {
        extract_changes(lake, run, feed, None, bars.as_ref()).await
    };
    run_with(lake, extract, scorer, options, progress).await
}

/// Take the run lease, extract with `extract`, then the other stages; on failure give the
/// lease back (the watermark did not move: the next run extracts these rows again).
async fn run_with<F, Fut>(
    lake: Arc<dyn Lake>,
    extract: F,
    scorer: Arc<Scorer>,
    options: &RunOptions,
    progress: Arc<dyn Progress>,
) -> Result<RunSummary, StageError>
where
    F: FnOnce(Arc<dyn Lake>) -> Fut,
    Fut: Future<Output = Result<ExtractOutput, StageError>>,
{
    let run = &options.run_id;
    begin_run(lake.as_ref(), run, options.lease_ttl).await?;
    let result = async {
        let t = Instant::now();
        let extracted = extract(lake.clone()).await?;
        let extract_timing = StageTiming {
            stage: "extract".to_owned(),
            seconds: t.elapsed().as_secs_f64(),
        };
        run_stages(
            lake.clone(),
            extracted,
            scorer,
            options,
            progress,
            vec![extract_timing],
        )
        .await
    }
    .await;
    if result.is_err()
        && let Err(e) = state::release_lease(lake.as_ref(), run).await
    {
        tracing::warn!(run_id = %run, error = %e, "could not release the run lease");
    }
    result
}

async fn run_stages(
    lake: Arc<dyn Lake>,
    extracted: ExtractOutput,
    scorer: Arc<Scorer>,
    options: &RunOptions,
    progress: Arc<dyn Progress>,
    mut stages: Vec<StageTiming>,
) -> Result<RunSummary, StageError> {
    let run = &options.run_id;
    let mut timed = |name: &str, t: Instant| {
        stages.push(StageTiming {
            stage: name.to_owned(),
            seconds: t.elapsed().as_secs_f64(),
        })
    };
    let t = Instant::now();
    let transformed = transform(
        lake.clone(),
        &TransformInput {
            run_id: run.clone(),
            raw_keys: extracted.raw_keys.clone(),
            merge_previous: options.merge_previous || extracted.incremental,
            deletions_key: extracted.deletions_key.clone(),
            buckets: options.buckets,
            routed: false,
        },
        progress.as_ref(),
    )
    .await?;
    timed("transform + load cleaned", t);

    let t = Instant::now();
    let items = plan_items(lake.as_ref(), run).await?;
    let merged = merge_buckets(
        lake.clone(),
        scorer,
        &items,
        options.workers,
        progress.clone(),
    )
    .await?;
    timed("merge + score buckets", t);

    let t = Instant::now();
    let written: u64 = merged.iter().map(|m| m.rows).sum();
    let published = publish(
        lake.clone(),
        &PublishInput {
            run_id: run.clone(),
            expected_rows: Some(written),
            watermark: extracted.watermark.clone(),
        },
    )
    .await?;
    timed("publish", t);

    let summary = RunSummary {
        run_id: run.clone(),
        lake: lake.describe(),
        rows_extracted: extracted.rows,
        cleaned: transformed.cleaned,
        rejected: transformed.rejected,
        rejected_by_reason: transformed.rejected_by_reason,
        rejects_key: transformed.rejects_key,
        curated: published.rows,
        products: published.products,
        buckets: published.buckets,
        buckets_written: published.buckets_written,
        full_pass: transformed.full_pass,
        encoded: published.encoded,
        reused: published.reused,
        manifest_key: published.manifest_key,
        checksum: published.checksum,
        stages,
        accounted: extracted.rows == transformed.cleaned + transformed.rejected
            && published.changes.balanced()
            && published.changes.new + published.changes.updated == transformed.cleaned,
        changes: published.changes,
        status: published.status,
        sequence: published.sequence,
    };
    lake.put(
        &layout::summary_key(run),
        serde_json::to_vec_pretty(&summary)
            .expect("serialises")
            .into(),
    )
    .await?;
    if !summary.accounted {
        return Err(StageError::Internal(format!(
            "row accounting broken: {} extracted, {} cleaned, {} rejected, {} curated",
            summary.rows_extracted, summary.cleaned, summary.rejected, summary.curated
        )));
    }
    Ok(summary)
}
