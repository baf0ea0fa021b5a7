//! No data loss under injected faults: a lake write that fails once in the middle of a stage
//! (at every kind of object the pipeline writes), then a re-run of the same run id. After
//! recovery every extracted review is in cleaned/ or rejects/ exactly once, and the live
//! pointer never names a run that did not validate.

use std::collections::HashSet;
use std::sync::Arc;

use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::schema::batch_to_reviews;
use reviews_domain::score::ScoreWeights;
use reviews_lake::parquet_io::{Dataset, read_parquet};
use reviews_lake::{Lake, RunId, layout};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::publish::live_manifest;
use reviews_stages::{NoProgress, RunOptions, Scorer, run_local};
use reviews_stores::LocalLake;
use reviews_testkit::FaultyLake;

fn source(
    n: u64,
) -> impl Iterator<Item = Result<reviews_domain::RawReview, std::convert::Infallible>> + Send {
    SyntheticReviews::new(SyntheticConfig {
        reviews: n,
        seed: 77,
        invalid_share: 0.03,
        ..Default::default()
    })
    .map(Ok)
}

fn scorer() -> Arc<Scorer> {
    Arc::new(Scorer::new(
        Arc::new(KeywordClassifier::default()),
        ScoreWeights::default(),
    ))
}

fn options(run: &str) -> RunOptions {
    RunOptions {
        run_id: RunId::parse(run).unwrap(),
        buckets: Some(4),
        workers: 2,
        merge_previous: false,
        lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
    }
}

/// Review ids in the run's cleaned buckets (each exactly once) and in its rejects file.
async fn accounted(lake: &dyn Lake, run: &RunId) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    for key in lake
        .list(&layout::run_prefix(layout::CLEANED, run))
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.contains("/bucket=") && k.ends_with(".parquet") && !k.contains("/changes/"))
    {
        for b in read_parquet(Dataset::Cleaned, lake.get(&key).await.unwrap()).unwrap() {
            ids.extend(
                batch_to_reviews(&b)
                    .unwrap()
                    .into_iter()
                    .map(|r| r.review_id),
            );
        }
    }
    let rejects = lake.get(&layout::part_rejects_key(run, 0)).await.unwrap();
    let rejected = csv::Reader::from_reader(&rejects[..]).records().count();
    (ids, rejected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failing_once_mid_stage_loses_nothing_after_a_rerun() {
    const ROWS: u64 = 2_000;
    // Each object kind the pipeline writes, failing at its first or a later write.
    let cases: [(&str, &'static str, usize); 5] = [
        ("raw", "raw/", 1),
        ("cleaned", "cleaned/", 3),
        ("rejects", "rejects/", 1),
        ("curated", "curated/run=", 2),
        ("pointer", "curated/_latest.json", 1),
    ];
    for (name, prefix, fail_at) in cases {
        let dir = tempfile::tempdir().unwrap();
        // A first, good run: it is live when the faulty run starts.
        let good: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
        run_local(
            good.clone(),
            source(500),
            scorer(),
            &options("good"),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();

        let faulty = Arc::new(FaultyLake::new(LocalLake::new(dir.path()), prefix, fail_at));
        let err = run_local(
            faulty.clone(),
            source(ROWS),
            scorer(),
            &options("faulty"),
            Arc::new(NoProgress),
        )
        .await
        .expect_err("the injected fault fails the run");
        assert!(
            err.is_retryable(),
            "{name}: a transient write failure is retryable: {err}"
        );
        assert!(faulty.failed_key().is_some(), "{name}: the fault fired");
        // Readers still see the good run, whole.
        let live = live_manifest(good.as_ref()).await.unwrap().unwrap();
        assert_eq!(
            live.run_id.as_str(),
            "good",
            "{name}: the pointer did not move"
        );
        for key in &live.keys {
            assert!(
                good.size(key).await.unwrap().is_some(),
                "{name}: {key} of the live run exists"
            );
        }

        // Recovery: the same run id again, on the healthy lake.
        let s = run_local(
            good.clone(),
            source(ROWS),
            scorer(),
            &options("faulty"),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
        assert!(s.accounted, "{name}");
        let run = RunId::parse("faulty").unwrap();
        let (ids, rejected) = accounted(good.as_ref(), &run).await;
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{name}: no review twice in cleaned/"
        );
        assert_eq!(
            ids.len() as u64 + rejected as u64,
            ROWS,
            "{name}: every row exactly once"
        );
        assert_eq!(
            live_manifest(good.as_ref()).await.unwrap().unwrap().run_id,
            run
        );
    }
}
