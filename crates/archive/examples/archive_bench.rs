//! Archive throughput and peak memory against a MongoDB wire server.
//!
//!   archive_bench raw N DIR    write N synthetic raw rows as run `bench` of the lake in DIR
//!   archive_bench archive DIR  archive run `bench` of DIR (into collection bench_raw_reviews)
//!
//! The writer's URI comes from REVIEWS_BENCH_MONGO_URI, else scripts/services/mongo.sh url.

use std::sync::Arc;
use std::time::Instant;

use reviews_archive::{Archive, ArchiveConfig};
use reviews_lake::{Lake, RunId};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::{NoProgress, extract_rows};
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
    let run = RunId::parse("bench").unwrap();
    match args.first().map(String::as_str) {
        Some("raw") => {
            let n: u64 = args[1].parse().unwrap();
            let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(&args[2]));
            let rows = SyntheticReviews::new(SyntheticConfig {
                seed: 2,
                reviews: n,
                ..Default::default()
            });
            let out = extract_rows(lake, &run, rows.map(Ok::<_, String>), &NoProgress, None)
                .await
                .unwrap();
            println!("raw: {} rows", out.rows);
        }
        Some("archive") => {
            let uri = std::env::var("REVIEWS_BENCH_MONGO_URI").unwrap_or_else(|_| {
                let root = concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../scripts/services/mongo.sh"
                );
                let out = std::process::Command::new("bash")
                    .args([root, "url"])
                    .output()
                    .unwrap();
                String::from_utf8(out.stdout).unwrap().trim().to_owned()
            });
            let mut cfg = ArchiveConfig::new(uri);
            cfg.collection = "bench_raw_reviews".into();
            let archive = Archive::connect(cfg).await.unwrap();
            archive.collection().drop().await.unwrap();
            let lake = LocalLake::new(&args[1]);
            let t = Instant::now();
            let out = reviews_stages::archive::archive(&lake, &archive, &run)
                .await
                .unwrap();
            let s = t.elapsed().as_secs_f64();
            println!(
                "archive: {} documents in {s:.1} s ({:.0} docs/s), peak RSS {:.0} MiB",
                out.documents,
                out.documents as f64 / s,
                peak_rss_mib()
            );
        }
        _ => eprintln!("usage: archive_bench raw N DIR | archive DIR"),
    }
}
