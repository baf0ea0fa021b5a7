//! Extract throughput and peak memory against a real PostgreSQL.
//!
//!   extract_bench load N      set up `bench_reviews` and load N synthetic reviews into it
//!   extract_bench extract     extract everything (no watermark) into a temporary lake
//!
//! The superuser URL comes from REVIEWS_BENCH_PG_URL, else scripts/services/postgres.sh url.
//! Each mode runs in its own process so that the extract's peak RSS (VmHWM) is its own.

use std::sync::Arc;
use std::time::Instant;

use reviews_lake::{Lake, RunId};
use reviews_postgres::{LoadOptions, PgConfig, PgFeed, SetupConfig, load_reviews, setup};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::{NoProgress, extract_changes};
use reviews_stores::LocalLake;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = std::env::var("REVIEWS_BENCH_PG_URL").unwrap_or_else(|_| {
        let root = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/services/postgres.sh"
        );
        let out = std::process::Command::new("bash")
            .args([root, "url"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    });
    let admin = PgConfig::new(&url).unwrap();
    let cfg = SetupConfig {
        database: "bench_reviews".into(),
        owner_role: "bench_owner".into(),
        reader_role: "bench_reader".into(),
        reader_password: "bench-reader-pw".into(),
    };
    match args.first().map(String::as_str) {
        Some("load") => {
            let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            setup(&admin, &cfg).await.unwrap();
            let rows = SyntheticReviews::new(SyntheticConfig {
                seed: 1,
                reviews: n,
                ..Default::default()
            });
            let t = Instant::now();
            let report = load_reviews(
                &admin.with_database(&cfg.database),
                rows,
                &LoadOptions::default(),
            )
            .await
            .unwrap();
            let s = t.elapsed().as_secs_f64();
            println!(
                "load: read {} inserted {} unchanged {} rejected {} in {s:.1} s ({:.0} rows/s), peak RSS {:.0} MiB",
                report.read,
                report.inserted,
                report.unchanged,
                report.rejected_total(),
                report.read as f64 / s,
                peak_rss_mib()
            );
        }
        Some("extract") => {
            // No safety lag: the rows were loaded just now, and nothing writes concurrently.
            let pg = admin
                .with_database(&cfg.database)
                .with_credentials(&cfg.reader_role, &cfg.reader_password)
                .with_safety_lag(std::time::Duration::ZERO);
            let tmp = tempfile::tempdir().unwrap();
            let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
            let run = RunId::parse("bench").unwrap();
            let t = Instant::now();
            let out = extract_changes(lake.clone(), &run, &PgFeed::new(pg), None, &NoProgress)
                .await
                .unwrap();
            let s = t.elapsed().as_secs_f64();
            let mut size = 0;
            for key in &out.raw_keys {
                size += lake.size(key).await.unwrap().unwrap_or(0);
            }
            println!(
                "extract: {} rows in {s:.1} s ({:.0} rows/s), raw Parquet {:.1} MiB in {} part(s), peak RSS {:.0} MiB",
                out.rows,
                out.rows as f64 / s,
                size as f64 / 1048576.0,
                out.raw_keys.len(),
                peak_rss_mib()
            );
        }
        _ => eprintln!("usage: extract_bench load N | extract"),
    }
}
