//! The PostgreSQL source against a real PostgreSQL 15 server (see tests/common).

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use reviews_domain::RawReview;
use reviews_domain::schema::batch_to_raw;
use reviews_lake::manifest::Manifest;
use reviews_lake::parquet_io::{Dataset, read_parquet};
use reviews_lake::state::{self, CommitOutcome};
use reviews_lake::{Lake, RunId, layout};
use reviews_ports::Classified;
use reviews_postgres::{
    LoadOptions, PgConfig, PgError, PgFeed, SetupConfig, Watermark, load_reviews, setup,
};
use reviews_stages::extract::{Deletion, read_deletions};
use reviews_stages::{ExtractOutput, NoProgress, Progress, StageError, extract_changes};
use reviews_stores::LocalLake;
use reviews_testkit::synthetic;
use tokio_postgres::error::SqlState;

/// The extract stage on the PostgreSQL change feed, from `from` when given.
async fn extract_to_lake(
    lake: Arc<dyn Lake>,
    run: &RunId,
    cfg: &PgConfig,
    from: Option<Watermark>,
    progress: &dyn Progress,
) -> Result<ExtractOutput, StageError> {
    let feed = PgFeed::new(cfg.clone());
    let from = from.as_ref().map(Watermark::to_json);
    extract_changes(lake, run, &feed, from, progress).await
}

/// The PostgreSQL error inside a stage error: the port keeps it typed.
fn pg_error(e: &StageError) -> &PgError {
    e.source_error::<PgError>()
        .unwrap_or_else(|| panic!("not a PostgreSQL error: {e:?}"))
}

/// The watermark of the live commit: where the next run's extract starts.
async fn read_watermark(lake: &dyn Lake) -> Result<Option<Watermark>, StageError> {
    let live = state::read_pointer(lake).await?;
    Ok(live
        .and_then(|(manifest, _)| manifest.watermark)
        .map(|json| Watermark::from_json(&json).expect("a PostgreSQL watermark")))
}

fn row(id: &str, rating: &str, text: &str, date: &str) -> RawReview {
    RawReview {
        review_id: Some(id.into()),
        product_id: Some("PTEST1".into()),
        product_title: Some("Kettle 101".into()),
        product_category: Some("Kitchen".into()),
        buyer_id: Some("C00000001".into()),
        rating: Some(rating.into()),
        title: Some("t".into()),
        text: Some(text.into()),
        helpful_votes: Some("1".into()),
        total_votes: Some("2".into()),
        verified_purchase: Some("Y".into()),
        review_date: Some(date.into()),
        language: None,
        marketplace: Some("UK".into()),
        source_position: None,
        read_defect: None,
    }
}

/// Make the run's watermark live, as publish would (the extract itself never moves it).
async fn commit_watermark(lake: &dyn Lake, out: &ExtractOutput) {
    let base = state::run_base(lake, &out.run_id, Utc::now())
        .await
        .unwrap();
    let snapshot = Manifest {
        dataset: "curated".into(),
        schema_version: 1,
        run_id: out.run_id.clone(),
        keys: vec![],
        rows: out.rows,
        products: 0,
        checksum: format!("test-{}", out.run_id),
        part_checksums: vec![],
        topics: vec![],
        created_at: Utc::now(),
        sequence: 0,
        base_sequence: base.sequence,
        watermark: out.watermark.clone(),
        erased_buyers: 0,
        buckets: 0,
        bucket_files: vec![],
    };
    let outcome = state::commit(lake, &snapshot).await.unwrap();
    assert!(
        matches!(outcome, CommitOutcome::Committed(_)),
        "{outcome:?}"
    );
}

fn ids(rows: &[RawReview]) -> Vec<&str> {
    let mut ids: Vec<&str> = rows
        .iter()
        .map(|r| r.review_id.as_deref().unwrap())
        .collect();
    ids.sort();
    ids
}

