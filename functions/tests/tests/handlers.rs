//! Every stage Lambda handler, invoked with the JSON its state-machine task sends, chained
//! like the state machine chains them, against real services: S3 and Secrets Manager (moto on
//! loopback), PostgreSQL 15 and the MongoDB wire server (started by scripts/test, or on first
//! use). The secrets are read from the emulated Secrets Manager, never from the environment.

use std::sync::Arc;
use std::time::Duration;

use reviews_archive_function::ArchiveFunction;
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_extract_function::ExtractFunction;
use reviews_lake::Lake;
use reviews_lambda::{Secret, SecretKind, SecretsClient};
use reviews_postgres::{LoadOptions, PgConfig, SetupConfig, load_reviews, setup};
use reviews_publish_function::PublishFunction;
use reviews_score_function::ScoreFunction;
use reviews_stages::Scorer;
use reviews_stores::S3Lake;
use reviews_testkit::synthetic;
use reviews_testkit::{Moto, mongo_writer_uri, postgres_admin_url};
use reviews_transform_function::TransformFunction;
use serde_json::{Value, json};

const DB: &str = "t_functions";

/// A fresh source database with the read-only role; returns the admin settings of it and the
/// value the PostgreSQL secret holds: the RDS-managed shape (username, password, host, port,
/// dbname). The TLS CA is not in it: the function is configured with it, as in production.
async fn source_database() -> (PgConfig, String) {
    let admin = PgConfig::new(&postgres_admin_url()).unwrap();
    let client = admin.connect().await.unwrap();
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        .await
        .unwrap();
    let cfg = SetupConfig {
        database: DB.to_owned(),
        owner_role: format!("{DB}_owner"),
        reader_role: format!("{DB}_reader"),
        reader_password: "pw-functions-reader".to_owned(),
    };
    setup(&admin, &cfg).await.unwrap();
    (
        admin.with_database(DB),
        rds_secret(&admin, &cfg.reader_role, &cfg.reader_password),
    )
}

/// A secret value in the RDS-managed shape for `user` on the test server.
fn rds_secret(admin: &PgConfig, user: &str, password: &str) -> String {
    let host_port = admin.target().split('/').next().unwrap().to_owned();
    let (host, port) = host_port.rsplit_once(':').unwrap();
    json!({
        "engine": "postgres", "username": user, "password": password,
        "host": host, "port": port.parse::<u16>().unwrap(), "dbname": DB,
    })
    .to_string()
}

/// The test server's CA (TLS with verify-full, as against RDS).
fn test_ca() -> Option<std::path::PathBuf> {
    PgConfig::new(&postgres_admin_url())
        .unwrap()
        .root_cert()
        .map(|p| p.to_path_buf())
}

struct Chain {
    lake: Arc<dyn Lake>,
    extract: ExtractFunction,
    archive: ArchiveFunction,
    transform: TransformFunction,
    score: ScoreFunction,
    publish: PublishFunction,
}

