//! The `reviews` command as a user runs it, on real review files and synthetic data.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{ok, reviews};

use serde_json::Value;

/// The real review samples (../shared/data beside the repository, or $REVIEWS_SHARED_DATA).
fn shared_data(name: &str) -> PathBuf {
    let dir = std::env::var_os("REVIEWS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: set REVIEWS_SHARED_DATA to the shared data folder",
        p.display()
    );
    p
}

/// The independent Parquet reader: python with pyarrow, installed by scripts/test.
fn python() -> String {
    if let Ok(p) = std::env::var("REVIEWS_PYTHON") {
        return p;
    }
    let venv = repo_root().join(".cache/test-venv/bin/python");
    assert!(
        venv.exists(),
        "no python with pyarrow: run the tests with scripts/test, which installs it"
    );
    venv.to_string_lossy().into_owned()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What tests/python/read_lake.py (pyarrow) reads of `run`'s files in `lake`.
fn read_with_pyarrow(lake: &Path, run: &str) -> Value {
    let py = Command::new(python())
        .arg(repo_root().join("tests/python/read_lake.py"))
        .arg(lake)
        .arg(run)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    serde_json::from_slice(&py.stdout).unwrap()
}

#[test]
#[ignore = "needs pyarrow: scripts/test installs it"]
fn uk_sample_end_to_end_and_readable_by_pyarrow() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let input = shared_data("amazon_uk_sample_10k.csv");
    let out = ok(&reviews(
        &[
            "run",
            "--lake",
            lake.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--run-id",
            "uk",
            "--buckets",
            "4",
            "--json",
        ],
        dir.path(),
    ));
    let s: Value = serde_json::from_str(&out).unwrap();
    let (extracted, cleaned, rejected) = (
        s["rows_extracted"].as_u64().unwrap(),
        s["cleaned"].as_u64().unwrap(),
        s["rejected"].as_u64().unwrap(),
    );
    assert_eq!(extracted, 10_000);
    assert_eq!(
        cleaned + rejected,
        extracted,
        "rows in = cleaned + rejected, exactly"
    );
    assert_eq!(s["curated"].as_u64().unwrap(), cleaned);
    assert_eq!(s["accounted"], Value::Bool(true));
    assert_eq!(
        (s["buckets"].as_u64(), s["buckets_written"].as_u64()),
        (Some(4), Some(4))
    );

    let latest: Value =
        serde_json::from_slice(&std::fs::read(lake.join("curated/_latest.json")).unwrap()).unwrap();
    assert_eq!(latest["run_id"], "uk");
    assert_eq!(latest["rows"].as_u64().unwrap(), cleaned);
    for key in latest["keys"].as_array().unwrap() {
        assert!(
            lake.join(key.as_str().unwrap()).exists(),
            "{key} is in the lake"
        );
    }

    // pyarrow opens every file and agrees on counts, order and values.
    let seen = read_with_pyarrow(&lake, "uk");
    let cleaned_rows: u64 = seen["cleaned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(cleaned_rows, cleaned);
    assert_eq!(seen["curated_rows"].as_u64().unwrap(), cleaned);
    assert_eq!(seen["curated_sorted"], Value::Bool(true));
    let first = &seen["curated"][0];
    assert_eq!(first["compression"], "ZSTD");
    assert_eq!(first["has_statistics"], Value::Bool(true));
    assert_eq!(
        first["has_column_index"],
        Value::Bool(true),
        "page index is written"
    );
    assert_eq!(first["schema_id"], "curated/3");
    assert!(
        !first["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains("buyer"))
    );
    let row = &first["first_row"];
    assert!(row["relevance"].as_f64().unwrap() >= 0.0 && row["relevance"].as_f64().unwrap() <= 1.0);
    assert!(!row["topics"].as_array().unwrap().is_empty());
    // Without a ranker file: no learned signal, and the reasons come from the weighted signals.
    assert_eq!(row["sig_learned"], Value::Null);
    assert!(row["reasons"].is_array(), "{row}");
    // The text has no HTML line-break tags left.
    let text = row["text"].as_str().unwrap();
    assert!(!text.contains("<br"), "{text}");
}

#[test]
#[ignore = "needs pyarrow: scripts/test installs it"]
fn french_tsv_is_read_and_guessed_french() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let input = shared_data("amazon_fr_sample.tsv");
    let out = ok(&reviews(
        &[
            "run",
            "--lake",
            lake.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--run-id",
            "fr",
            "--json",
        ],
        dir.path(),
    ));
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["rows_extracted"].as_u64().unwrap(), 49);
    assert_eq!(
        s["cleaned"].as_u64().unwrap() + s["rejected"].as_u64().unwrap(),
        49
    );

    let py = Command::new(python())
        .args(["-c", "import sys,pyarrow.parquet as pq,collections; t=pq.read_table(sys.argv[1]); print(collections.Counter(t.column('language_guess').to_pylist()).most_common(1)[0][0])"])
        .arg(lake.join("cleaned/run=fr/changes"))
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "fr");
}

