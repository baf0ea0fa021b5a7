//! `reviews erase --buyer ID`: the right to erasure. The workflow is the library's
//! ([`reviews_stages::erase::erase`], the same as the erase Lambda runs): the buyer goes on
//! `state/erased_buyers.json`, their archive documents are deleted, every object of the lake
//! (every prefix, every run kept for rollback) is scrubbed of them with its manifests kept
//! valid. Then, here, the live dataset is republished so that product statistics are
//! recomputed without them (in AWS the next scheduled run does it). This file parses the
//! arguments and prints.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use reviews_archive::{Archive, ArchiveConfig};
use reviews_lake::RunId;
use reviews_stages::erase::{ArchiveStep, EraseOptions, EraseReport, erase, validate_buyer};
use reviews_stages::transform::ERASED_BUYERS_KEY;
use reviews_stages::{NoProgress, RunOptions, run_local};
use reviews_stores::open_lake;
use serde::Serialize;

use crate::LakeArgs;
use crate::config::{self, ClassifierChoice, parse_classifier_arg};

#[derive(Args)]
pub struct EraseArgs {
    #[command(flatten)]
    lake: LakeArgs,
    /// The buyer (customer) id to erase.
    #[arg(long)]
    buyer: String,
    /// The archive writer's MongoDB URI: required, the archive holds the buyer's raw rows.
    #[arg(long, env = "REVIEWS_MONGO_URI", hide_env_values = true)]
    mongo_uri: Option<String>,
    /// Erase from the lake only, leaving the archive as it is: the report says so and the
    /// command exits non-zero (the erasure is not complete until it runs with the archive).
    #[arg(long)]
    skip_archive: bool,
    /// Do not republish the live dataset (its files are scrubbed in place; the next run
    /// recomputes the product statistics).
    #[arg(long)]
    no_republish: bool,
    /// Scoring configuration for the republished dataset (as for `reviews run`).
    #[arg(long, env = "REVIEWS_SCORING_CONFIG")]
    config: Option<PathBuf>,
    /// The ranker file for the republished dataset (as for `reviews run`).
    #[arg(long, env = "REVIEWS_RANKER")]
    ranker: Option<PathBuf>,
    /// Topic classifier for the republished dataset.
    #[arg(long, default_value = "auto", value_parser = parse_classifier_arg)]
    classifier: ClassifierChoice,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct CliReport {
    #[serde(flatten)]
    erasure: EraseReport,
    /// The run republished without the buyer; None when nothing was live (or
    /// `--no-republish`).
    republished_run: Option<String>,
}

pub async fn run(args: EraseArgs) -> Result<()> {
    let buyer = validate_buyer(&args.buyer).context("--buyer")?;
    let archive = match (&args.mongo_uri, args.skip_archive) {
        (Some(_), true) => bail!("give --mongo-uri or --skip-archive, not both"),
        (None, false) => bail!(
            "the archive holds the buyer's raw rows: give the archive writer's MongoDB URI \
             (--mongo-uri or REVIEWS_MONGO_URI), or --skip-archive to erase from the lake only \
             (the erasure then stays incomplete and the command exits non-zero)"
        ),
        (Some(uri), false) => Some(Archive::connect(ArchiveConfig::new(uri.clone())).await?),
        (None, true) => None,
    };
    let lake = open_lake(&args.lake.lake).await?;
    let step = match &archive {
        Some(a) => ArchiveStep::Erase(a),
        None => ArchiveStep::Waived,
    };
    let mut erasure = erase(lake.as_ref(), &buyer, step, &EraseOptions::default())
        .await
        .context("erasing")?;

    let mut republished_run = None;
    if erasure.live_run.is_some() && !args.no_republish {
        // A run with no new rows that carries the scrubbed rows over: a full pass, because
        // the erased list grew since the live snapshot, so product statistics are recomputed.
        let scorer = Arc::new(config::load_scorer(
            args.config.as_deref(),
            config::classifier(args.classifier)?,
            args.ranker.as_deref(),
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
        erasure.live_run = Some(run_id.clone());
        erasure.live_rows_after = Some(summary.curated);
        republished_run = Some(run_id.to_string());
    }
    let report = CliReport {
        erasure,
        republished_run,
    };

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if !report.erasure.complete {
        bail!(
            "buyer {buyer}: erased from the lake, NOT from the archive (--skip-archive): run \
             `reviews erase --buyer {buyer}` again with --mongo-uri to complete the erasure"
        );
    }
    Ok(())
}

fn print_report(report: &CliReport) {
    let e = &report.erasure;
    let s = &e.scrub;
    println!(
        "buyer {}: {}",
        e.buyer,
        if e.complete {
            "erased"
        } else {
            "erased from the lake only"
        }
    );
    match e.archive_documents_deleted {
        Some(n) => println!("  archive: {n} document(s) deleted"),
        None => println!("  archive: NOT erased (--skip-archive)"),
    }
    println!(
        "  recorded in {ERASED_BUYERS_KEY}{}: later runs write their rows redacted and reject them",
        if e.newly_recorded {
            ""
        } else {
            " (already there)"
        }
    );
    println!(
        "  lake: {} object(s) scanned, {} rewritten, {} deleted; {} raw row(s) redacted, {} \
         reject(s) reduced to id and reason, {} cleaned and {} curated row(s) removed; {} \
         manifest(s)/record(s) updated, {} verified",
        s.objects_scanned,
        s.objects_rewritten,
        s.objects_deleted,
        s.raw_rows_redacted,
        s.rejects_redacted,
        s.cleaned_rows_removed,
        s.curated_rows_removed,
        s.references_updated,
        s.manifests_verified
    );
    match (&e.live_run, e.live_rows_before, e.live_rows_after) {
        (Some(run), Some(b), Some(a)) => println!(
            "  live dataset: run {run} ({b} -> {a} reviews, {} removed){}",
            b.saturating_sub(a),
            if report.republished_run.is_some() {
                ", republished"
            } else {
                ""
            }
        ),
        _ => println!("  live dataset: none published yet"),
    }
}
