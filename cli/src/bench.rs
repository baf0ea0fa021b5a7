//! `reviews bench`: the pipeline on synthetic reviews, a full load and then a daily run that
//! changes a share of them, with the bytes each wrote and its peak memory; figures against
//! baselines measured in the same process: reading raw/ and writing it back as zstd Parquet
//! (the I/O and compression floor any pipeline pays), and the full load for the daily run.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use reviews_lake::parquet_io::{Dataset, ParquetBuffer, parquet_batches};
use reviews_lake::{Lake, RunId};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::{
    NoProgress, PublishInput, TransformInput, extract_rows, merge_buckets, plan_items, publish,
    transform,
};
use reviews_stores::LocalLake;
use serde::Serialize;

#[derive(Args)]
pub struct BenchArgs {
    /// Synthetic reviews of the full load.
    #[arg(long, default_value_t = 1_000_000)]
    reviews: u64,
    /// Share of the reviews changed by the daily run after the full load (half edited
    /// texts of existing reviews, half new reviews); 0 skips the daily run.
    #[arg(long, default_value_t = 0.01)]
    daily_change: f64,
    /// Product buckets.
    #[arg(long, default_value_t = reviews_lake::layout::DEFAULT_BUCKETS)]
    buckets: u32,
    /// Buckets merged and scored at once (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Topic classifier (keywords by default: the model's cost is measured by `reviews eval`).
    #[arg(long, default_value = "keywords", value_parser = crate::config::parse_classifier_arg)]
    classifier: crate::config::ClassifierChoice,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// One run of the pipeline stages (extract excluded: it is the source's cost).
#[derive(Serialize, Default)]
struct RunFigures {
    rows_in: u64,
    transform_s: f64,
    merge_s: f64,
    publish_s: f64,
    /// transform + merge/score + publish.
    pipeline_s: f64,
    /// Bytes the run wrote to the lake (cleaned/, curated/, rejects/, state/; not raw/).
    written_mib: f64,
    /// Peak resident memory during the run (VmHWM, reset before it).
    peak_rss_mib: f64,
    /// Peak resident memory of each stage (VmHWM, reset before each). The merge figure holds
    /// `--workers` buckets at once; one bucket Lambda holds one.
    transform_peak_rss_mib: f64,
    merge_peak_rss_mib: f64,
    publish_peak_rss_mib: f64,
    buckets_written: u64,
    encoded: u64,
    reused: u64,
}

#[derive(Serialize)]
struct BenchReport {
    reviews: u64,
    cores: usize,
    buckets: u32,
    extract_s: f64,
    baseline_copy_s: f64,
    full: RunFigures,
    /// full pipeline time / baseline time.
    full_over_baseline: f64,
    full_rows_per_s: f64,
    daily: Option<RunFigures>,
    /// daily / full, measured in the same process.
    daily_over_full_time: Option<f64>,
    daily_over_full_bytes: Option<f64>,
    dataset_mib: f64,
}

/// Reset the peak-RSS counter of this process (Linux: `5` to /proc/self/clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
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

pub async fn run(args: BenchArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("reviews-bench-{}", std::process::id()));
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(&dir));
    let result = bench(lake.clone(), &args).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "reviews bench: {} synthetic reviews, {} buckets, {} cores",
        report.reviews, report.buckets, report.cores
    );
    println!(
        "  extract (generate + write raw)   {:>8.2} s (not in the pipeline figures)",
        report.extract_s
    );
    println!(
        "  baseline: read raw + write zstd  {:>8.2} s",
        report.baseline_copy_s
    );
    let print = |name: &str, f: &RunFigures| {
        println!("  {name}: {} rows in", f.rows_in);
        println!(
            "    transform (route + plan)       {:>8.2} s",
            f.transform_s
        );
        println!("    merge + score buckets          {:>8.2} s", f.merge_s);
        println!("    publish                        {:>8.2} s", f.publish_s);
        println!("    pipeline                       {:>8.2} s", f.pipeline_s);
        println!(
            "    written                        {:>8.1} MiB, {} bucket(s)",
            f.written_mib, f.buckets_written
        );
        println!(
            "    classified / reused            {:>8} / {}",
            f.encoded, f.reused
        );
        println!(
            "    peak RSS                       {:>8.0} MiB (transform {:.0}, merge {:.0}, publish {:.0})",
            f.peak_rss_mib, f.transform_peak_rss_mib, f.merge_peak_rss_mib, f.publish_peak_rss_mib
        );
    };
    print("full load", &report.full);
    println!(
        "    pipeline / baseline            {:>8.2} x  ({:.0} reviews/s)",
        report.full_over_baseline, report.full_rows_per_s
    );
    if let Some(daily) = &report.daily {
        print("daily change", daily);
        println!(
            "    daily / full: time {:.3}, bytes written {:.3}",
            report.daily_over_full_time.unwrap_or(0.0),
            report.daily_over_full_bytes.unwrap_or(0.0)
        );
    }
    println!(
        "  dataset (cleaned + curated, live) {:.1} MiB",
        report.dataset_mib
    );
    Ok(())
}

