//! The fast tier: the transform, score and publish handlers chained with the payloads the
//! state machine builds, on the in-memory lake, with raw/ written by the stages' own extract
//! from synthetic rows. No server, emulator, model or disk: `cargo test -p
//! reviews-functions-tests --test in_memory` passes on a fresh clone. The same chain against
//! S3 (moto), PostgreSQL and MongoDB is `handlers.rs`.

use std::sync::Arc;
use std::time::Duration;

use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_lake::{Lake, RunId};
use reviews_publish_function::PublishFunction;
use reviews_score_function::ScoreFunction;
use reviews_stages::{NoProgress, Scorer, StageError, begin_run, extract_rows};
use reviews_stores::MemoryLake;
use reviews_testkit::synthetic;
use reviews_transform_function::TransformFunction;
use serde_json::{Value, json};

struct Chain {
    lake: Arc<dyn Lake>,
    transform: TransformFunction,
    score: ScoreFunction,
    publish: PublishFunction,
}

impl Chain {
    fn new() -> Self {
        let lake: Arc<dyn Lake> = Arc::new(MemoryLake::new());
        let scorer = Scorer::new(
            Arc::new(KeywordClassifier::default()),
            ScoreWeights::default(),
        );
        Self {
            transform: TransformFunction::new(lake.clone()),
            score: ScoreFunction::new(lake.clone(), scorer),
            publish: PublishFunction::new(lake.clone()),
            lake,
        }
    }

    /// Extract (the lease, then raw/), then the stages as the state machine runs them;
    /// returns the plan's and publish's outputs.
    async fn run(&self, run: &str, rows: u64, seed: u64, incremental: bool) -> (Value, Value) {
        let run = RunId::parse(run).unwrap();
        begin_run(self.lake.as_ref(), &run, Duration::from_secs(600))
            .await
            .unwrap();
        let rows = synthetic(rows, seed, &format!("{run}-"));
        let extract = extract_rows(
            self.lake.clone(),
            &run,
            rows.into_iter().map(Ok::<_, String>),
            &NoProgress,
            None,
        )
        .await
        .unwrap();
        for (part, raw_key) in extract.raw_keys.iter().enumerate() {
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
                "raw_keys": extract.raw_keys,
                "merge_previous": incremental,
                "deletions_key": null,
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
            .handle(json!({"run_id": run, "watermark": null}))
            .await
            .unwrap();
        (plan, serde_json::to_value(publish).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stage_handlers_chain_on_the_in_memory_lake() {
    let chain = Chain::new();
    let (plan, first) = chain.run("2026-12-01-mem-1", 400, 7, false).await;
    assert_eq!(first["status"], "published", "{first}");
    assert_eq!(first["rows"], plan["cleaned"], "{first}");
    let rows_first = first["rows"].as_u64().unwrap();
    assert!(rows_first > 300, "{first}");

    // The next day: new rows only, merged with the live snapshot.
    let (plan2, second) = chain.run("2026-12-02-mem-2", 100, 8, true).await;
    assert_eq!(second["status"], "published", "{second}");
    assert_eq!(
        second["sequence"].as_u64(),
        first["sequence"].as_u64().map(|s| s + 1)
    );
    assert_eq!(
        second["rows"].as_u64().unwrap(),
        rows_first + plan2["cleaned"].as_u64().unwrap(),
        "{second}"
    );

    // Publishing the live run again commits nothing new.
    let again = chain
        .publish
        .handle(json!({"run_id": "2026-12-02-mem-2", "watermark": null}))
        .await
        .unwrap();
    let again = serde_json::to_value(again).unwrap();
    assert_eq!(again["status"], "already_live", "{again}");
    assert_eq!(again["rows"], second["rows"]);
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