#[test]
fn synthetic_default_run_then_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    let text = ok(&reviews(
        &["run", "--lake", l, "--synthetic", "3000", "--run-id", "a"],
        dir.path(),
    ));
    assert!(
        text.contains("rows extracted") && text.contains("accounted") && text.contains("yes"),
        "{text}"
    );
    ok(&reviews(
        &[
            "run",
            "--lake",
            l,
            "--synthetic",
            "2000",
            "--seed",
            "9",
            "--run-id",
            "b",
        ],
        dir.path(),
    ));
    let runs = ok(&reviews(&["runs", "--lake", l], dir.path()));
    assert!(
        runs.lines()
            .any(|line| line.starts_with('b') && line.contains("live")),
        "{runs}"
    );
    ok(&reviews(&["rollback", "--lake", l], dir.path()));
    let runs = ok(&reviews(&["runs", "--lake", l], dir.path()));
    assert!(
        runs.lines()
            .any(|line| line.starts_with('a') && line.contains("live")),
        "{runs}"
    );
}

#[test]
fn generated_csv_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("gen.csv");
    let out = reviews(
        &[
            "generate",
            "--reviews",
            "1500",
            "--out",
            csv.to_str().unwrap(),
        ],
        dir.path(),
    );
    ok(&out);
    let lake = dir.path().join("lake");
    let s: Value = serde_json::from_str(&ok(&reviews(
        &[
            "run",
            "--lake",
            lake.to_str().unwrap(),
            "--input",
            csv.to_str().unwrap(),
            "--json",
        ],
        dir.path(),
    )))
    .unwrap();
    assert_eq!(s["rows_extracted"].as_u64().unwrap(), 1500);
    assert!(s["rejected"].as_u64().unwrap() > 0);
}

