//! `reviews db setup` against a real PostgreSQL 15, and `reviews erase` against the real
//! MongoDB wire server and a local lake, run as a user runs them.

use std::process::Command;

mod common;
use common::{ok, reviews_with};

use reviews_archive::{Archive, ArchiveConfig};
use reviews_domain::schema::batch_to_curated;
use reviews_lake::parquet_io::{Dataset, read_parquet};
use reviews_lake::{Lake, RunId};
use reviews_stores::LocalLake;
use reviews_testkit::{mongo_writer_uri, postgres_admin_url};
use serde_json::Value;

#[test]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
fn db_setup_is_idempotent_and_loads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let admin = postgres_admin_url();
    // A private database, dropped first so that the first setup creates everything.
    let drop = Command::new("psql")
        .args([
            &admin,
            "-qc",
            "DROP DATABASE IF EXISTS t_cli_db WITH (FORCE)",
        ])
        .output()
        .unwrap();
    assert!(drop.status.success(), "{drop:?}");
    let csv = dir.path().join("reviews.csv");
    ok(&reviews_with(
        &[
            "generate",
            "--reviews",
            "400",
            "--seed",
            "5",
            "--out",
            csv.to_str().unwrap(),
        ],
        dir.path(),
        &[],
    ));
    let args = |load: bool| {
        let mut a = vec![
            "db",
            "setup",
            "--database",
            "t_cli_db",
            "--owner-role",
            "t_cli_owner",
            "--reader-role",
            "t_cli_reader",
            "--json",
        ];
        if load {
            a.extend(["--load", csv.to_str().unwrap()]);
        }
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let env = [
        ("REVIEWS_PG_ADMIN_URL", admin.as_str()),
        ("REVIEWS_PG_READER_PASSWORD", "pw-cli-reader"),
    ];
    let run = |load| {
        let a = args(load);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        serde_json::from_str::<Value>(&ok(&reviews_with(&a, dir.path(), &env))).unwrap()
    };
    let first = run(true);
    assert!(!first["setup"]["changes"].as_array().unwrap().is_empty());
    let inserted = first["load"]["inserted"].as_u64().unwrap();
    assert!(inserted > 350, "{first}");
    let second = run(true);
    assert_eq!(
        second["setup"]["changes"],
        serde_json::json!([]),
        "{second}"
    );
    assert_eq!(second["load"]["inserted"], 0);
    assert_eq!(second["load"]["unchanged"].as_u64().unwrap(), inserted);
    let third = run(false);
    assert_eq!(third["setup"]["changes"], serde_json::json!([]));
    assert!(third["load"].is_null());

    // `reviews run --postgres`: the loaded rows, read as the reader role through the same
    // extract as the Lambda; the next run reads only what changed since (nothing).
    let reader = reader_url(&admin, "t_cli_db", "t_cli_reader", "pw-cli-reader");
    let lake = dir.path().join("lake");
    let pipeline = |run_id: &str| {
        let out = ok(&reviews_with(
            &[
                "run",
                "--lake",
                lake.to_str().unwrap(),
                "--run-id",
                run_id,
                "--classifier",
                "keywords",
                "--buckets",
                "4",
                "--json",
            ],
            dir.path(),
            &[
                ("REVIEWS_RUN_PG_URL", reader.as_str()),
                ("REVIEWS_PG_SAFETY_LAG_SECS", "0"),
            ],
        ));
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let day1 = pipeline("pg-1");
    assert_eq!(day1["rows_extracted"].as_u64(), Some(inserted), "{day1}");
    assert_eq!(day1["accounted"], true, "{day1}");
    assert!(day1["curated"].as_u64().unwrap() > 300, "{day1}");
    let day2 = pipeline("pg-2");
    assert_eq!(day2["rows_extracted"], 0, "{day2}");
    assert_eq!(day2["curated"], day1["curated"], "{day2}");

    // No password: a clear error, nothing printed on stdout.
    let out = reviews_with(
        &args(false).iter().map(String::as_str).collect::<Vec<_>>(),
        dir.path(),
        &[
            ("REVIEWS_PG_ADMIN_URL", admin.as_str()),
            ("REVIEWS_PG_READER_PASSWORD", ""),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("REVIEWS_PG_READER_PASSWORD"));
}

/// The admin URL with another role, password and database (host, port and TLS settings kept).
fn reader_url(admin: &str, database: &str, role: &str, password: &str) -> String {
    let (scheme, rest) = admin.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    let (host, query) = host.split_once('?').unwrap_or((host, ""));
    let host = host.split_once('/').map_or(host, |(h, _)| h);
    format!("{scheme}://{role}:{password}@{host}/{database}?{query}")
}

async fn live_review_ids(lake: &LocalLake) -> Vec<String> {
    let m = reviews_stages::publish::live_manifest(lake)
        .await
        .unwrap()
        .unwrap();
    let mut ids = Vec::new();
    for key in &m.keys {
        let bytes = lake.get(key).await.unwrap();
        for b in read_parquet(Dataset::Curated, bytes).unwrap() {
            ids.extend(
                batch_to_curated(&b)
                    .unwrap()
                    .into_iter()
                    .map(|r| r.review_id),
            );
        }
    }
    ids
}

/// Every object of the lake whose text (Parquet decoded by its schema) holds `needle`, but
/// the erased list.
async fn objects_naming(lake: &LocalLake, needle: &str) -> Vec<String> {
    use reviews_domain::schema::{batch_to_raw, batch_to_reviews};
    let mut found = Vec::new();
    for key in lake.list("").await.unwrap() {
        if key == reviews_lake::state::ERASED_BUYERS {
            continue;
        }
        let bytes = lake.get(&key).await.unwrap();
        let mut texts = Vec::new();
        if !key.ends_with(".parquet") {
            texts.push(String::from_utf8_lossy(&bytes).into_owned());
        } else if let Ok(batches) = read_parquet(Dataset::Raw, bytes.clone()) {
            for b in &batches {
                for r in batch_to_raw(b).unwrap() {
                    texts.extend([r.buyer_id, r.text].into_iter().flatten());
                }
            }
        } else if let Ok(batches) = read_parquet(Dataset::Cleaned, bytes.clone()) {
            for b in &batches {
                for r in batch_to_reviews(b).unwrap() {
                    texts.extend(r.buyer_id);
                }
            }
        }
        if texts.iter().any(|t| t.contains(needle)) {
            found.push(key);
        }
    }
    found
}

#[test]
fn erase_requires_the_archive_unless_waived() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let out = reviews_with(&["erase", "--buyer", "C1", "--lake", lake], dir.path(), &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--mongo-uri") && err.contains("--skip-archive"),
        "{err}"
    );
    // Nothing was recorded.
    assert!(!dir.path().join("lake/state/erased_buyers.json").exists());

    // Waived: the lake part runs, the report says the archive was not erased, exit non-zero.
    let out = reviews_with(
        &[
            "erase",
            "--buyer",
            "C1",
            "--lake",
            lake,
            "--skip-archive",
            "--json",
        ],
        dir.path(),
        &[],
    );
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["archive_skipped"], true, "{report}");
    assert_eq!(report["complete"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT from the archive"));
    assert!(dir.path().join("lake/state/erased_buyers.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MongoDB: scripts/test starts it"]
async fn erase_removes_a_buyer_from_the_archive_and_the_live_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    ok(&reviews_with(
        &[
            "generate",
            "--reviews",
            "600",
            "--seed",
            "9",
            "--out",
            csv.to_str().unwrap(),
        ],
        dir.path(),
        &[],
    ));
    // Give three rows a buyer of their own (unique to this test process).
    let buyer = format!("ERASE{}", std::process::id());
    let mut rdr = csv::Reader::from_path(&csv).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = headers.iter().position(|h| h == "customer_id").unwrap();
    let id_col = headers.iter().position(|h| h == "review_id").unwrap();
    let mut rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let mut erased_ids = Vec::new();
    for r in rows.iter_mut().skip(10).step_by(50).take(3) {
        let mut v: Vec<String> = r.iter().map(str::to_owned).collect();
        v[col] = buyer.clone();
        erased_ids.push(v[id_col].clone());
        *r = csv::StringRecord::from(v);
    }
    let mut w = csv::Writer::from_path(&csv).unwrap();
    w.write_record(&headers).unwrap();
    for r in &rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();

    let lake_dir = dir.path().join("lake");
    let lake_arg = lake_dir.to_str().unwrap();
    let run = |id: &str| {
        let out = ok(&reviews_with(
            &[
                "run",
                "--lake",
                lake_arg,
                "--input",
                csv.to_str().unwrap(),
                "--run-id",
                id,
                "--classifier",
                "keywords",
                "--json",
            ],
            dir.path(),
            &[],
        ));
        serde_json::from_str::<Value>(&out).unwrap()
    };
    run("2026-11-01-first");
    let lake = LocalLake::new(&lake_dir);
    let before = live_review_ids(&lake).await;
    let present: Vec<&String> = erased_ids.iter().filter(|id| before.contains(id)).collect();
    assert!(
        !present.is_empty(),
        "the buyer's reviews are live before erasure"
    );

    // The raw rows in the archive (as the archive stage puts them).
    let mongo = mongo_writer_uri();
    let archive = Archive::connect(ArchiveConfig::new(mongo.clone()))
        .await
        .unwrap();
    reviews_stages::archive::archive(&lake, &archive, &RunId::parse("2026-11-01-first").unwrap())
        .await
        .unwrap();

    let out = ok(&reviews_with(
        &[
            "erase",
            "--buyer",
            &buyer,
            "--lake",
            lake_arg,
            "--classifier",
            "keywords",
            "--json",
        ],
        dir.path(),
        &[("REVIEWS_MONGO_URI", mongo.as_str())],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["archive_documents_deleted"], 3, "{report}");
    let after = live_review_ids(&lake).await;
    assert_eq!(
        report["live_rows_before"].as_u64().unwrap() - report["live_rows_after"].as_u64().unwrap(),
        present.len() as u64,
        "{report}"
    );
    assert_eq!(after.len(), before.len() - present.len());
    assert!(erased_ids.iter().all(|id| !after.contains(id)));
    let erased_again = Archive::connect(ArchiveConfig::new(mongo)).await.unwrap();
    assert_eq!(erased_again.erase_buyer(&buyer).await.unwrap(), 0);

    // No object of the lake holds the buyer, in any prefix, in any run.
    assert_eq!(objects_naming(&lake, &buyer).await, Vec::<String>::new());
    assert_eq!(report["complete"], true, "{report}");

    // The run from before the erasure was scrubbed too: rolling back to it is allowed, and
    // serves none of the buyer's reviews.
    ok(&reviews_with(
        &["rollback", "--lake", lake_arg, "2026-11-01-first"],
        dir.path(),
        &[],
    ));
    let rolled_back = live_review_ids(&lake).await;
    assert!(erased_ids.iter().all(|id| !rolled_back.contains(id)));

    // A later run of the same source rejects every row of the buyer with that reason, and
    // writes nothing of them but their review ids.
    let summary = run("2026-11-02-second");
    assert_eq!(
        summary["rejected_by_reason"]["erased_buyer"],
        erased_ids.len() as u64
    );
    assert_eq!(objects_naming(&lake, &buyer).await, Vec::<String>::new());
    assert!(
        live_review_ids(&lake)
            .await
            .iter()
            .all(|id| !erased_ids.contains(id))
    );
}
