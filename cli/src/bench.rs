//! `reviews bench`: the pipeline's throughput on synthetic reviews, with peak memory, against
//! a baseline measured in the same run (reading raw/ and writing it back as zstd Parquet: the
//! I/O and compression floor any pipeline pays).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use reviews_lake::parquet_io::{Dataset, read_parquet, write_parquet};
use reviews_lake::{Lake, LocalLake, RunId};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::{
    NoProgress, PublishInput, TransformInput, extract_rows, publish, score_shards, transform,
};
use serde::Serialize;

#[derive(Args)]
pub struct BenchArgs {
    /// Synthetic reviews to process.
    #[arg(long, default_value_t = 1_000_000)]
    reviews: u64,
    /// Shards scored at once (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct BenchReport {
    reviews: u64,
    cores: usize,
    extract_s: f64,
    transform_s: f64,
    score_s: f64,
    publish_s: f64,
    /// transform + write cleaned + score + write curated + publish.
    pipeline_s: f64,
    pipeline_rows_per_s: f64,
    baseline_copy_s: f64,
    /// pipeline time / baseline time.
    pipeline_over_baseline: f64,
    peak_rss_mib: f64,
    cleaned_mib: f64,
    curated_mib: f64,
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn dir_mib(lake: &dyn Lake, prefix: &str) -> Result<f64> {
    let mut total = 0u64;
    for k in lake.list(prefix).await? {
        total += lake.size(&k).await?.unwrap_or(0);
    }
    Ok(total as f64 / (1024.0 * 1024.0))
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("reviews-bench-{}", std::process::id()));
    let lake_impl = LocalLake::new(&dir);
    let lake: Arc<dyn Lake> = Arc::new(lake_impl);
    let result = bench(lake.clone(), &args).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "reviews bench: {} synthetic reviews, {} cores",
            report.reviews, report.cores
        );
        println!(
            "  extract (generate + write raw)   {:>8.2} s (not in the pipeline figure)",
            report.extract_s
        );
        println!(
            "  transform + write cleaned        {:>8.2} s",
            report.transform_s
        );
        println!(
            "  score + write curated            {:>8.2} s",
            report.score_s
        );
        println!(
            "  publish (validate + pointer)     {:>8.2} s",
            report.publish_s
        );
        println!(
            "  pipeline                         {:>8.2} s  = {:.0} reviews/s",
            report.pipeline_s, report.pipeline_rows_per_s
        );
        println!(
            "  baseline: read raw + write zstd  {:>8.2} s",
            report.baseline_copy_s
        );
        println!(
            "  pipeline / baseline              {:>8.2} x",
            report.pipeline_over_baseline
        );
        println!(
            "  peak RSS                         {:>8.0} MiB",
            report.peak_rss_mib
        );
        println!(
            "  cleaned {:.1} MiB, curated {:.1} MiB",
            report.cleaned_mib, report.curated_mib
        );
    }
    Ok(())
}

async fn bench(lake: Arc<dyn Lake>, args: &BenchArgs) -> Result<BenchReport> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = args.workers.unwrap_or(cores);
    let run = RunId::parse("bench").expect("valid");
    let scorer = Arc::new(crate::config::load_scorer(
        None,
        crate::config::classifier(crate::config::ClassifierChoice::Keywords)?,
    )?);

    let t = Instant::now();
    let rows = SyntheticReviews::new(SyntheticConfig {
        reviews: args.reviews,
        ..Default::default()
    })
    .map(Ok::<_, std::convert::Infallible>);
    let extracted = extract_rows(lake.clone(), &run, rows, &NoProgress, None).await?;
    let extract_s = t.elapsed().as_secs_f64();

    // Baseline: the same raw rows read and written back as zstd Parquet.
    let t = Instant::now();
    let mut batches = Vec::new();
    for key in &extracted.raw_keys {
        batches.extend(read_parquet(Dataset::Raw, lake.get(key).await?)?);
    }
    let copy = write_parquet(Dataset::Raw, &batches, &[])?;
    lake.put("bench/copy.parquet", copy).await?;
    drop(batches);
    let baseline_copy_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let input = TransformInput {
        run_id: run.clone(),
        raw_keys: extracted.raw_keys.clone(),
        shard_rows: None,
        merge_previous: false,
        deletions_key: None,
    };
    let transformed = transform(lake.clone(), &input, &NoProgress).await?;
    let transform_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let scored = score_shards(
        lake.clone(),
        scorer,
        &transformed.shards,
        workers,
        Arc::new(NoProgress),
    )
    .await?;
    let score_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let rows: u64 = scored.iter().map(|s| s.rows).sum();
    publish(
        lake.clone(),
        &PublishInput {
            run_id: run.clone(),
            curated_keys: scored.iter().map(|s| s.curated_key.clone()).collect(),
            expected_rows: Some(rows),
            watermark: None,
        },
    )
    .await?;
    let publish_s = t.elapsed().as_secs_f64();

    let pipeline_s = transform_s + score_s + publish_s;
    Ok(BenchReport {
        reviews: args.reviews,
        cores,
        extract_s,
        transform_s,
        score_s,
        publish_s,
        pipeline_s,
        pipeline_rows_per_s: args.reviews as f64 / pipeline_s,
        baseline_copy_s,
        pipeline_over_baseline: pipeline_s / baseline_copy_s,
        peak_rss_mib: peak_rss_mib(),
        cleaned_mib: dir_mib(lake.as_ref(), "cleaned/").await?,
        curated_mib: dir_mib(lake.as_ref(), "curated/").await?,
    })
}
