//! `reviews erase --buyer ID`: the right to erasure. Deletes the buyer's documents from the
//! MongoDB archive, records the buyer in `state/erased_buyers.json` (every later transform
//! rejects their rows with reason `erased_buyer`), and publishes a new run of the live
//! dataset without their reviews. Reports the counts.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use reviews_archive::{Archive, ArchiveConfig};
use reviews_lake::{Lake, LakeError, RunId, open_lake};
use reviews_stages::publish::live_manifest;
use reviews_stages::transform::ERASED_BUYERS_KEY;
use reviews_stages::{NoProgress, RunOptions, run_local};
use serde::{Deserialize, Serialize};

use crate::LakeArgs;
use crate::config::{self, ClassifierChoice};

#[derive(Args)]
pub struct EraseArgs {
    #[command(flatten)]
    lake: LakeArgs,
    /// The buyer (customer) id to erase.
    #[arg(long)]
    buyer: String,
    /// The archive writer's MongoDB URI. Without it the archive is not touched (and the
    /// report says so).
    #[arg(long, env = "REVIEWS_MONGO_URI", hide_env_values = true)]
    mongo_uri: Option<String>,
    /// Scoring configuration for the republished dataset (as for `reviews run`).
    #[arg(long, env = "REVIEWS_SCORING_CONFIG")]
    config: Option<PathBuf>,
    /// Topic classifier for the republished dataset.
    #[arg(long, value_enum, default_value = "auto")]
    classifier: ClassifierChoice,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// When the last erasure was published: `reviews rollback` refuses older runs.
const LAST_ERASURE_KEY: &str = "state/last_erasure.json";

#[derive(Debug, Serialize, Deserialize)]
struct LastErasure {
    at: chrono::DateTime<chrono::Utc>,
}

/// The time of the last erasure, if any.
pub async fn last_erasure(lake: &dyn Lake) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    match lake.get(LAST_ERASURE_KEY).await {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice::<LastErasure>(&bytes)
                .with_context(|| format!("{LAST_ERASURE_KEY} is not valid"))?
                .at,
        )),
        Err(LakeError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Serialize)]
struct EraseReport {
    buyer: String,
    /// Archive documents deleted; None when no archive was given.
    archive_documents_deleted: Option<u64>,
    /// The run published without the buyer; None when there was no dataset to republish.
    republished_run: Option<String>,
    live_rows_before: Option<u64>,
    live_rows_after: Option<u64>,
}

pub async fn run(args: EraseArgs) -> Result<()> {
    let buyer = args.buyer.trim().to_owned();
    if buyer.is_empty() || buyer.len() > 128 || buyer.chars().any(char::is_control) {
        bail!("--buyer: give the buyer id (1-128 printable characters)");
    }
    let lake = open_lake(&args.lake.lake).await?;

    // The list first: from now on no transform admits the buyer, whatever happens next.
    record_erased(lake.as_ref(), &buyer).await?;
    let erased_at = chrono::Utc::now();
    lake.put(
        LAST_ERASURE_KEY,
        serde_json::to_vec(&LastErasure { at: erased_at })?.into(),
    )
    .await?;

    let archive_documents_deleted = match &args.mongo_uri {
        Some(uri) => {
            let archive = Archive::connect(ArchiveConfig::new(uri.clone())).await?;
            Some(
                archive
                    .erase_buyer(&buyer)
                    .await
                    .context("erasing from the archive")?,
            )
        }
        None => None,
    };

    let before = live_manifest(lake.as_ref()).await?;
    let mut report = EraseReport {
        buyer: buyer.clone(),
        archive_documents_deleted,
        republished_run: None,
        live_rows_before: before.as_ref().map(|m| m.rows),
        live_rows_after: None,
    };
    if before.is_some() {
        // A run with no new rows that carries the last cleaned rows over, minus the buyer's.
        let scorer = Arc::new(config::load_scorer(
            args.config.as_deref(),
            config::classifier(args.classifier)?,
        )?);
        let now = chrono::Utc::now();
        let run_id = RunId::parse(&format!("{}-erase", now.format("%Y-%m-%dT%H%M%S")))
            .map_err(anyhow::Error::msg)?;
        let options = RunOptions {
            run_id: run_id.clone(),
            buckets: reviews_stages::buckets_from_env()?,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            merge_previous: true,
            lease_ttl: reviews_stages::lease_ttl_from_env()?,
        };
        let summary = run_local(
            lake.clone(),
            std::iter::empty::<Result<reviews_domain::RawReview, std::convert::Infallible>>(),
            scorer,
            &options,
            Arc::new(NoProgress),
        )
        .await
        .context("republishing the live dataset without the buyer")?;
        report.republished_run = Some(run_id.to_string());
        report.live_rows_after = Some(summary.curated);
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("buyer {buyer}: erased");
    match report.archive_documents_deleted {
        Some(n) => println!("  archive: {n} document(s) deleted"),
        None => println!("  archive: not given (--mongo-uri / REVIEWS_MONGO_URI), not touched"),
    }
    println!("  recorded in {ERASED_BUYERS_KEY}: later runs reject their rows");
    match (
        &report.republished_run,
        report.live_rows_before,
        report.live_rows_after,
    ) {
        (Some(run), Some(b), Some(a)) => println!(
            "  live dataset: run {run} published without them ({b} -> {a} reviews, {} removed)",
            b.saturating_sub(a)
        ),
        _ => println!("  live dataset: none published yet"),
    }
    Ok(())
}

async fn record_erased(lake: &dyn Lake, buyer: &str) -> Result<()> {
    reviews_lake::state::add_erased_buyer(lake, buyer)
        .await
        .with_context(|| format!("recording the erasure in {ERASED_BUYERS_KEY}"))?;
    Ok(())
}