impl Chain {
    /// One execution, step by step with the payloads statemachine.asl.json builds.
    async fn execute(&self, execution: &str) -> (Value, Value, Value, Value) {
        let extract = self
            .extract
            .handle(json!({
                "execution_name": execution,
                "start_time": "2026-11-29T06:00:00.000Z",
                "run_id": null
            }))
            .await
            .unwrap();
        let extract = serde_json::to_value(extract).unwrap();
        let run_id = extract["run_id"].clone();
        let archive = self
            .archive
            .handle(json!({ "run_id": run_id }))
            .await
            .unwrap();
        // The route Map: one task per raw part, as its ItemSelector builds them.
        let mut routed = 0;
        for (part, raw_key) in extract["raw_keys"].as_array().unwrap().iter().enumerate() {
            let out = self
                .transform
                .handle(json!({
                    "run_id": run_id,
                    "part": part,
                    "raw_key": raw_key,
                    "buckets": 8
                }))
                .await
                .unwrap();
            let out = serde_json::to_value(out).unwrap();
            assert_eq!(out["part"], part);
            routed += out["rows_in"].as_u64().unwrap();
        }
        assert_eq!(routed, extract["rows"].as_u64().unwrap());
        let transform = self
            .transform
            .handle(json!({
                "run_id": run_id,
                "raw_keys": extract["raw_keys"],
                "merge_previous": extract["incremental"],
                "deletions_key": extract["deletions_key"],
                "buckets": 8,
                "routed": true
            }))
            .await
            .unwrap();
        let transform = serde_json::to_value(transform).unwrap();
        // The Distributed Map's items are the lake object transform names.
        let items_key = transform["items_key"].as_str().unwrap();
        let items: Vec<Value> =
            serde_json::from_slice(&self.lake.get(items_key).await.unwrap()).unwrap();
        assert_eq!(items.len() as u64, transform["changed"].as_u64().unwrap());
        let mut written = 0;
        for item in items {
            let out = self.score.handle(item).await.unwrap();
            written += out.rows;
        }
        let publish = self
            .publish
            .handle(json!({
                "run_id": run_id,
                "expected_rows": written,
                "watermark": extract["watermark"]
            }))
            .await
            .unwrap();
        (
            extract,
            serde_json::to_value(archive).unwrap(),
            transform,
            serde_json::to_value(publish).unwrap(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto, PostgreSQL and MongoDB: scripts/test provides them"]
async fn stage_handlers_chain_through_emulated_s3_and_secrets_manager() {
    let moto = Moto::start();
    let s3 = moto.bucket("reviews-lake").await;
    let lake: Arc<dyn Lake> = Arc::new(S3Lake::new(s3.clone(), "reviews-lake", ""));
    let (source, reader_url) = source_database().await;
    let first = synthetic(400, 7, "F");
    let loaded = load_reviews(&source, first, &LoadOptions::default())
        .await
        .unwrap();

    moto.secret("reviews/test/postgres", &reader_url).await;
    moto.secret("reviews/test/mongodb", &mongo_writer_uri())
        .await;
    let secrets = SecretsClient::new(moto.secrets_manager());
    let secret =
        |what, kind, id: &str| Arc::new(Secret::from_manager(what, kind, secrets.clone(), id));
    let chain = Chain {
        lake: lake.clone(),
        // The source is written just before each execution: no safety lag.
        extract: ExtractFunction::new(
            lake.clone(),
            secret("pg", SecretKind::Postgres, "reviews/test/postgres"),
        )
        .with_root_cert(test_ca())
        .with_safety_lag(Duration::ZERO),
        archive: ArchiveFunction::new(
            lake.clone(),
            secret("mongo", SecretKind::Mongo, "reviews/test/mongodb"),
        ),
        transform: TransformFunction::new(lake.clone()),
        score: ScoreFunction::new(
            lake.clone(),
            Scorer::new(
                Arc::new(KeywordClassifier::default()),
                ScoreWeights::default(),
            ),
        ),
        publish: PublishFunction::new(lake.clone()),
    };

    // First execution: everything in the source.
    let (extract, archive, transform, publish) = chain.execute("exec-1").await;
    assert_eq!(extract["run_id"], "2026-11-29-exec-1");
    assert_eq!(extract["rows"], loaded.inserted);
    assert_eq!(extract["incremental"], false);
    assert!(extract["watermark"].is_string());
    assert_eq!(archive["archived_runs"], json!(["2026-11-29-exec-1"]));
    assert_eq!(archive["documents"], loaded.inserted);
    let (cleaned, rejected) = (
        transform["cleaned"].as_u64().unwrap(),
        transform["rejected"].as_u64().unwrap(),
    );
    assert_eq!(cleaned + rejected, loaded.inserted);
    assert!(rejected > 0, "the synthetic source has invalid rows");
    assert_eq!(transform["changed"], 8);
    assert_eq!(publish["rows"], cleaned);
    assert_eq!(
        publish["manifest_key"],
        "curated/run=2026-11-29-exec-1/_manifest.json"
    );

    // The objects are in the emulated bucket.
    let keys: Vec<String> = s3
        .list_objects_v2()
        .bucket("reviews-lake")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    for prefix in [
        "raw/run=2026-11-29-exec-1/",
        "cleaned/run=2026-11-29-exec-1/",
        "curated/run=2026-11-29-exec-1/",
        "rejects/run=2026-11-29-exec-1/",
        "curated/_latest.json",
        "state/lease.json",
        "state/archived/run=2026-11-29-exec-1.json",
    ] {
        assert!(
            keys.iter().any(|k| k.starts_with(prefix)),
            "{prefix} missing in {keys:?}"
        );
    }

    // Second execution after new rows: only those are extracted, the published dataset still
    // holds every review (the earlier cleaned rows are carried over).
    let more = load_reviews(&source, synthetic(50, 8, "S"), &LoadOptions::default())
        .await
        .unwrap();
    let (extract2, archive2, transform2, publish2) = chain.execute("exec-2").await;
    assert_eq!(extract2["rows"], more.inserted);
    assert_eq!(extract2["incremental"], true);
    assert_eq!(archive2["archived_runs"], json!(["2026-11-29-exec-2"]));
    assert_eq!(publish2["changes"]["previous"], cleaned);
    let cleaned2 = transform2["cleaned"].as_u64().unwrap();
    assert_eq!(publish2["rows"].as_u64().unwrap(), cleaned + cleaned2);
    let live = reviews_stages::publish::live_manifest(chain.lake.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.run_id.to_string(), "2026-11-29-exec-2");
    // The watermark moved with the commit, to where exec-2's extract ended.
    assert_eq!(
        live.watermark.as_ref(),
        extract2["watermark"].as_str().map(str::to_owned).as_ref()
    );
    assert_eq!(publish2["status"], "published");

    // A re-run of the same execution rewrites the same objects: same checksum.
    let (_, _, _, again) = chain.execute("exec-2").await;
    assert_eq!(again["checksum"], publish2["checksum"]);
    assert_eq!(again["status"], "already_live");

    // A second execution while another holds the lease: it ends with lease_held and writes
    // nothing; the holder goes on.
    reviews_stages::begin_run(
        chain.lake.as_ref(),
        &reviews_lake::RunId::parse("holder").unwrap(),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    let held = chain
        .extract
        .handle(json!({"execution_name": "exec-3", "start_time": "2026-11-29T07:00:00.000Z"}))
        .await
        .unwrap();
    assert_eq!(
        held.status,
        reviews_extract_function::ExtractStatus::LeaseHeld
    );
    assert_eq!(held.lease_holder.unwrap().as_str(), "holder");
    assert!(
        chain
            .lake
            .list("raw/run=2026-11-29-exec-3/")
            .await
            .unwrap()
            .is_empty()
    );
    // The failure path gives a lease back.
    chain
        .publish
        .handle(json!({"release_lease": "holder"}))
        .await
        .unwrap();
    let (extract4, ..) = chain.execute("exec-4").await;
    assert_eq!(extract4["status"], "extracted");
}

/// The PostgreSQL password is rotated while the extract function is warm (its secret cached
/// for an hour): the next invocation's login is refused, the function reads the secret again
/// and goes on, with no failed execution. A secret that is simply wrong is still a fatal error,
/// after one fresh read, not a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto, PostgreSQL and MongoDB: scripts/test provides them"]
async fn a_rotated_password_is_read_again_when_the_login_is_refused() {
    let moto = Moto::start();
    let s3 = moto.bucket("reviews-rotation").await;
    let lake: Arc<dyn Lake> = Arc::new(S3Lake::new(s3, "reviews-rotation", ""));
    let admin = PgConfig::new(&postgres_admin_url()).unwrap();
    let client = admin.connect().await.unwrap();
    let db = "t_rotation";
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await
        .unwrap();
    let cfg = SetupConfig {
        database: db.to_owned(),
        owner_role: format!("{db}_owner"),
        reader_role: format!("{db}_reader"),
        reader_password: "pw-before-rotation".to_owned(),
    };
    setup(&admin, &cfg).await.unwrap();
    load_reviews(
        &admin.with_database(db),
        synthetic(60, 3, "R"),
        &LoadOptions::default(),
    )
    .await
    .unwrap();
    let secret_value = |pw: &str| {
        let mut v: Value = serde_json::from_str(&rds_secret(&admin, &cfg.reader_role, pw)).unwrap();
        v["dbname"] = json!(db);
        v.to_string()
    };
    moto.secret(
        "reviews/rotating/postgres",
        &secret_value("pw-before-rotation"),
    )
    .await;
    let secret = Arc::new(
        Secret::from_manager(
            "pg",
            SecretKind::Postgres,
            SecretsClient::new(moto.secrets_manager()),
            "reviews/rotating/postgres",
        )
        .with_ttl(Duration::from_secs(3600)),
    );
    let extract = ExtractFunction::new(lake.clone(), secret.clone())
        .with_root_cert(test_ca())
        .with_safety_lag(Duration::ZERO);
    let publish = PublishFunction::new(lake.clone());
    let run = |n: u32| json!({"execution_name": format!("rot-{n}"), "start_time": "2026-12-04T06:00:00Z"});

    let first = extract.handle(run(1)).await.unwrap();
    assert_eq!(first.output.rows, 60);
    // Let the lease go (as the state machine's failure path does), so the next run may start.
    publish
        .handle(json!({"release_lease": first.output.run_id.as_str()}))
        .await
        .unwrap();

    // Rotation, as Secrets Manager's rotation does it: the database first, then the secret.
    client
        .batch_execute(&format!(
            "ALTER ROLE {} PASSWORD 'pw-after-rotation'",
            cfg.reader_role
        ))
        .await
        .unwrap();
    moto.secrets_manager()
        .put_secret_value()
        .secret_id("reviews/rotating/postgres")
        .secret_string(secret_value("pw-after-rotation"))
        .send()
        .await
        .unwrap();
    assert!(
        secret.get().await.unwrap().contains("pw-before-rotation"),
        "the value is still the cached one: the TTL has not passed"
    );
    let second = extract.handle(run(2)).await.unwrap();
    assert_eq!(
        second.status,
        reviews_extract_function::ExtractStatus::Extracted
    );
    assert_eq!(
        second.output.rows, 60,
        "a full extract: nothing was committed before"
    );
    assert!(secret.get().await.unwrap().contains("pw-after-rotation"));
    publish
        .handle(json!({"release_lease": second.output.run_id.as_str()}))
        .await
        .unwrap();

    // A password that is wrong in the secret too: fatal, after one fresh read.
    moto.secrets_manager()
        .put_secret_value()
        .secret_id("reviews/rotating/postgres")
        .secret_string(secret_value("not-the-password"))
        .send()
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "ALTER ROLE {} PASSWORD 'yet-another'",
            cfg.reader_role
        ))
        .await
        .unwrap();
    let err = extract.handle(run(3)).await.unwrap_err();
    assert_eq!(err.error_type(), "FatalError", "{err}");
    assert!(err.to_string().contains("password"), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto, PostgreSQL and MongoDB: scripts/test provides them"]
async fn handler_errors_carry_the_state_machine_error_types() {
    let moto = Moto::start();
    let s3 = moto.bucket("reviews-errors").await;
    let lake: Arc<dyn Lake> = Arc::new(S3Lake::new(s3, "reviews-errors", ""));
    let secrets = SecretsClient::new(moto.secrets_manager());
    let start = json!({"execution_name": "e", "start_time": "2026-11-29T06:00:00Z"});

    // A secret that does not exist: fatal, and the message names it.
    let extract = ExtractFunction::new(
        lake.clone(),
        Arc::new(Secret::from_manager(
            "pg",
            SecretKind::Postgres,
            secrets.clone(),
            "reviews/missing",
        )),
    );
    let err = extract.handle(start.clone()).await.unwrap_err();
    assert_eq!(err.error_type(), "FatalError", "{err}");
    assert!(err.to_string().contains("reviews/missing"), "{err}");

    // PostgreSQL not listening: retryable, and the password is not in the message.
    let port = reviews_testkit::free_port();
    moto.secret(
        "reviews/down/postgres",
        &format!("postgres://etl_reader:s3cret-pw@127.0.0.1:{port}/amazonreviews"),
    )
    .await;
    let extract = ExtractFunction::new(
        lake.clone(),
        Arc::new(Secret::from_manager(
            "pg",
            SecretKind::Postgres,
            secrets.clone(),
            "reviews/down/postgres",
        )),
    )
    .with_root_cert(test_ca());
    let err = extract.handle(start.clone()).await.unwrap_err();
    assert_eq!(err.error_type(), "RetryableError", "{err}");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");

    // MongoDB not listening: retryable (the state machine then defers the archive).
    moto.secret(
        "reviews/down/mongodb",
        &format!("mongodb://etl_writer:s3cret-pw@127.0.0.1:{port}/reviews_archive?serverSelectionTimeoutMS=500"),
    )
    .await;
    let archive = ArchiveFunction::new(
        lake.clone(),
        Arc::new(Secret::from_manager(
            "mongo",
            SecretKind::Mongo,
            secrets.clone(),
            "reviews/down/mongodb",
        )),
    );
    let started = std::time::Instant::now();
    let err = archive.handle(json!({"run_id": "r1"})).await.unwrap_err();
    assert_eq!(err.error_type(), "RetryableError", "{err}");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // Malformed payloads: fatal, naming the field.
    let transform = TransformFunction::new(lake.clone());
    let err = transform.handle(json!({"run_id": "r1"})).await.unwrap_err();
    assert_eq!(err.error_type(), "FatalError");
    assert!(err.to_string().contains("raw_keys"), "{err}");
    let publish = PublishFunction::new(lake.clone());
    let err = publish
        .handle(json!({"run_id": "../etc"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "FatalError");
    // A run that was never transformed: fatal (a retry cannot fix it).
    let err = publish.handle(json!({"run_id": "r1"})).await.unwrap_err();
    assert_eq!(err.error_type(), "FatalError", "{err}");
    assert!(err.to_string().contains("no plan"), "{err}");
    // A bucket of a run that planned none: fatal.
    let score = ScoreFunction::new(
        lake.clone(),
        Scorer::new(
            Arc::new(KeywordClassifier::default()),
            ScoreWeights::default(),
        ),
    );
    let err = score
        .handle(json!({"run_id": "r1", "bucket": 3}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "FatalError", "{err}");
    // Input of a missing raw object: fatal.
    let err = transform
        .handle(json!({"run_id": "r1", "raw_keys": ["raw/run=r1/part-00000.parquet"]}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "FatalError", "{err}");
}

/// The MongoDB password is rotated while the archive function is warm (client built, secret
/// cached for an hour): the next invocation's login is refused, the function reads the secret
/// again, rebuilds the client and archives, with no failed execution. A secret that stays wrong
/// is a fatal error after one fresh read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto, PostgreSQL and MongoDB: scripts/test provides them"]
async fn a_rotated_mongodb_password_is_read_again_when_the_login_is_refused() {
    use mongodb::bson::doc;

    let moto = Moto::start();
    let s3 = moto.bucket("reviews-mongo-rotation").await;
    let lake: Arc<dyn Lake> = Arc::new(S3Lake::new(s3, "reviews-mongo-rotation", ""));
    let admin = mongodb::Client::with_uri_str(reviews_testkit::mongo_admin_uri())
        .await
        .unwrap();
    let users = admin.database("admin");
    let user = "rotating_writer";
    let _ = users.run_command(doc! { "dropUser": user }).await;
    users
        .run_command(doc! {
            "createUser": user,
            "pwd": "mongo-pw-before",
            "roles": [{ "role": "readWrite", "db": "reviews_archive" }],
        })
        .await
        .unwrap();
    let writer = mongodb::options::ClientOptions::parse(mongo_writer_uri())
        .await
        .unwrap();
    let host = writer.hosts[0].to_string();
    // Idle pooled connections are closed after 100 ms: the next invocation opens (and
    // authenticates) a new one, as a Lambda container thawed hours later does.
    let secret_value = |pw: &str| {
        format!("mongodb://{user}:{pw}@{host}/reviews_archive?authSource=admin&maxIdleTimeMS=100")
    };
    let id = "reviews/rotating/mongodb";
    moto.secret(id, &secret_value("mongo-pw-before")).await;
    let secret = Arc::new(
        Secret::from_manager(
            "mongo",
            SecretKind::Mongo,
            SecretsClient::new(moto.secrets_manager()),
            id,
        )
        .with_ttl(Duration::from_secs(3600)),
    );
    let archive = ArchiveFunction::new(lake.clone(), secret.clone())
        .with_server_selection_timeout(Duration::from_secs(5));
    let raw = |run: &'static str, prefix: &'static str| {
        let lake = lake.clone();
        async move {
            reviews_stages::extract_rows(
                lake,
                &reviews_lake::RunId::parse(run).unwrap(),
                synthetic(20, 7, prefix).into_iter().map(Ok::<_, String>),
                &reviews_stages::NoProgress,
                None,
            )
            .await
            .unwrap();
        }
    };

    raw("mrot-1", "MROT1").await;
    let first = archive.handle(json!({"run_id": "mrot-1"})).await.unwrap();
    assert_eq!(first.documents, 20);

    // Rotation, as Secrets Manager's rotation does it: the database first, then the secret.
    users
        .run_command(doc! { "updateUser": user, "pwd": "mongo-pw-after" })
        .await
        .unwrap();
    moto.secrets_manager()
        .put_secret_value()
        .secret_id(id)
        .secret_string(secret_value("mongo-pw-after"))
        .send()
        .await
        .unwrap();
    assert!(
        secret.get().await.unwrap().contains("mongo-pw-before"),
        "the value is still the cached one: the TTL has not passed"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    raw("mrot-2", "MROT2").await;
    let second = archive.handle(json!({"run_id": "mrot-2"})).await.unwrap();
    assert_eq!(second.archived_runs.len(), 1, "{second:?}");
    assert_eq!(second.archived_runs[0].as_str(), "mrot-2");
    assert_eq!(second.documents, 20);
    assert!(secret.get().await.unwrap().contains("mongo-pw-after"));

    // Changed in the database only: one fresh read finds the same wrong value; fatal, no loop.
    users
        .run_command(doc! { "updateUser": user, "pwd": "mongo-pw-never-stored" })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    raw("mrot-3", "MROT3").await;
    let err = archive
        .handle(json!({"run_id": "mrot-3"}))
        .await
        .expect_err("the stored password is wrong");
    let text = format!("{err:?}");
    assert!(!err.is_retryable(), "{text}");
    assert!(text.to_lowercase().contains("auth"), "{text}");
    assert!(
        !text.contains("mongo-pw"),
        "no password in the error: {text}"
    );
    users.run_command(doc! { "dropUser": user }).await.unwrap();
}
