//! The fast tier: the extract, archive, transform, score and publish steps chained with the
//! payloads the state machine builds, on the in-memory lake, with an in-memory change feed as
//! the source and an in-memory archive. No server, emulator, model or disk: `cargo xtask
//! test-fast` passes on a fresh clone. The same chain against S3 (moto), PostgreSQL and
//! MongoDB is `handlers.rs`; against LocalStack's Step Functions, `localstack/e2e.sh`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reviews_domain::RawReview;
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_extract_function::{ExtractFunction, FeedProvider};
use reviews_lake::{Lake, RunId, state};
use reviews_lambda::FunctionError;
use reviews_ports::{ChangeFeed, ErrorClass};
use reviews_publish_function::PublishFunction;
use reviews_score_function::ScoreFunction;
use reviews_stages::archive::archive;
use reviews_stages::{Scorer, StageError, begin_run};
use reviews_stores::MemoryLake;
use reviews_testkit::{MemoryArchive, MemoryFeed, synthetic};
use reviews_transform_function::TransformFunction;
use serde_json::{Value, json};

/// The extract function's feed: always the same in-memory one (no credentials to refresh).
struct Feeds(Arc<MemoryFeed>);

#[async_trait]
impl FeedProvider for Feeds {
    async fn feed(&self, _fresh: bool) -> Result<Arc<dyn ChangeFeed>, FunctionError> {
        Ok(self.0.clone())
    }
}

struct Chain {
    lake: Arc<dyn Lake>,
    source: Arc<MemoryFeed>,
    archive: MemoryArchive,
    extract: ExtractFunction<Feeds>,
    transform: TransformFunction,
    score: ScoreFunction,
    publish: PublishFunction,
}

/// What one run's steps returned.
struct Run {
    extract: Value,
    plan: Value,
    publish: Value,
}

impl Chain {
    fn new() -> Self {
        let lake: Arc<dyn Lake> = Arc::new(MemoryLake::new());
        let source = Arc::new(MemoryFeed::new());
        let scorer = Scorer::new(
            Arc::new(KeywordClassifier::default()),
            ScoreWeights::default(),
        );
        Self {
            extract: ExtractFunction::with_feeds(lake.clone(), Feeds(source.clone()))
                .with_lease_ttl(Duration::from_secs(600)),
            transform: TransformFunction::new(lake.clone()),
            score: ScoreFunction::new(lake.clone(), scorer),
            publish: PublishFunction::new(lake.clone()),
            archive: MemoryArchive::new(),
            source,
            lake,
        }
    }