#[test]
fn bad_inputs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = reviews(
        &["run", "--lake", "lake", "--input", "/nonexistent/file.csv"],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open /nonexistent/file.csv"), "{err}");

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b\n1,2\n").unwrap();
    let out = reviews(
        &["run", "--lake", "lake", "--input", bad.to_str().unwrap()],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no review_id column"));

    let out = reviews(&["run", "--run-id", "../escape"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid run id"));

    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "[weights]\nlength = -1.0\n").unwrap();
    let out = reviews(&["run", "--config", cfg.to_str().unwrap()], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid weights"));

    // The classifier is parsed as the score Lambda parses REVIEWS_CLASSIFIER: one type, one
    // message.
    let out = reviews(&["run", "--classifier", "bert"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use auto, model or keywords"), "{err}");
}

/// `reviews eval` on the real UK sample: our ranking beats the length baseline on NDCG@5 and
/// on the age-controlled pairwise accuracy (helpful votes and age are not scoring inputs).
fn eval_beats_length(classifier: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_data("amazon_uk_sample_10k.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_reviews"))
        .args([
            "eval",
            "--input",
            input.to_str().unwrap(),
            "--classifier",
            classifier,
            "--json",
        ])
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let _ = dir;
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(report["products"], 174);
    assert_eq!(report["pairs"], 943);
    let find = |name: &str| {
        report["rankings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let (ours, learned, length, random) = (
        find("relevance (ours)"),
        find("learned (5-fold CV by product)"),
        find("baseline: length"),
        find("baseline: random"),
    );
    // The learned ranking, scored on products its model never saw, beats length too; every
    // interval holds its estimate.
    for metric in ["ndcg_at_5", "pairwise_accuracy"] {
        let (m, l) = (
            learned[metric].as_f64().unwrap(),
            length[metric].as_f64().unwrap(),
        );
        assert!(
            m > l,
            "{classifier}: {metric} learned {m:.3} <= length {l:.3}"
        );
        let ci = &learned[format!("{metric}_ci")];
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        assert!(lo <= m && m <= hi, "{metric} {m} outside [{lo}, {hi}]");
    }
    for metric in ["ndcg_at_5", "pairwise_accuracy"] {
        let (o, l, r) = (
            ours[metric].as_f64().unwrap(),
            length[metric].as_f64().unwrap(),
            random[metric].as_f64().unwrap(),
        );
        assert!(o > l, "{classifier}: {metric} ours {o:.3} <= length {l:.3}");
        assert!(l > r, "{metric}: length {l:.3} <= random {r:.3}");
    }
}

/// The French sample has too few votes to measure a ranking: `reviews eval` reads it, scores
/// it (the learned ranking included) and says so, rather than printing zeros as figures.
#[test]
fn eval_on_the_french_sample_says_it_cannot_measure() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_data("amazon_fr_sample.tsv");
    let args = [
        "eval",
        "--input",
        input.to_str().unwrap(),
        "--classifier",
        "keywords",
    ];
    let text = ok(&reviews(&args, dir.path()));
    assert!(text.contains("too few helpful votes to measure"), "{text}");
    let json: Value = serde_json::from_str(&ok(&reviews(
        &[&args[..], &["--json"]].concat(),
        dir.path(),
    )))
    .unwrap();
    assert_eq!(json["reviews"], 49);
    assert_eq!(json["measurable"], false);
    assert!(
        json["rankings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "learned (5-fold CV by product)")
    );
}

/// `reviews train` builds the ranker file from the UK sample; `reviews eval --ranker` ranks
/// another file with it (the French sample: a smoke test, too few votes to measure); `reviews
/// run --ranker` scores with it (the learned signal and its reasons in every curated row, read
/// back by pyarrow); a file from another classifier or version stops the run before any work.
#[test]
#[ignore = "needs pyarrow: scripts/test installs it"]
fn train_a_ranker_then_evaluate_and_run_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let uk = shared_data("amazon_uk_sample_10k.csv");
    let ranker = dir.path().join("ranker.json");
    ok(&reviews(
        &[
            "train",
            "--input",
            uk.to_str().unwrap(),
            "--classifier",
            "keywords",
            "--out",
            ranker.to_str().unwrap(),
        ],
        dir.path(),
    ));
    let file: Value = serde_json::from_slice(&std::fs::read(&ranker).unwrap()).unwrap();
    assert_eq!(file["format"], "reviews-ranker");
    assert_eq!(file["version"], 1);
    assert_eq!(file["training"]["input"], "amazon_uk_sample_10k.csv");
    assert_eq!(file["training"]["classifier"], "keywords");
    assert_eq!(file["training"]["input_sha256"].as_str().unwrap().len(), 64);
    assert!(file["training"]["pairs"].as_u64().unwrap() > 100, "{file}");
    let weights = file["weights"].as_array().unwrap();
    assert_eq!(weights.len(), file["features"].as_array().unwrap().len());
    assert!(weights.iter().any(|w| w.as_f64().unwrap().abs() > 1e-3));

    let fr = shared_data("amazon_fr_sample.tsv");
    let report: Value = serde_json::from_str(&ok(&reviews(
        &[
            "eval",
            "--input",
            fr.to_str().unwrap(),
            "--classifier",
            "keywords",
            "--ranker",
            ranker.to_str().unwrap(),
            "--json",
        ],
        dir.path(),
    )))
    .unwrap();
    assert!(
        report["rankings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "learned (file, from amazon_uk_sample_10k.csv)"),
        "{report}"
    );

    let lake = dir.path().join("lake");
    let run = |ranker: &Path, run_id: &str| {
        reviews(
            &[
                "run",
                "--lake",
                lake.to_str().unwrap(),
                "--input",
                fr.to_str().unwrap(),
                "--classifier",
                "keywords",
                "--ranker",
                ranker.to_str().unwrap(),
                "--run-id",
                run_id,
                "--json",
            ],
            dir.path(),
        )
    };
    ok(&run(&ranker, "learned"));
    let seen = read_with_pyarrow(&lake, "learned");
    let row = &seen["curated"][0]["first_row"];
    let learned = row["sig_learned"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&learned), "{row}");
    assert!(row["reasons"].is_array(), "{row}");

    // Another classifier's file, or another version: refused, with what to do; nothing published.
    for (edit, says) in [("classifier", "classifier"), ("version", "reviews train")] {
        let mut bad = file.clone();
        match edit {
            "classifier" => bad["training"]["classifier"] = "model:other".into(),
            _ => bad["version"] = 99.into(),
        }
        let path = dir.path().join(format!("bad-{edit}.json"));
        std::fs::write(&path, serde_json::to_vec(&bad).unwrap()).unwrap();
        let out = run(&path, "refused");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says) && err.contains("bad-"), "{edit}: {err}");
    }
    let latest: Value =
        serde_json::from_slice(&std::fs::read(lake.join("curated/_latest.json")).unwrap()).unwrap();
    assert_eq!(latest["run_id"], "learned");
}

#[test]
fn eval_with_keywords_beats_length_baseline() {
    eval_beats_length("keywords");
}

#[test]
#[ignore = "needs the model: scripts/test fetches it (scripts/fetch-model.sh)"]
fn eval_with_the_model_beats_length_baseline() {
    eval_beats_length("model");
}

/// The process killed while it writes the curated parts: readers keep the previous run, and the
/// same command run again completes the run with every row accounted for.
#[test]
fn killed_during_the_curated_write_then_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    let base = [
        "run",
        "--lake",
        lake_arg,
        "--classifier",
        "keywords",
        "--workers",
        "1",
        "--buckets",
        "8",
    ];
    let first: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--synthetic", "2000", "--run-id", "before"])
        .collect();
    ok(&reviews(&first, dir.path()));
    let latest = lake.join("curated/_latest.json");
    let before = std::fs::read(&latest).unwrap();

    let second: Vec<&str> = base
        .iter()
        .copied()
        .chain([
            "--synthetic",
            "60000",
            "--seed",
            "8",
            "--run-id",
            "killed",
            "--json",
        ])
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_reviews"))
        .args(&second)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let curated = lake.join("curated/run=killed");
    let started = std::time::Instant::now();
    loop {
        let parts = std::fs::read_dir(&curated)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
                    .count()
            })
            .unwrap_or(0);
        if parts >= 2 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(300));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        std::fs::read(&latest).unwrap(),
        before,
        "the pointer still names the earlier run"
    );
    let serve_view: Value = serde_json::from_slice(&before).unwrap();
    assert_eq!(serve_view["run_id"], "before");

    let out = ok(&reviews(&second, dir.path()));
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["rows_extracted"], 60000);
    assert_eq!(summary["accounted"], true);
    let after: Value = serde_json::from_slice(&std::fs::read(&latest).unwrap()).unwrap();
    assert_eq!(after["run_id"], "killed");
}