/// Bytes of every object except raw/ and the bench's own.
async fn lake_bytes(lake: &dyn Lake) -> Result<u64> {
    let mut total = 0u64;
    for k in lake.list("").await? {
        if !(k.starts_with("raw/") || k.starts_with("bench/")) {
            total += lake.size(&k).await?.unwrap_or(0);
        }
    }
    Ok(total)
}

const MIB: f64 = 1024.0 * 1024.0;

/// Transform, merge and publish `raw_keys` of `run`, timed, with what the run wrote.
async fn run_stages(
    lake: Arc<dyn Lake>,
    scorer: Arc<reviews_stages::Scorer>,
    run: &RunId,
    extracted: &reviews_stages::ExtractOutput,
    incremental: bool,
    buckets: u32,
    workers: usize,
) -> Result<RunFigures> {
    let before = lake_bytes(lake.as_ref()).await?;
    reset_peak_rss();
    let t = Instant::now();
    let transformed = transform(
        lake.clone(),
        &TransformInput {
            run_id: run.clone(),
            raw_keys: extracted.raw_keys.clone(),
            merge_previous: incremental,
            deletions_key: None,
            buckets: Some(buckets),
            routed: false,
        },
        &NoProgress,
    )
    .await?;
    let transform_s = t.elapsed().as_secs_f64();
    let transform_peak_rss_mib = peak_rss_mib();
    reset_peak_rss();
    let t = Instant::now();
    let items = plan_items(lake.as_ref(), run).await?;
    let merged = merge_buckets(lake.clone(), scorer, &items, workers, Arc::new(NoProgress)).await?;
    let merge_s = t.elapsed().as_secs_f64();
    let merge_peak_rss_mib = peak_rss_mib();
    reset_peak_rss();
    let t = Instant::now();
    let published = publish(
        lake.clone(),
        &PublishInput {
            run_id: run.clone(),
            expected_rows: Some(merged.iter().map(|m| m.rows).sum()),
            watermark: None,
        },
    )
    .await?;
    let publish_s = t.elapsed().as_secs_f64();
    let publish_peak_rss_mib = peak_rss_mib();
    let after = lake_bytes(lake.as_ref()).await?;
    Ok(RunFigures {
        rows_in: transformed.rows_in,
        transform_s,
        merge_s,
        publish_s,
        pipeline_s: transform_s + merge_s + publish_s,
        written_mib: after.saturating_sub(before) as f64 / MIB,
        peak_rss_mib: transform_peak_rss_mib
            .max(merge_peak_rss_mib)
            .max(publish_peak_rss_mib),
        transform_peak_rss_mib,
        merge_peak_rss_mib,
        publish_peak_rss_mib,
        buckets_written: published.buckets_written,
        encoded: published.encoded,
        reused: published.reused,
    })
}