    /// The steps as the state machine runs them, from the extract handler to publish.
    async fn run(&self, run: &str) -> Run {
        let extract = self.extract.handle(json!({"run_id": run})).await.unwrap();
        let extract = serde_json::to_value(extract).unwrap();
        assert_eq!(extract["status"], "extracted", "{extract}");
        let run = RunId::parse(run).unwrap();
        let archived = archive(self.lake.as_ref(), &self.archive, &run)
            .await
            .unwrap();
        assert_eq!(archived.archived_runs.last(), Some(&run));
        let raw_keys = extract["raw_keys"].as_array().unwrap();
        for (part, raw_key) in raw_keys.iter().enumerate() {
            let routed = self
                .transform
                .handle(json!({"run_id": run, "part": part, "raw_key": raw_key, "buckets": 4}))
                .await
                .unwrap();
            assert_eq!(serde_json::to_value(routed).unwrap()["part"], part);
        }
        let plan = self
            .transform
            .handle(json!({
                "run_id": run,
                "raw_keys": raw_keys,
                "merge_previous": extract["incremental"],
                "deletions_key": extract["deletions_key"],
                "buckets": 4,
                "routed": true
            }))
            .await
            .unwrap();
        let plan = serde_json::to_value(plan).unwrap();
        assert_eq!(
            plan["rows_in"].as_u64().unwrap(),
            plan["cleaned"].as_u64().unwrap() + plan["rejected"].as_u64().unwrap()
        );
        let items: Vec<Value> = serde_json::from_slice(
            &self
                .lake
                .get(plan["items_key"].as_str().unwrap())
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(items.len() as u64, plan["changed"].as_u64().unwrap());
        for item in items {
            self.score.handle(item).await.unwrap();
        }
        let publish = self
            .publish
            .handle(json!({"run_id": run, "watermark": extract["watermark"]}))
            .await
            .unwrap();
        Run {
            extract,
            plan,
            publish: serde_json::to_value(publish).unwrap(),
        }
    }

    /// The live snapshot's row count, as the lake's state says.
    async fn live_rows(&self) -> u64 {
        state::read_pointer(self.lake.as_ref())
            .await
            .unwrap()
            .map(|(m, _)| m.rows)
            .unwrap_or(0)
    }
}

/// A valid review the synthetic generator would not write.
fn review(id: &str, product: &str, text: &str) -> RawReview {
    RawReview {
        review_id: Some(id.into()),
        product_id: Some(product.into()),
        product_title: Some("Kettle".into()),
        product_category: Some("Kitchen".into()),
        buyer_id: Some(format!("C{id}")),
        rating: Some("4".into()),
        title: Some("Solid".into()),
        text: Some(text.into()),
        helpful_votes: Some("1".into()),
        total_votes: Some("2".into()),
        verified_purchase: Some("Y".into()),
        review_date: Some("2026-11-30".into()),
        language: Some("en".into()),
        marketplace: Some("UK".into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_steps_chain_from_the_extract_handler_on_in_memory_ports() {
    let chain = Chain::new();
    // A source holds one row per review id: the generator's duplicate ids (an invalid row on
    // purpose) are one review at the source, written twice.
    let day1 = synthetic(400, 7, "day1-");
    let distinct = day1
        .iter()
        .map(|r| r.review_id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    chain.source.upsert(day1);
    chain.source.upsert([review(
        "RKEEP",
        "PKETTLE",
        "Boils fast and the lid seals well after months of daily use.",
    )]);
    let first = chain.run("2026-12-01-mem-1").await;
    assert_eq!(first.publish["status"], "published", "{}", first.publish);
    assert_eq!(first.extract["incremental"], false);
    assert_eq!(first.extract["rows"], distinct + 1);
    assert_eq!(first.publish["rows"], first.plan["cleaned"]);
    let rows_first = first.publish["rows"].as_u64().unwrap();
    assert!(rows_first > 300, "{}", first.publish);
    // Every raw row is archived, one document per review id.
    assert_eq!(chain.archive.documents().len() as u64, distinct + 1);

    // The next day: 100 new rows and one deletion at the source. Only the change is read,
    // merged with the live snapshot, and the deletion is counted.
    chain.source.upsert(synthetic(100, 8, "day2-"));
    chain.source.delete("RKEEP");
    let second = chain.run("2026-12-02-mem-2").await;
    assert_eq!(second.publish["status"], "published", "{}", second.publish);
    assert_eq!(second.extract["incremental"], true);
    assert_eq!(second.extract["rows"], 100);
    assert_eq!(second.extract["deleted"], 1);
    assert_eq!(
        second.publish["sequence"].as_u64(),
        first.publish["sequence"].as_u64().map(|s| s + 1)
    );
    assert_eq!(
        second.publish["rows"].as_u64().unwrap(),
        rows_first + second.plan["cleaned"].as_u64().unwrap() - 1,
        "{}",
        second.publish
    );

    // Publishing the live run again commits nothing new.
    let again = chain
        .publish
        .handle(json!({"run_id": "2026-12-02-mem-2", "watermark": second.extract["watermark"]}))
        .await
        .unwrap();
    let again = serde_json::to_value(again).unwrap();
    assert_eq!(again["status"], "already_live", "{again}");
    assert_eq!(again["rows"], second.publish["rows"]);

    // Nothing changed at the source: the next run reads nothing and keeps every row.
    let quiet = chain.run("2026-12-03-mem-3").await;
    assert_eq!(quiet.extract["rows"], 0, "{}", quiet.extract);
    assert_eq!(quiet.publish["rows"], second.publish["rows"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_failing_mid_read_loses_nothing_and_frees_the_lease() {
    let chain = Chain::new();
    chain.source.upsert(synthetic(300, 11, "a-"));
    let first = chain.run("2026-12-01-f-1").await;
    let live = chain.live_rows().await;
    assert_eq!(first.publish["rows"], live);

    chain.source.upsert(synthetic(200, 12, "b-"));
    chain.source.fail_next_read(ErrorClass::Retryable);
    let err = chain
        .extract
        .handle(json!({"run_id": "2026-12-02-f-2"}))
        .await
        .unwrap_err();
    // Retryable, as the source said: the state machine's backoff takes it from here.
    assert_eq!(err.error_type(), "RetryableError", "{err}");
    assert!(err.to_string().contains("connection dropped"), "{err}");
    assert_eq!(chain.live_rows().await, live, "nothing was committed");

    // The lease was given back: the next scheduled run goes, and reads the same rows.
    let next = chain.run("2026-12-03-f-3").await;
    assert_eq!(next.extract["rows"], 200, "{}", next.extract);
    assert_eq!(
        next.publish["rows"].as_u64().unwrap(),
        live + next.plan["cleaned"].as_u64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_execution_is_kept_out_by_the_lease() {
    let lake: Arc<dyn Lake> = Arc::new(MemoryLake::new());
    let first = RunId::parse("2026-12-01-a").unwrap();
    let second = RunId::parse("2026-12-01-b").unwrap();
    begin_run(lake.as_ref(), &first, Duration::from_secs(600))
        .await
        .unwrap();
    let err = begin_run(lake.as_ref(), &second, Duration::from_secs(600))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StageError::LeaseHeld { holder, .. } if *holder == first),
        "{err}"
    );
    // The failure path gives the lease back; then the other execution may run.
    let released = PublishFunction::new(lake.clone())
        .handle(json!({"release_lease": first.as_str()}))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(released).unwrap(),
        json!({"released": first})
    );
    begin_run(lake.as_ref(), &second, Duration::from_secs(600))
        .await
        .unwrap();
}