/// `reviews rollback` moves the pointer back to an earlier run, `reviews runs` marks it live,
/// and `reviews serve` serves it.
#[test]
fn rollback_is_listed_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    for (run, seed) in [("2026-11-01-a", "1"), ("2026-11-02-b", "2")] {
        ok(&reviews(
            &[
                "run",
                "--lake",
                lake_arg,
                "--classifier",
                "keywords",
                "--synthetic",
                "1500",
                "--seed",
                seed,
                "--run-id",
                run,
            ],
            dir.path(),
        ));
    }
    let live_line = |out: &str| {
        out.lines()
            .find(|l| l.contains("* live"))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
    };
    let runs = ok(&reviews(&["runs", "--lake", lake_arg], dir.path()));
    assert_eq!(live_line(&runs).as_deref(), Some("2026-11-02-b"), "{runs}");
    let out = ok(&reviews(&["rollback", "--lake", lake_arg], dir.path()));
    assert!(out.contains("2026-11-01-a"), "{out}");
    let runs = ok(&reviews(&["runs", "--lake", lake_arg], dir.path()));
    assert_eq!(live_line(&runs).as_deref(), Some("2026-11-01-a"), "{runs}");
    // An unknown run is refused, and the pointer stays.
    let bad = reviews(
        &["rollback", "--lake", lake_arg, "2026-01-01-nope"],
        dir.path(),
    );
    assert!(!bad.status.success());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_reviews"))
        .args([
            "serve",
            "--lake",
            lake_arg,
            "--addr",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let health = loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .and_then(|mut s| {
                use std::io::{Read, Write};
                s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .ok()?;
                let mut body = String::new();
                s.read_to_string(&mut body).ok()?;
                Some(body)
            });
        if let Some(body) = got {
            break body;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "serve did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"run_id\":\"2026-11-01-a\""), "{health}");
}

/// The bench's figures come from a real full load and daily run: the daily run reads only the
/// changed rows, classifies only the changed texts and reuses the rest (timings are not
/// checked here: they belong to the bench, not to a test).
#[test]
fn bench_reports_a_full_load_and_a_daily_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&reviews(
        &[
            "bench",
            "--reviews",
            "4000",
            "--daily-change",
            "0.05",
            "--buckets",
            "8",
            "--json",
        ],
        dir.path(),
    ));
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["reviews"], 4000);
    assert_eq!(r["full"]["rows_in"], 4000);
    let daily = &r["daily"];
    assert_eq!(daily["rows_in"], 200, "{out}");
    // 100 edited texts plus 100 new reviews (less any the cleaner rejects) are classified;
    // every other review keeps its topics.
    let encoded = daily["encoded"].as_u64().unwrap();
    let reused = daily["reused"].as_u64().unwrap();
    assert!(encoded > 0 && encoded <= 200, "{out}");
    assert!(
        reused >= r["full"]["encoded"].as_u64().unwrap() - 100,
        "{out}"
    );
    for run in ["full", "daily"] {
        for stage in ["transform", "merge", "publish"] {
            let peak = r[run][format!("{stage}_peak_rss_mib")].as_f64().unwrap();
            assert!(peak > 0.0, "{run} {stage}: {out}");
        }
    }
    let bytes = r["daily_over_full_bytes"].as_f64().unwrap();
    assert!(bytes > 0.0 && bytes.is_finite(), "{out}");
}
