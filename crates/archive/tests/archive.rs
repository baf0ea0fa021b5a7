//! The archive against a real MongoDB wire server: REVIEWS_TEST_MONGO_URI (the writer's URI),
//! or SecantusDB started once per test process with scripts/services/mongo.sh (a stand-in
//! for MongoDB, see that script). Tests never skip.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mongodb::bson::doc;
use reviews_archive::{Archive, ArchiveConfig, ArchiveError};
use reviews_domain::RawReview;
use reviews_lake::state::archived_marker_key as marker_key;
use reviews_lake::{Lake, RunId};
use reviews_ports::Classified;
use reviews_stages::archive::{archive as archive_stage, backlog};
use reviews_stages::{NoProgress, extract_rows};
use reviews_stores::LocalLake;
use reviews_testkit::synthetic;

fn mongo_sh(args: &[&str], env: &[(&str, &str)]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services/mongo.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run mongo.sh");
    assert!(
        out.status.success(),
        "mongo.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The writer's URI of the shared test server (started on first use).
fn mongo_uri() -> String {
    static URI: OnceLock<String> = OnceLock::new();
    URI.get_or_init(|| match std::env::var("REVIEWS_TEST_MONGO_URI") {
        Ok(uri) if !uri.is_empty() => uri,
        _ => {
            mongo_sh(&["start"], &[]);
            mongo_sh(&["url"], &[])
        }
    })
    .clone()
}

/// An archive on a collection private to one test, emptied first.
async fn fresh_archive(uri: &str, name: &str) -> Archive {
    let mut cfg = ArchiveConfig::new(uri);
    cfg.collection = format!("t_{name}");
    cfg.server_selection_timeout = Duration::from_secs(5);
    cfg.batch_docs = 50; // several write commands per run
    let archive = Archive::connect(cfg).await.unwrap();
    archive.collection().drop().await.unwrap();
    archive
}

/// Write `rows` as the raw/ of `run`, as the extract stage does.
async fn write_raw(lake: &Arc<dyn Lake>, run: &RunId, rows: &[RawReview]) {
    extract_rows(
        lake.clone(),
        run,
        rows.iter().cloned().map(Ok::<_, String>),
        &NoProgress,
        None,
    )
    .await
    .unwrap();
}

fn distinct_keys(rows: &[RawReview], run: &RunId) -> HashSet<String> {
    rows.iter()
        .map(|r| match r.review_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => format!("{run}#{}", r.source_position.unwrap()),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MongoDB: scripts/test starts it"]
async fn archiving_twice_leaves_one_document_per_review_under_a_unique_index() {
    let archive = fresh_archive(&mongo_uri(), "upsert").await;
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    let run = RunId::parse("2026-11-29-upsert").unwrap();
    let mut rows = synthetic(400, 21, "U");
    // A duplicate key inside the run, and rows without a review id.
    rows.push(RawReview {
        text: Some("a later copy".into()),
        source_position: Some(401),
        ..rows[0].clone()
    });
    for pos in [402, 403] {
        rows.push(RawReview {
            review_id: if pos == 402 { None } else { Some(" ".into()) },
            product_id: Some("B0X".into()),
            source_position: Some(pos),
            ..Default::default()
        });
    }
    write_raw(&lake, &run, &rows).await;
    let expected = distinct_keys(&rows, &run).len() as u64;
    assert!(expected < rows.len() as u64);

    let first = archive_stage(lake.as_ref(), &archive, &run).await.unwrap();
    assert_eq!(first.documents, rows.len() as u64);
    assert_eq!(first.archived_runs.len(), 1);
    assert_eq!(first.inserted, expected);
    let coll = archive.collection();
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), expected);
    // The later copy of a duplicated key wins (rows are upserted in order).
    let dup = coll
        .find_one(doc! { "_id": rows[0].review_id.clone().unwrap() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dup.get_str("text").unwrap(), "a later copy");
    assert_eq!(dup.get_str("run_id").unwrap(), run.as_str());
    assert!(dup.get_datetime("archived_at").is_ok());
    let keyless = coll
        .count_documents(doc! { "_id.run_id": run.as_str() })
        .await
        .unwrap();
    assert_eq!(keyless, 2);

    // Twice: still one document per review.
    let second = archive_stage(lake.as_ref(), &archive, &run).await.unwrap();
    assert_eq!(second.inserted, 0);
    assert_eq!(second.replaced, rows.len() as u64);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), expected);
    assert!(lake.size(&marker_key(&run)).await.unwrap().is_some());

    // The unique index exists and is enforced.
    let indexes: Vec<_> = {
        use futures::TryStreamExt;
        coll.list_indexes()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    let unique = indexes
        .iter()
        .find(|i| i.keys == doc! { "review_id": 1 })
        .expect("an index on review_id");
    let opts = unique.options.as_ref().unwrap();
    assert_eq!(opts.unique, Some(true), "{unique:?}");
    let clash = coll
        .insert_one(doc! { "_id": "another-id", "review_id": rows[1].review_id.clone().unwrap() })
        .await
        .expect_err("a second document with the same review_id is refused");
    assert!(clash.to_string().contains("E11000"), "{clash}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MongoDB: scripts/test starts it"]
async fn erase_removes_exactly_one_buyers_documents() {
    let archive = fresh_archive(&mongo_uri(), "erase").await;
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    let run = RunId::parse("erase-run").unwrap();
    let rows = synthetic(600, 33, "E");
    write_raw(&lake, &run, &rows).await;
    archive_stage(lake.as_ref(), &archive, &run).await.unwrap();
    let coll = archive.collection();
    let total = coll.count_documents(doc! {}).await.unwrap();

    // The buyer with the most documents, and another one.
    let mut by_buyer = std::collections::HashMap::<String, u64>::new();
    let keys = distinct_keys(&rows, &run);
    assert_eq!(keys.len() as u64, total);
    for d in rows.iter().filter_map(|r| r.buyer_id.clone()) {
        *by_buyer.entry(d).or_default() += 1;
    }
    let mut buyers: Vec<_> = by_buyer.into_iter().collect();
    buyers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (target, other) = (buyers[0].0.clone(), buyers[1].0.clone());
    let target_docs = coll
        .count_documents(doc! { "buyer_id": &target })
        .await
        .unwrap();
    let other_docs = coll
        .count_documents(doc! { "buyer_id": &other })
        .await
        .unwrap();
    assert!(target_docs >= 2 && other_docs >= 1);

    let erased = archive.erase_buyer(&format!(" {target} ")).await.unwrap();
    assert_eq!(erased, target_docs);
    assert_eq!(
        coll.count_documents(doc! { "buyer_id": &target })
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        coll.count_documents(doc! { "buyer_id": &other })
            .await
            .unwrap(),
        other_docs
    );
    assert_eq!(
        coll.count_documents(doc! {}).await.unwrap(),
        total - target_docs
    );
    assert_eq!(archive.erase_buyer(&target).await.unwrap(), 0);
    assert!(archive.erase_buyer("  ").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MongoDB: scripts/test starts it"]
async fn a_wrong_password_is_a_fatal_error() {
    let uri = mongo_uri();
    let Some((head, tail)) = uri.split_once('@') else {
        panic!("the test URI has credentials");
    };
    let user = head.rsplit_once(':').unwrap().0;
    let mut cfg = ArchiveConfig::new(format!("{user}:wrong-password@{tail}"));
    cfg.collection = "t_wrongpw".into();
    let archive = Archive::connect(cfg).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    let run = RunId::parse("wrong-pw").unwrap();
    write_raw(&lake, &run, &synthetic(5, 1, "W")).await;
    let err = archive_stage(lake.as_ref(), &archive, &run)
        .await
        .expect_err("authentication fails");
    assert!(!err.is_retryable(), "{err:?}");
    assert_eq!(err.error_type(), "FatalError");
}

/// A dedicated server, so stopping it disturbs no other test.
struct DedicatedServer {
    env: Vec<(String, String)>,
}

impl DedicatedServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = Self {
            env: vec![
                (
                    "REVIEWS_MONGO_DIR".into(),
                    format!("/tmp/reviews-mongo-backlog-test-{}", std::process::id()),
                ),
                ("REVIEWS_MONGO_PORT".into(), port.to_string()),
            ],
        };
        s.sh(&["start"]);
        s
    }

    fn sh(&self, args: &[&str]) -> String {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        mongo_sh(args, &env)
    }
}

impl Drop for DedicatedServer {
    fn drop(&mut self) {
        self.sh(&["destroy"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MongoDB: scripts/test starts it"]
async fn a_stopped_server_is_a_retryable_error_and_the_next_run_archives_the_backlog() {
    let server = DedicatedServer::start();
    let uri = server.sh(&["url"]);
    let mut cfg = ArchiveConfig::new(&uri);
    cfg.server_selection_timeout = Duration::from_millis(1500);
    let archive = Archive::connect(cfg).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    let (r1, r2, r3) = (
        RunId::parse("2026-11-28-daily").unwrap(),
        RunId::parse("2026-11-29-daily").unwrap(),
        RunId::parse("2026-11-30-daily").unwrap(),
    );
    let rows1 = synthetic(120, 41, "A");
    let rows2 = synthetic(80, 42, "B");
    write_raw(&lake, &r1, &rows1).await;

    server.sh(&["stop"]);
    let err = archive_stage(lake.as_ref(), &archive, &r1)
        .await
        .expect_err("MongoDB is down");
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.error_type(), "RetryableError");
    assert!(
        matches!(
            err.source_error::<ArchiveError>(),
            Some(ArchiveError::Mongo { .. })
        ),
        "{err:?}"
    );
    assert!(lake.size(&marker_key(&r1)).await.unwrap().is_none());

    // The pipeline went on: run 2 extracted while the archive was down.
    write_raw(&lake, &r2, &rows2).await;
    server.sh(&["start"]);
    let out = archive_stage(lake.as_ref(), &archive, &r2).await.unwrap();
    let runs: Vec<&str> = out.archived_runs.iter().map(|r| r.as_str()).collect();
    assert_eq!(runs, [r1.as_str(), r2.as_str()]);
    assert_eq!(out.documents, (rows1.len() + rows2.len()) as u64);
    assert!(out.skipped.is_empty());
    let expected = distinct_keys(&rows1, &r1).len() + distinct_keys(&rows2, &r2).len();
    assert_eq!(
        archive.collection().count_documents(doc! {}).await.unwrap(),
        expected as u64
    );
    for r in [&r1, &r2] {
        assert!(lake.size(&marker_key(r)).await.unwrap().is_some());
    }

    // No backlog left: the next run archives only itself.
    write_raw(&lake, &r3, &synthetic(10, 43, "C")).await;
    let out = archive_stage(lake.as_ref(), &archive, &r3).await.unwrap();
    assert_eq!(out.archived_runs.len(), 1);
    assert_eq!(out.archived_runs[0], r3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MongoDB: scripts/test starts it"]
async fn the_backlog_is_archived_in_the_order_the_runs_started_so_the_latest_edit_wins() {
    let archive = fresh_archive(&mongo_uri(), "backlog_order").await;
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    // Manual run ids whose names sort against the order they ran in.
    let (older, newer, current) = (
        RunId::parse("zz-manual").unwrap(),
        RunId::parse("aa-manual").unwrap(),
        RunId::parse("mm-manual").unwrap(),
    );
    let original = synthetic(5, 51, "O");
    let edited: Vec<RawReview> = original
        .iter()
        .map(|r| RawReview {
            text: Some("the text as edited later".into()),
            ..r.clone()
        })
        .collect();
    write_raw(&lake, &older, &original).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    write_raw(&lake, &newer, &edited).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    write_raw(&lake, &current, &synthetic(3, 52, "C")).await;

    let pending = backlog(lake.as_ref(), &current).await.unwrap();
    assert_eq!(pending, [older.clone(), newer.clone()]);
    let out = archive_stage(lake.as_ref(), &archive, &current)
        .await
        .unwrap();
    let runs: Vec<&str> = out.archived_runs.iter().map(|r| r.as_str()).collect();
    assert_eq!(runs, [older.as_str(), newer.as_str(), current.as_str()]);
    for row in &edited {
        let d = archive
            .collection()
            .find_one(doc! { "_id": row.review_id.clone().unwrap() })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.get_str("text").unwrap(), "the text as edited later");
        assert_eq!(d.get_str("run_id").unwrap(), newer.as_str());
    }
}
