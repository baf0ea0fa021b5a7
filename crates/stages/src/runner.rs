//! The local runner: the stages in order, in one process, exactly as the state machine chains
//! them in AWS (extract → transform → score each shard → publish), with a run summary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use reviews_domain::RawReview;
use reviews_lake::{Lake, RunId, layout};
use serde::{Deserialize, Serialize};

use crate::error::StageError;
use crate::extract::extract_rows;
use crate::progress::Progress;
use crate::publish::{PublishInput, publish};
use crate::score::{ScoreInput, ScoreOutput, Scorer, score_shard};
use crate::transform::{Shard, TransformInput, transform};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: RunId,
    /// Target rows per shard (see [`TransformInput::shard_rows`]).
    pub shard_rows: Option<usize>,
    /// Shards scored at once.
    pub workers: usize,
    /// Carry the cleaned rows of the previous run over (the source holds only what changed;
    /// see [`crate::carry`]). False for a source read whole.
    pub merge_previous: bool,
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
    pub shards: usize,
    pub manifest_key: String,
    pub checksum: String,
    pub stages: Vec<StageTiming>,
    /// rows_extracted == cleaned + rejected, and cleaned == curated.
    pub accounted: bool,
}

/// Score every shard, `workers` at a time, as the state machine's Map state does in AWS.
/// Results come back in shard order.
pub async fn score_shards(
    lake: Arc<dyn Lake>,
    scorer: Arc<Scorer>,
    shards: &[Shard],
    workers: usize,
    progress: Arc<dyn Progress>,
) -> Result<Vec<ScoreOutput>, StageError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(workers.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for shard in shards {
        let (lake, scorer, progress, permits) = (
            lake.clone(),
            scorer.clone(),
            progress.clone(),
            permits.clone(),
        );
        let input = ScoreInput {
            run_id: shard.run_id.clone(),
            cleaned_key: shard.cleaned_key.clone(),
            index: shard.index,
        };
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            score_shard(lake, &scorer, &input, progress.as_ref()).await
        });
    }
    let mut scored = Vec::with_capacity(shards.len());
    while let Some(done) = tasks.join_next().await {
        scored.push(done.map_err(|e| StageError::Internal(format!("score task: {e}")))??);
    }
    scored.sort_by_key(|s| s.index);
    Ok(scored)
}

/// Run the whole pipeline locally on rows from `source`.
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
    let run = &options.run_id;
    let mut stages = Vec::new();
    let mut timed = |name: &str, t: Instant| {
        stages.push(StageTiming {
            stage: name.to_owned(),
            seconds: t.elapsed().as_secs_f64(),
        })
    };

    let t = Instant::now();
    let extracted = extract_rows(lake.clone(), run, source, progress.as_ref(), None).await?;
    timed("extract", t);

    let t = Instant::now();
    let transformed = transform(
        lake.clone(),
        &TransformInput {
            run_id: run.clone(),
            raw_keys: extracted.raw_keys.clone(),
            shard_rows: options.shard_rows,
            merge_previous: options.merge_previous,
        },
        progress.as_ref(),
    )
    .await?;
    timed("transform + load cleaned", t);

    let t = Instant::now();
    let scored = score_shards(
        lake.clone(),
        scorer,
        &transformed.shards,
        options.workers,
        progress.clone(),
    )
    .await?;
    timed("score + load curated", t);

    let t = Instant::now();
    let curated: u64 = scored.iter().map(|s| s.rows).sum();
    let published = publish(
        lake.clone(),
        &PublishInput {
            run_id: run.clone(),
            curated_keys: scored.iter().map(|s| s.curated_key.clone()).collect(),
            expected_rows: Some(curated),
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
        curated,
        products: published.products,
        shards: transformed.shards.len(),
        manifest_key: published.manifest_key,
        checksum: published.checksum,
        stages,
        accounted: extracted.rows == transformed.cleaned + transformed.rejected
            && transformed.total_rows == curated,
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
