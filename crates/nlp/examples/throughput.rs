//! Measure scoring throughput (encode + topics + informativeness) on real reviews.
//!
//! ```sh
//! cargo run --release -p reviews-nlp --example throughput -- \
//!     [--csv ../shared/data/amazon_uk_sample_10k.csv] [--n 1000] [--threads 2] \
//!     [--batch 16] [--max-tokens 64] [--model all-MiniLM-L6-v2] [--json out.json]
//! ```
//! `--max-tokens` keeps the first N reviews (headline + body) of at most that many tokens
//! ("short reviews"); 0 keeps them as they come. Prints reviews/s, tokens/s, peak RSS and the
//! CPU time of the scoring (a figure a concurrent job disturbs less than wall time); `--json`
//! also writes them to a file (used by `scripts/nlp/bench.sh`).

use std::sync::Arc;
use std::time::Instant;

use reviews_domain::classify::TopicClassifier;
use reviews_nlp::{EncoderConfig, SentenceEncoder, ZeroShotClassifier, ZeroShotConfig, models_dir};

/// Forward-pass cost of MiniLM-L6 per token, dense layers only (2 x 6 layers x 1.77 M weights).
const FLOP_PER_TOKEN: f64 = 21.3e6;

struct Args {
    csv: String,
    n: usize,
    threads: usize,
    batch: usize,
    max_tokens: usize,
    model: String,
    json: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        csv: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/amazon_uk_sample_10k.csv"
        )
        .to_string(),
        n: 1000,
        threads: 2,
        batch: 16,
        max_tokens: 64,
        model: reviews_nlp::DEFAULT_MODEL.to_string(),
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--csv" => a.csv = value.clone(),
            "--n" => a.n = num()?,
            "--threads" => a.threads = num()?,
            "--batch" => a.batch = num()?,
            "--max-tokens" => a.max_tokens = num()?,
            "--model" => a.model = value.clone(),
            "--json" => a.json = Some(value.clone()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU seconds (user + system) used by this process so far, from /proc/self/stat. Unlike wall
/// time it barely moves when another job shares the cores. Clock ticks are 100/s on Linux x86_64.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the ")" that closes the command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().ok()? + fields[12].parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let mut reader = csv::Reader::from_path(&args.csv)?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or(name.to_string())
    };
    let (head, body) = (col("review_headline")?, col("review_body")?);
    let all: Vec<String> = reader
        .records()
        .map(|r| r.map(|r| format!("{}. {}", &r[head], &r[body])))
        .collect::<Result<_, _>>()?;

    let t0 = Instant::now();
    let encoder = Arc::new(SentenceEncoder::new(EncoderConfig {
        model_dir: models_dir().join(&args.model),
        intra_threads: args.threads,
        batch_size: args.batch,
        ..EncoderConfig::default()
    })?);
    let classifier = ZeroShotClassifier::new(Arc::clone(&encoder), ZeroShotConfig::default())?;
    let load_s = t0.elapsed().as_secs_f64();

    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let counts = encoder.token_counts(&refs)?;
    let texts: Vec<&str> = refs
        .iter()
        .zip(&counts)
        .filter(|(_, n)| args.max_tokens == 0 || **n <= args.max_tokens)
        .map(|(t, _)| *t)
        .take(args.n)
        .collect();
    let tokens: usize = encoder.token_counts(&texts)?.iter().sum();

    classifier.classify(&texts[..texts.len().min(32)])?; // warm-up
    let cpu0 = cpu_seconds();
    let t1 = Instant::now();
    let signals = classifier.classify(&texts)?;
    let secs = t1.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    assert_eq!(signals.len(), texts.len());

    let n = texts.len() as f64;
    println!(
        "model {} | {} reviews, mean {:.1} tokens | threads {} batch {}",
        args.model,
        texts.len(),
        tokens as f64 / n,
        args.threads,
        args.batch
    );
    println!(
        "load {load_s:.2} s | scoring {secs:.2} s: {:.0} reviews/s, {:.0} tokens/s, ~{:.1} GFLOP/s (dense layers) | peak RSS {:.0} MB",
        n / secs,
        tokens as f64 / secs,
        tokens as f64 * FLOP_PER_TOKEN / secs / 1e9,
        peak_rss_mb().unwrap_or(f64::NAN)
    );
    if let Some(cpu) = cpu {
        println!(
            "CPU {cpu:.2} s ({:.0}% of {} threads): {:.0} reviews per CPU-second",
            100.0 * cpu / secs / args.threads as f64,
            args.threads,
            n / cpu
        );
    }
    if let Some(path) = &args.json {
        let figures = serde_json::json!({
            "reviews": texts.len(),
            "tokens": tokens,
            "seconds": secs,
            "cpu_seconds": cpu,
            "load_seconds": load_s,
            "reviews_per_s": n / secs,
            "tokens_per_s": tokens as f64 / secs,
            "peak_rss_mb": peak_rss_mb(),
            "threads": args.threads,
            "batch": args.batch,
            "model": args.model,
        });
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)?;
    }
    Ok(())
}