async fn raw_rows(lake: &dyn Lake, run: &RunId) -> Vec<RawReview> {
    let bytes = lake.get(&layout::raw_key(run, 0)).await.unwrap();
    read_parquet(Dataset::Raw, bytes)
        .unwrap()
        .iter()
        .flat_map(|b| batch_to_raw(b).unwrap())
        .collect()
}

/// Everything setup controls, as text: tables, columns, constraints, indexes, triggers,
/// roles (with password verifiers and settings), ownership and privileges.
async fn catalog_snapshot(admin: &PgConfig, cfg: &SetupConfig) -> String {
    let server = admin.connect().await.unwrap();
    let mut out = Vec::new();
    for r in server
        .query(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolpassword,
                    (SELECT setconfig::text FROM pg_db_role_setting s WHERE s.setrole = a.oid)
             FROM pg_authid a WHERE rolname = ANY($1) ORDER BY rolname",
            &[&vec![cfg.owner_role.clone(), cfg.reader_role.clone()]],
        )
        .await
        .unwrap()
    {
        out.push(format!(
            "role {:?} {} {} {} {} {:?} {:?}",
            r.get::<_, String>(0),
            r.get::<_, bool>(1),
            r.get::<_, bool>(2),
            r.get::<_, bool>(3),
            r.get::<_, bool>(4),
            r.get::<_, Option<String>>(5),
            r.get::<_, Option<String>>(6)
        ));
    }
    let r = server
        .query_one(
            "SELECT pg_get_userbyid(datdba), datacl::text FROM pg_database WHERE datname = $1",
            &[&cfg.database],
        )
        .await
        .unwrap();
    out.push(format!(
        "db {} {:?}",
        r.get::<_, String>(0),
        r.get::<_, Option<String>>(1)
    ));
    let db = admin.with_database(&cfg.database).connect().await.unwrap();
    let queries = [
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
             || ' ' || coalesce(column_default, '') FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY 1",
        "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1",
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
        "SELECT c.relname || ' ' || pg_get_userbyid(c.relowner) || ' ' || coalesce(c.relacl::text, '')
         FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1",
        "SELECT nspname || ' ' || coalesce(nspacl::text, '') FROM pg_namespace
         WHERE nspname = 'public'",
        "SELECT proname || ' ' || md5(prosrc) || ' ' || prosecdef::text || ' '
             || coalesce(proconfig::text, '') || ' ' || pg_get_userbyid(proowner)
         FROM pg_proc WHERE proname IN ('touch_updated_at', 'track_review_deletion')
         ORDER BY 1",
        "SELECT count(*)::text || ' ' || coalesce(max(updated_at)::text, '') FROM review",
    ];
    for q in queries {
        for r in db.query(q, &[]).await.unwrap() {
            out.push(r.get::<_, String>(0));
        }
    }
    out.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn setup_is_idempotent_with_the_default_names() {
    let admin = admin();
    let server = admin.connect().await.unwrap();
    server
        .batch_execute("DROP DATABASE IF EXISTS amazonreviews WITH (FORCE)")
        .await
        .unwrap();
    let cfg = SetupConfig::new("idempotent-reader-pw");
    assert_eq!(cfg.database, "amazonreviews");
    assert_eq!(cfg.reader_role, "etl_reader");

    let first = setup(&admin, &cfg).await.unwrap();
    assert!(
        first
            .changes
            .iter()
            .any(|c| c == "created database amazonreviews"),
        "{first:?}"
    );
    for table in ["product", "buyer", "review", "review_deletion"] {
        assert!(
            first.changes.contains(&format!("created table {table}")),
            "{first:?}"
        );
    }
    let target = admin.with_database("amazonreviews");
    let rows = synthetic(300, 7, "");
    let load1 = load_reviews(&target, rows.clone(), &LoadOptions { batch_rows: 64 })
        .await
        .unwrap();
    assert_eq!(load1.read, 300);
    assert!(load1.inserted > 250, "{load1:?}");
    assert_eq!(
        load1.inserted + load1.updated + load1.unchanged + load1.rejected_total(),
        300
    );
    let before = catalog_snapshot(&admin, &cfg).await;

    // Twice: no change reported, none made, no error.
    let second = setup(&admin, &cfg).await.unwrap();
    assert_eq!(second.changes, Vec::<String>::new());
    let load2 = load_reviews(&target, rows, &LoadOptions { batch_rows: 64 })
        .await
        .unwrap();
    assert_eq!((load2.inserted, load2.updated), (0, 0), "{load2:?}");
    assert_eq!(load2.unchanged, load1.inserted);
    assert_eq!(load2.rejected, load1.rejected);
    assert_eq!(catalog_snapshot(&admin, &cfg).await, before);

    // The reader's sessions are read-only by default.
    let reader = reader(&admin, &cfg).connect().await.unwrap();
    let ro: String = reader
        .query_one("SHOW default_transaction_read_only", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ro, "on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn the_reader_can_read_and_cannot_write() {
    let admin = admin();
    let cfg = fresh("readonly").await;
    setup(&admin, &cfg).await.unwrap();
    load_reviews(
        &admin.with_database(&cfg.database),
        vec![row("R1", "5", "Great kettle.", "2015-01-02")],
        &LoadOptions::default(),
    )
    .await
    .unwrap();
    let reader = reader(&admin, &cfg).connect().await.unwrap();
    let n: i64 = reader
        .query_one("SELECT count(*) FROM review", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    let insert = "INSERT INTO review (review_id, product_id) VALUES ($1, $2)";
    let err = reader.execute(insert, &[&"R2", &"PTEST1"]).await;
    let err = err.expect_err("an INSERT by the reader must be refused");
    assert_eq!(
        err.code(),
        Some(&SqlState::READ_ONLY_SQL_TRANSACTION),
        "{err}"
    );
    // Even in a transaction it declares read-write, privileges refuse it.
    reader.batch_execute("BEGIN READ WRITE").await.unwrap();
    let err = reader
        .execute(insert, &[&"R2", &"PTEST1"])
        .await
        .expect_err("no INSERT privilege");
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{err}");
    reader.batch_execute("ROLLBACK").await.unwrap();
    for sql in [
        "BEGIN READ WRITE; UPDATE review SET rating = 1",
        "BEGIN READ WRITE; DELETE FROM buyer",
        "BEGIN READ WRITE; CREATE TABLE public.x (a int)",
    ] {
        let err = reader.batch_execute(sql).await.expect_err(sql);
        assert_eq!(
            err.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {err}"
        );
        reader.batch_execute("ROLLBACK").await.unwrap();
    }
    // A wrong password is refused, and that is not worth retrying.
    let wrong = admin
        .with_database(&cfg.database)
        .with_credentials(&cfg.reader_role, "wrong")
        .with_attempts(3, Duration::from_millis(10));
    let err = wrong.connect().await.expect_err("wrong password");
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn extract_names_missing_columns_and_tables() {
    let admin = admin();
    let cfg = fresh("missingcol").await;
    setup(&admin, &cfg).await.unwrap();
    let db = admin.with_database(&cfg.database).connect().await.unwrap();
    db.batch_execute(
        "ALTER TABLE review DROP COLUMN rating;
         ALTER TABLE review RENAME COLUMN marketplace TO market;
         ALTER TABLE product ALTER COLUMN category TYPE bytea USING category::bytea;
         ALTER TABLE review_deletion ALTER COLUMN deleted_at TYPE text",
    )
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    let run = RunId::parse("r1").unwrap();
    let err = extract_to_lake(lake.clone(), &run, &reader(&admin, &cfg), None, &NoProgress)
        .await
        .expect_err("the schema is incomplete");
    let msg = err.to_string();
    assert!(msg.contains("missing column review.rating"), "{msg}");
    assert!(msg.contains("missing column review.marketplace"), "{msg}");
    assert!(
        msg.contains("column product.category has type bytea, expected text"),
        "{msg}"
    );
    // The deletions table is optional, but when it is there its columns must fit.
    assert!(
        msg.contains("column review_deletion.deleted_at has type text, expected timestamptz"),
        "{msg}"
    );
    assert!(!err.is_retryable());
    assert_eq!(err.error_type(), "FatalError");
    assert!(matches!(
        pg_error(&err),
        PgError::Schema { problems } if problems.len() == 4
    ));
    // Nothing written, watermark untouched.
    assert!(lake.list("raw/").await.unwrap().is_empty());
    assert!(read_watermark(lake.as_ref()).await.unwrap().is_none());

    db.batch_execute("DROP TABLE buyer CASCADE").await.unwrap();
    let err = extract_to_lake(lake, &run, &reader(&admin, &cfg), None, &NoProgress)
        .await
        .expect_err("a table is missing");
    assert!(
        err.to_string().contains("missing table public.buyer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn incremental_extract_returns_only_new_and_changed_rows() {
    let admin = admin();
    let cfg = fresh("incremental").await;
    setup(&admin, &cfg).await.unwrap();
    let target = admin.with_database(&cfg.database);
    let mut first = synthetic(500, 11, "A");
    // Dirt the source can hold reaches the extract as it is, for cleaning to reject.
    first.push(row("DIRTY-RATING", "6", "Fine.", "2015-01-02"));
    first.push(row("DIRTY-TEXT", "4", "", "2015-01-02"));
    first.push(row("DIRTY-DATE", "4", "Fine.", "2099-01-01"));
    let load = load_reviews(&target, first, &LoadOptions { batch_rows: 100 })
        .await
        .unwrap();
    let loaded = load.inserted;

    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    // No lag: the rows just loaded are visible at once.
    let mut pg = reader(&admin, &cfg).with_safety_lag(Duration::ZERO);
    pg.fetch_rows = 37; // many cursor round trips
    let r1 = RunId::parse("2026-11-29-r1").unwrap();
    let out1 = extract_to_lake(lake.clone(), &r1, &pg, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(out1.rows, loaded);
    let rows1 = raw_rows(lake.as_ref(), &r1).await;
    assert_eq!(rows1.len() as u64, loaded);
    let dirty = |id: &str| rows1.iter().find(|r| r.review_id.as_deref() == Some(id));
    assert_eq!(dirty("DIRTY-RATING").unwrap().rating.as_deref(), Some("6"));
    assert_eq!(dirty("DIRTY-TEXT").unwrap().text.as_deref(), Some(""));
    assert_eq!(
        dirty("DIRTY-DATE").unwrap().review_date.as_deref(),
        Some("2099-01-01")
    );
    let r = dirty("DIRTY-DATE").unwrap();
    assert_eq!(r.product_title.as_deref(), Some("Kettle 101"));
    assert_eq!(r.product_category.as_deref(), Some("Kitchen"));
    assert_eq!(r.verified_purchase.as_deref(), Some("true"));
    assert_eq!(r.helpful_votes.as_deref(), Some("1"));
    assert!(r.source_position.is_some());
    assert!(!out1.incremental);
    // The extract does not move the watermark: only a commit does.
    assert!(read_watermark(lake.as_ref()).await.unwrap().is_none());
    commit_watermark(lake.as_ref(), &out1).await;
    let wm1 = read_watermark(lake.as_ref()).await.unwrap().unwrap();
    assert_eq!(out1.watermark.as_deref(), Some(wm1.to_json().as_str()));

    // New rows, and one changed row: only those come next.
    let load2 = load_reviews(
        &target,
        synthetic(60, 12, "B")
            .into_iter()
            .chain([row("DIRTY-RATING", "5", "Fine.", "2015-01-02")]),
        &LoadOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(load2.updated, 1);
    let r2 = RunId::parse("2026-11-29-r2").unwrap();
    let out2 = extract_to_lake(lake.clone(), &r2, &pg, None, &NoProgress)
        .await
        .unwrap();
    let rows2 = raw_rows(lake.as_ref(), &r2).await;
    assert_eq!(out2.rows, load2.inserted + 1);
    assert!(out2.incremental);
    assert_eq!(rows2.len() as u64, out2.rows);
    assert!(rows2.iter().all(|r| {
        let id = r.review_id.as_deref().unwrap();
        id.starts_with('B') || id == "DIRTY-RATING"
    }));
    commit_watermark(lake.as_ref(), &out2).await;
    let wm2 = read_watermark(lake.as_ref()).await.unwrap().unwrap();
    assert!(wm2 > wm1);
    assert_eq!(out2.watermark, Some(wm2.to_json()));

    // Nothing new: an empty extract, the watermark stays.
    let r3 = RunId::parse("2026-11-29-r3").unwrap();
    let out3 = extract_to_lake(lake.clone(), &r3, &pg, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(out3.rows, 0);
    assert_eq!(out3.watermark, Some(wm2.to_json()));

    // Re-running r2 re-reads r2's range (not an empty one), and moves nothing back.
    let again = extract_to_lake(lake.clone(), &r2, &pg, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(again.rows, out2.rows);
    assert_eq!(raw_rows(lake.as_ref(), &r2).await, rows2);
    assert_eq!(
        read_watermark(lake.as_ref()).await.unwrap(),
        Some(wm2.clone())
    );

    // An explicit watermark overrides the live one.
    let r4 = RunId::parse("2026-11-29-r4").unwrap();
    let out4 = extract_to_lake(lake.clone(), &r4, &pg, Some(wm1), &NoProgress)
        .await
        .unwrap();
    assert_eq!(out4.rows, out2.rows);
}

/// A dedicated cluster on its own port, so stopping it disturbs no other test.
struct DedicatedCluster {
    env: Vec<(String, String)>,
}

impl DedicatedCluster {
    fn start() -> Self {
        let dir = format!("/tmp/reviews-pg-retry-test-{}", std::process::id());
        let env = vec![
            ("REVIEWS_PG_DIR".to_owned(), dir),
            ("PGPORT".to_owned(), free_port().to_string()),
        ];
        let c = Self { env };
        c.sh("start");
        c
    }

    fn sh(&self, cmd: &str) -> String {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        postgres_sh(&[cmd], &env)
    }
}

impl Drop for DedicatedCluster {
    fn drop(&mut self) {
        self.sh("destroy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn extract_with_the_server_stopped_is_retryable_and_succeeds_once_it_is_back() {
    let cluster = DedicatedCluster::start();
    let admin = PgConfig::new(&cluster.sh("url")).unwrap();
    let cfg = SetupConfig::new("retry-reader-pw");
    setup(&admin, &cfg).await.unwrap();
    load_reviews(
        &admin.with_database(&cfg.database),
        synthetic(40, 3, "R"),
        &LoadOptions::default(),
    )
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    let run = RunId::parse("retry-run").unwrap();

    cluster.sh("stop");
    let pg = reader(&admin, &cfg)
        .with_attempts(3, Duration::from_millis(20))
        .with_safety_lag(Duration::ZERO);
    let started = std::time::Instant::now();
    let err = extract_to_lake(lake.clone(), &run, &pg, None, &NoProgress)
        .await
        .expect_err("the server is down");
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.error_type(), "RetryableError");
    assert!(
        matches!(pg_error(&err), PgError::Connect { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(60)); // 20 + 40 ms of backoff
    assert!(lake.list("raw/").await.unwrap().is_empty());
    assert!(read_watermark(lake.as_ref()).await.unwrap().is_none());

    // Back up while the extract is retrying: the backoff carries it through.
    let env = cluster.env.clone();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        postgres_sh(&["start"], &env);
    });
    let pg = reader(&admin, &cfg)
        .with_attempts(12, Duration::from_millis(100))
        .with_safety_lag(Duration::ZERO);
    let out = extract_to_lake(lake.clone(), &run, &pg, None, &NoProgress)
        .await
        .unwrap();
    restarter.join().unwrap();
    assert!(out.rows > 30, "{out:?}");
    assert_eq!(raw_rows(lake.as_ref(), &run).await.len() as u64, out.rows);
    let wm = Watermark::from_json(out.watermark.as_deref().unwrap()).unwrap();
    assert!(wm.review_id.starts_with('R'), "{wm:?}");
    // Nothing committed: the live watermark did not move.
    assert!(read_watermark(lake.as_ref()).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn a_connection_dropped_mid_stream_is_retryable() {
    let admin = admin();
    let cfg = fresh("dropped").await;
    setup(&admin, &cfg).await.unwrap();
    load_reviews(
        &admin.with_database(&cfg.database),
        synthetic(3000, 5, "D"),
        &LoadOptions::default(),
    )
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    let run = RunId::parse("dropped").unwrap();
    let mut pg = reader(&admin, &cfg).with_safety_lag(Duration::ZERO);
    pg.fetch_rows = 1;
    // Kill the reader's backend while it streams one row per round trip.
    let killer = {
        let admin = admin.clone();
        let role = cfg.reader_role.clone();
        tokio::spawn(async move {
            let c = admin.connect().await.unwrap();
            for _ in 0..200 {
                let n = c
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE usename = $1 AND state = 'idle in transaction'",
                        &[&role],
                    )
                    .await
                    .unwrap();
                if n > 0 {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        })
    };
    let err = extract_to_lake(lake.clone(), &run, &pg, None, &NoProgress)
        .await
        .expect_err("the connection was dropped");
    assert!(killer.await.unwrap());
    assert!(err.is_retryable(), "{err:?}");
    assert!(matches!(pg_error(&err), PgError::Query { .. }), "{err:?}");
    assert!(lake.list("raw/").await.unwrap().is_empty());
    assert!(read_watermark(lake.as_ref()).await.unwrap().is_none());
}

/// `updated_at` of a review, as the source holds it.
async fn updated_at(db: &tokio_postgres::Client, id: &str) -> DateTime<Utc> {
    db.query_one("SELECT updated_at FROM review WHERE review_id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn a_row_committed_late_is_missed_without_a_lag_and_extracted_with_one() {
    let admin = admin();
    let cfg = fresh("late").await;
    setup(&admin, &cfg).await.unwrap();
    let target = admin.with_database(&cfg.database);
    load_reviews(
        &target,
        vec![row("EARLY", "5", "Early.", "2015-01-02")],
        &LoadOptions::default(),
    )
    .await
    .unwrap();
    let lag = Duration::from_secs(2);
    // EARLY is older than the lag when the first extracts run.
    tokio::time::sleep(lag + Duration::from_millis(200)).await;

    // A long writer: its row is stamped with the transaction's start, and commits later.
    let long_writer = target.connect().await.unwrap();
    long_writer
        .batch_execute(
            "BEGIN; INSERT INTO review (review_id, product_id, buyer_id, rating, text)
             VALUES ('LATE', 'PTEST1', 'C00000001', 4, 'Late.')",
        )
        .await
        .unwrap();
    let began = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = target.connect().await.unwrap();
    other
        .batch_execute(
            "INSERT INTO review (review_id, product_id, buyer_id, rating, text)
             VALUES ('ONTIME', 'PTEST1', 'C00000001', 5, 'On time.')",
        )
        .await
        .unwrap();

    // While LATE is uncommitted: one lake extracts with no lag, the other with a 2 s lag.
    let no_lag = reader(&admin, &cfg).with_safety_lag(Duration::ZERO);
    let with_lag = reader(&admin, &cfg).with_safety_lag(lag);
    let tmp0 = tempfile::tempdir().unwrap();
    let lake0: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp0.path()));
    let tmp2 = tempfile::tempdir().unwrap();
    let lake2: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp2.path()));
    let a = RunId::parse("late-a").unwrap();
    let out0 = extract_to_lake(lake0.clone(), &a, &no_lag, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        ids(&raw_rows(lake0.as_ref(), &a).await),
        ["EARLY", "ONTIME"]
    );
    commit_watermark(lake0.as_ref(), &out0).await;
    let out2 = extract_to_lake(lake2.clone(), &a, &with_lag, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(ids(&raw_rows(lake2.as_ref(), &a).await), ["EARLY"]);
    commit_watermark(lake2.as_ref(), &out2).await;

    long_writer.batch_execute("COMMIT").await.unwrap();
    assert!(
        began.elapsed() < lag,
        "the writer's transaction must be shorter than the lag"
    );
    let db = target.connect().await.unwrap();
    let late_at = updated_at(&db, "LATE").await;
    let ontime_at = updated_at(&db, "ONTIME").await;
    assert!(late_at < ontime_at);

    // No lag: LATE committed below the live watermark, so the next run never sees it.
    let wm0 = read_watermark(lake0.as_ref()).await.unwrap().unwrap();
    assert_eq!(
        (wm0.updated_at, wm0.review_id.as_str()),
        (ontime_at, "ONTIME")
    );
    assert!(late_at < wm0.updated_at);
    let b = RunId::parse("late-b").unwrap();
    let next0 = extract_to_lake(lake0.clone(), &b, &no_lag, None, &NoProgress)
        .await
        .unwrap();
    assert!(next0.incremental);
    assert_eq!(next0.rows, 0, "the late row is lost without a lag");

    // With the lag: once it has passed, the next run extracts LATE (and ONTIME).
    let wm2 = read_watermark(lake2.as_ref()).await.unwrap().unwrap();
    assert_eq!(wm2.review_id, "EARLY");
    let wait = (ontime_at + chrono::Duration::from_std(lag).unwrap() - Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    let next2 = extract_to_lake(lake2.clone(), &b, &with_lag, None, &NoProgress)
        .await
        .unwrap();
    assert!(next2.incremental);
    assert_eq!(ids(&raw_rows(lake2.as_ref(), &b).await), ["LATE", "ONTIME"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn deletions_at_the_source_reach_the_next_extract() {
    let admin = admin();
    let cfg = fresh("deletions").await;
    setup(&admin, &cfg).await.unwrap();
    let target = admin.with_database(&cfg.database);
    let five: Vec<RawReview> = (1..=5)
        .map(|i| row(&format!("D{i}"), "4", "Fine.", "2015-01-02"))
        .collect();
    load_reviews(&target, five.clone(), &LoadOptions::default())
        .await
        .unwrap();
    let db = target.connect().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    let pg = reader(&admin, &cfg).with_safety_lag(Duration::ZERO);

    // A full extract lists no deletion (its rows are the whole dataset), but writes the file.
    let r1 = RunId::parse("del-r1").unwrap();
    let out1 = extract_to_lake(lake.clone(), &r1, &pg, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(out1.rows, 5);
    let key1 = out1.deletions_key.clone().unwrap();
    assert_eq!(key1, format!("raw/run={r1}/deletions.json"));
    assert_eq!(
        (
            read_deletions(lake.as_ref(), &key1).await.unwrap(),
            out1.deleted
        ),
        (vec![], 0)
    );
    commit_watermark(lake.as_ref(), &out1).await;

    // Deleted at the source: the trigger records it, and the next extract lists it.
    db.execute("DELETE FROM review WHERE review_id = 'D2'", &[])
        .await
        .unwrap();
    assert_eq!(deleted_ids(&db).await, ["D2"]);
    let r2 = RunId::parse("del-r2").unwrap();
    let out2 = extract_to_lake(lake.clone(), &r2, &pg, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!((out2.rows, out2.deleted), (0, 1));
    let key2 = out2.deletions_key.clone().unwrap();
    // Recorded with the product it was under: the pipeline touches that product's bucket.
    assert_eq!(
        read_deletions(lake.as_ref(), &key2).await.unwrap(),
        [Deletion::of("D2", Some("PTEST1".into()))]
    );
    let wm2 = Watermark::from_json(out2.watermark.as_deref().unwrap()).unwrap();
    assert_eq!(wm2.deleted.as_ref().unwrap().review_id, "D2");

    // Another deletion after r2: a re-run of r2 re-reads r2's deletions, not the new one.
    db.execute("DELETE FROM review WHERE review_id = 'D3'", &[])
        .await
        .unwrap();
    let again = extract_to_lake(lake.clone(), &r2, &pg, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!((again.rows, again.deleted), (0, 1));
    assert_eq!(
        read_deletions(lake.as_ref(), &key2).await.unwrap(),
        [Deletion::of("D2", Some("PTEST1".into()))]
    );
    assert_eq!(again.watermark, out2.watermark);
    commit_watermark(lake.as_ref(), &again).await;

    // Re-creating D2 removes its deletion row; the next run has D2 as a row, D3 as deleted.
    load_reviews(&target, vec![five[1].clone()], &LoadOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted_ids(&db).await, ["D3"]);
    let r3 = RunId::parse("del-r3").unwrap();
    let out3 = extract_to_lake(lake.clone(), &r3, &pg, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(ids(&raw_rows(lake.as_ref(), &r3).await), ["D2"]);
    assert_eq!(out3.deleted, 1);
    assert_eq!(
        read_deletions(lake.as_ref(), out3.deletions_key.as_deref().unwrap())
            .await
            .unwrap(),
        [Deletion::of("D3", Some("PTEST1".into()))]
    );
    commit_watermark(lake.as_ref(), &out3).await;

    // A review moved to another product leaves its old one: the next extract has the row
    // under its new product and a deletion under the old one.
    let mut moved = five[0].clone();
    moved.product_id = Some("PTEST2".into());
    load_reviews(&target, vec![moved], &LoadOptions::default())
        .await
        .unwrap();
    let rm = RunId::parse("del-move").unwrap();
    let outm = extract_to_lake(lake.clone(), &rm, &pg, None, &NoProgress)
        .await
        .unwrap();
    let rows = raw_rows(lake.as_ref(), &rm).await;
    assert_eq!(ids(&rows), ["D1"]);
    assert_eq!(rows[0].product_id.as_deref(), Some("PTEST2"));
    assert_eq!(
        read_deletions(lake.as_ref(), outm.deletions_key.as_deref().unwrap())
            .await
            .unwrap(),
        [Deletion::of("D1", Some("PTEST1".into()))]
    );
    commit_watermark(lake.as_ref(), &outm).await;

    // A source set up before deletions were tracked: extracted without them, no error.
    db.batch_execute("DROP TRIGGER review_track_deletion ON review; DROP TABLE review_deletion")
        .await
        .unwrap();
    db.execute("DELETE FROM review WHERE review_id = 'D4'", &[])
        .await
        .unwrap();
    let r4 = RunId::parse("del-r4").unwrap();
    let out4 = extract_to_lake(lake.clone(), &r4, &pg, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!((out4.rows, out4.deleted, out4.deletions_key), (0, 0, None));
    assert!(
        !lake
            .list(&format!("raw/run={r4}/"))
            .await
            .unwrap()
            .iter()
            .any(|k| k.ends_with("deletions.json"))
    );
    // Setup again adds the table back (an upgrade), and deletions are tracked from then on.
    let report = setup(&admin, &cfg).await.unwrap();
    assert!(
        report
            .changes
            .contains(&"created table review_deletion".to_owned()),
        "{report:?}"
    );
    db.execute("DELETE FROM review WHERE review_id = 'D5'", &[])
        .await
        .unwrap();
    let r5 = RunId::parse("del-r5").unwrap();
    let out5 = extract_to_lake(lake.clone(), &r5, &pg, None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(out5.deleted, 1);
    assert_eq!(
        read_deletions(lake.as_ref(), out5.deletions_key.as_deref().unwrap())
            .await
            .unwrap(),
        [Deletion::of("D5", Some("PTEST1".into()))]
    );
}

async fn deleted_ids(db: &tokio_postgres::Client) -> Vec<String> {
    db.query(
        "SELECT review_id FROM review_deletion ORDER BY review_id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}