async fn bench(lake: Arc<dyn Lake>, args: &BenchArgs) -> Result<BenchReport> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = args.workers.unwrap_or(cores);
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.daily_change),
        "--daily-change is a share in [0, 1]"
    );
    let scorer = Arc::new(crate::config::load_scorer(
        None,
        crate::config::classifier(args.classifier)?,
        None,
    )?);
    let synthetic = |seed| SyntheticConfig {
        reviews: args.reviews,
        seed,
        ..Default::default()
    };

    let full_run = RunId::parse("bench-full").expect("valid");
    let t = Instant::now();
    let rows = SyntheticReviews::new(synthetic(42)).map(Ok::<_, std::convert::Infallible>);
    let extracted = extract_rows(lake.clone(), &full_run, rows, &NoProgress, None).await?;
    let extract_s = t.elapsed().as_secs_f64();

    // Baseline: the same raw rows read and written back as zstd Parquet, a part at a time:
    // one copy of the whole dataset would hold all of it, encoded, in memory, and this
    // process keeps freed memory, so the stages measured after it would report that peak.
    let t = Instant::now();
    for (part, key) in extracted.raw_keys.iter().enumerate() {
        let mut copy = ParquetBuffer::new(Dataset::Raw)?;
        for batch in parquet_batches(Dataset::Raw, lake.get(key).await?)? {
            copy.write(&batch?)?;
        }
        lake.put(&format!("bench/copy-{part:05}.parquet"), copy.finish(&[])?)
            .await?;
    }
    let baseline_copy_s = t.elapsed().as_secs_f64();

    let full = run_stages(
        lake.clone(),
        scorer.clone(),
        &full_run,
        &extracted,
        false,
        args.buckets,
        workers,
    )
    .await?;

    let changed = (args.reviews as f64 * args.daily_change).round() as u64;
    let daily = if changed == 0 {
        None
    } else {
        // Half edits of existing reviews spread over the dataset, half new reviews.
        let every = (args.reviews / (changed / 2).max(1)).max(1);
        let edits = SyntheticReviews::new(synthetic(42))
            .enumerate()
            .filter(move |(i, _)| (*i as u64).is_multiple_of(every))
            .map(|(i, mut r)| {
                r.text = Some(format!("Edited after a month: still works well, {i}."));
                r
            })
            .take((changed / 2) as usize);
        let fresh = SyntheticReviews::new(SyntheticConfig {
            reviews: changed - changed / 2,
            ..synthetic(43)
        })
        .enumerate()
        .map(|(i, mut r)| {
            r.review_id = Some(format!("NEW{i:09}"));
            r
        });
        let rows = edits.chain(fresh).map(Ok::<_, std::convert::Infallible>);
        let daily_run = RunId::parse("bench-daily").expect("valid");
        let extracted = extract_rows(lake.clone(), &daily_run, rows, &NoProgress, None).await?;
        Some(
            run_stages(
                lake.clone(),
                scorer,
                &daily_run,
                &extracted,
                true,
                args.buckets,
                workers,
            )
            .await?,
        )
    };
    let live = reviews_stages::publish::live_manifest(lake.as_ref())
        .await?
        .ok_or_else(|| anyhow::anyhow!("nothing was published"))?;
    let mut dataset = 0u64;
    for f in &live.bucket_files {
        dataset += lake.size(&f.cleaned_key).await?.unwrap_or(0);
        dataset += lake.size(&f.curated_key).await?.unwrap_or(0);
    }
    Ok(BenchReport {
        reviews: args.reviews,
        cores,
        buckets: args.buckets,
        extract_s,
        baseline_copy_s,
        full_over_baseline: full.pipeline_s / baseline_copy_s,
        full_rows_per_s: args.reviews as f64 / full.pipeline_s,
        daily_over_full_time: daily.as_ref().map(|d| d.pipeline_s / full.pipeline_s),
        daily_over_full_bytes: daily.as_ref().map(|d| d.written_mib / full.written_mib),
        full,
        daily,
        dataset_mib: dataset as f64 / MIB,
    })
}
