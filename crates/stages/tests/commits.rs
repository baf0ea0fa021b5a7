//! The lake's commits under failure and overlap, on the local lake with an incremental source
//! (a stand-in for the database: every change gets a sequence number, the watermark is the
//! last one read). Whatever happens to a run, once a later run commits, the live snapshot is
//! exactly what a full load of the source's current state gives: every live source row once,
//! in its latest version, deleted and invalidated reviews gone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use reviews_domain::RawReview;
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::schema::batch_to_curated;
use reviews_domain::score::ScoreWeights;
use reviews_lake::parquet_io::{Dataset, read_parquet};
use reviews_lake::state;
use reviews_lake::{Lake, RunId};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::extract::{extract_changes, extract_changes_in_parts};
use reviews_stages::publish::live_manifest;
use reviews_stages::{
    NoProgress, RoutePartInput, RunOptions, RunSummary, Scorer, StageError, TransformInput,
    begin_run, merge_buckets, plan_items, route, run_from_feed, transform,
};
use reviews_stores::LocalLake;
use reviews_testkit::{FaultyLake, MemoryFeed};

/// The source database: the in-memory change feed (every change gets a sequence number, the
/// watermark is the last one read).
type Source = MemoryFeed;

fn synthetic(n: u64, seed: u64, prefix: &str) -> Vec<RawReview> {
    SyntheticReviews::new(SyntheticConfig {
        reviews: n,
        seed,
        invalid_share: 0.03,
        ..Default::default()
    })
    .enumerate()
    .map(|(i, mut r)| {
        r.review_id = Some(format!("{prefix}{i:05}"));
        r
    })
    .collect()
}

/// Day 2's changes: new reviews, edits, edits that make a review invalid, deletions.
fn change_day(src: &Source, seed: u64, prefix: &str) {
    for r in synthetic(80, seed, prefix) {
        src.upsert([r]);
    }
    let ids: Vec<String> = src.rows().keys().cloned().collect();
    for (i, id) in ids.iter().enumerate().take(60) {
        let mut r = src.rows()[id].1.clone();
        match i % 4 {
            0 | 1 => r.text = Some(format!("Edited on {prefix}: sturdy and well made, {i}.")),
            2 => r.rating = Some("9".into()), // now invalid: must leave the dataset
            _ => {
                src.delete(id);
                continue;
            }
        }
        src.upsert([r]);
    }
}

fn scorer() -> Arc<Scorer> {
    Arc::new(
        Scorer::new(
            Arc::new(KeywordClassifier::default()),
            ScoreWeights::default(),
        )
        .with_classifier_id("keywords"),
    )
}

fn options(run: &str) -> RunOptions {
    RunOptions {
        run_id: RunId::parse(run).unwrap(),
        buckets: Some(4),
        workers: 2,
        merge_previous: false,
        lease_ttl: Duration::from_secs(3600),
    }
}

async fn run(
    lake: Arc<dyn Lake>,
    src: &Source,
    opts: &RunOptions,
) -> Result<RunSummary, StageError> {
    run_from_feed(lake, src, scorer(), opts, Arc::new(NoProgress)).await
}

/// The live snapshot as (review id -> (rating, text)), checking no review is there twice.
async fn live(lake: &dyn Lake) -> BTreeMap<String, (u8, String)> {
    let manifest = live_manifest(lake).await.unwrap().expect("a live snapshot");
    let mut out = BTreeMap::new();
    for key in &manifest.keys {
        for b in read_parquet(Dataset::Curated, lake.get(key).await.unwrap()).unwrap() {
            for r in batch_to_curated(&b).unwrap() {
                let dup = out.insert(r.review_id.clone(), (r.rating, r.text));
                assert!(dup.is_none(), "review {} published twice", r.review_id);
            }
        }
    }
    assert_eq!(manifest.rows, out.len() as u64, "manifest rows");
    out
}

/// What a full load of the source's current state publishes.
async fn expected(src: &Source) -> BTreeMap<String, (u8, String)> {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    run_from_feed(
        lake.clone(),
        src,
        scorer(),
        &options("full"),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    live(lake.as_ref()).await
}

/// A lake with day 1 committed (300 reviews) and the source as it was then.
async fn day_one() -> (tempfile::TempDir, Arc<dyn Lake>, Source) {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let src = Source::default();
    for r in synthetic(300, 1, "A") {
        src.upsert([r]);
    }
    let first = run(lake.clone(), &src, &options("d1")).await.unwrap();
    assert!(first.accounted);
    (dir, lake, src)
}

/// How far a run gets before its process dies.
#[derive(Debug, Clone, Copy)]
enum DiesAfter {
    Begin,
    Extract,
    Transform,
    Score,
}

/// Run the stages of `run` by hand up to `dies_after`, then abandon it (a killed process:
/// nothing is cleaned up, the lease stays taken until it expires).
async fn dying_run(lake: Arc<dyn Lake>, src: &Source, run: &str, dies_after: DiesAfter) {
    let run = RunId::parse(run).unwrap();
    begin_run(lake.as_ref(), &run, Duration::ZERO)
        .await
        .unwrap();
    if let DiesAfter::Begin = dies_after {
        return;
    }
    let out = extract_changes(lake.clone(), &run, src, None, &NoProgress)
        .await
        .unwrap();
    if let DiesAfter::Extract = dies_after {
        return;
    }
    let t = transform(
        lake.clone(),
        &TransformInput {
            run_id: run.clone(),
            raw_keys: out.raw_keys,
            merge_previous: true,
            deletions_key: out.deletions_key,
            buckets: Some(4),
            routed: false,
        },
        &NoProgress,
    )
    .await
    .unwrap();
    if let DiesAfter::Transform = dies_after {
        return;
    }
    let items = plan_items(lake.as_ref(), &t.run_id).await.unwrap();
    merge_buckets(lake, scorer(), &items, 2, Arc::new(NoProgress))
        .await
        .unwrap();
}

/// Publish what an abandoned run scored (the last step it did not get to).
async fn publish_scored(
    lake: Arc<dyn Lake>,
    run: &str,
    watermark: Option<&str>,
) -> Result<reviews_stages::PublishOutput, StageError> {
    let run = RunId::parse(run).unwrap();
    reviews_stages::publish(
        lake,
        &reviews_stages::PublishInput {
            run_id: run,
            expected_rows: None,
            watermark: watermark.map(str::to_owned),
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_at_any_stage_loses_nothing_once_the_next_run_commits() {
    let cases: [(&str, &'static str, usize); 5] = [
        ("extract", "raw/", 1),
        ("transform", "cleaned/", 2),
        ("rejects", "rejects/", 1),
        ("score", "curated/run=", 2),
        ("commit", "curated/_latest.json", 1),
    ];
    for (name, prefix, fail_at) in cases {
        let (dir, lake, src) = day_one().await;
        let live_before = lake
            .get(reviews_lake::layout::LATEST_MANIFEST)
            .await
            .unwrap();

        change_day(&src, 2, "B");
        let faulty: Arc<dyn Lake> =
            Arc::new(FaultyLake::new(LocalLake::new(dir.path()), prefix, fail_at));
        let err = run(faulty, &src, &options("d2")).await.unwrap_err();
        assert!(err.is_retryable(), "{name}: {err}");
        assert_eq!(
            lake.get(reviews_lake::layout::LATEST_MANIFEST)
                .await
                .unwrap(),
            live_before,
            "{name}: nothing committed"
        );

        // The next scheduled run (another run id), after more changes.
        change_day(&src, 3, "C");
        let next = run(lake.clone(), &src, &options("d3")).await.unwrap();
        assert!(next.accounted, "{name}: {:?}", next.changes);
        assert_eq!(live(lake.as_ref()).await, expected(&src).await, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_after_any_stage_loses_nothing_once_the_next_run_commits() {
    for dies_after in [
        DiesAfter::Begin,
        DiesAfter::Extract,
        DiesAfter::Transform,
        DiesAfter::Score,
    ] {
        let (_dir, lake, src) = day_one().await;
        change_day(&src, 2, "B");
        // Dies holding a lease that has expired by the next schedule.
        dying_run(lake.clone(), &src, "d2", dies_after).await;
        change_day(&src, 3, "C");
        let next = run(lake.clone(), &src, &options("d3")).await.unwrap();
        assert!(next.accounted, "{dies_after:?}: {:?}", next.changes);
        assert_eq!(
            live(lake.as_ref()).await,
            expected(&src).await,
            "{dies_after:?}"
        );
        // Every change of the dead run was read again: d3 started at d1's watermark.
        let base = state::run_base(
            lake.as_ref(),
            &RunId::parse("d3").unwrap(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(base.live_run, Some(RunId::parse("d1").unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_execution_while_one_holds_the_lease_changes_nothing() {
    let (_dir, lake, src) = day_one().await;
    change_day(&src, 2, "B");

    // Run "a" has started (holds the lease) when "b" is launched.
    begin_run(
        lake.as_ref(),
        &RunId::parse("a").unwrap(),
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let before: BTreeSet<String> = lake.list("").await.unwrap().into_iter().collect();
    let pointer = lake
        .get(reviews_lake::layout::LATEST_MANIFEST)
        .await
        .unwrap();
    let err = run(lake.clone(), &src, &options("b")).await.unwrap_err();
    assert!(
        matches!(&err, StageError::LeaseHeld { holder, .. } if holder.as_str() == "a"),
        "{err}"
    );
    let after: BTreeSet<String> = lake.list("").await.unwrap().into_iter().collect();
    assert_eq!(before, after, "the refused execution wrote nothing");
    assert_eq!(
        lake.get(reviews_lake::layout::LATEST_MANIFEST)
            .await
            .unwrap(),
        pointer
    );

    // "a" finishes; everything is there.
    run(lake.clone(), &src, &options("a")).await.unwrap();
    assert_eq!(live(lake.as_ref()).await, expected(&src).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_executions_at_once_one_wins_and_the_next_run_has_everything() {
    let (_dir, lake, src) = day_one().await;
    change_day(&src, 2, "B");
    let (opts_a, opts_b) = (options("a"), options("b"));
    let (a, b) = tokio::join!(
        run(lake.clone(), &src, &opts_a),
        run(lake.clone(), &src, &opts_b)
    );
    let outcomes = [&a, &b];
    assert!(
        outcomes.iter().any(|r| r.is_ok()),
        "one of them published: {a:?} {b:?}"
    );
    for r in outcomes {
        if let Err(e) = r {
            assert!(matches!(e, StageError::LeaseHeld { .. }), "{e}");
        }
    }
    assert_eq!(live(lake.as_ref()).await, expected(&src).await);
    change_day(&src, 3, "C");
    run(lake.clone(), &src, &options("c")).await.unwrap();
    assert_eq!(live(lake.as_ref()).await, expected(&src).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_expired_lease_cannot_publish_over_a_newer_commit() {
    let (_dir, lake, src) = day_one().await;
    change_day(&src, 2, "B");
    // "slow" builds everything on d1, but its lease expires before it publishes.
    dying_run(lake.clone(), &src, "slow", DiesAfter::Score).await;
    change_day(&src, 3, "C");
    run(lake.clone(), &src, &options("fast")).await.unwrap();
    let committed = live_manifest(lake.as_ref()).await.unwrap().unwrap();

    let err = publish_scored(lake.clone(), "slow", Some("999"))
        .await
        .unwrap_err();
    assert!(matches!(err, StageError::Conflict(_)), "{err}");
    assert_eq!(
        live_manifest(lake.as_ref()).await.unwrap().unwrap(),
        committed,
        "the pointer did not move backwards"
    );
    assert_eq!(live(lake.as_ref()).await, expected(&src).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_short_carried_file_stops_the_run_and_commits_nothing() {
    for damage in ["missing", "short"] {
        let (_dir, lake, src) = day_one().await;
        let pointer = lake
            .get(reviews_lake::layout::LATEST_MANIFEST)
            .await
            .unwrap();
        let snapshot = live_manifest(lake.as_ref()).await.unwrap().unwrap();
        let files = &snapshot.bucket_files;
        let biggest = files.iter().max_by_key(|p| p.rows).unwrap();
        let smallest = files.iter().min_by_key(|p| p.rows).unwrap();
        assert!(smallest.rows < biggest.rows, "{files:?}");
        let victim = &biggest.cleaned_key;
        match damage {
            "missing" => lake.delete(victim).await.unwrap(),
            // A valid Parquet file with fewer rows than its merge wrote.
            _ => {
                let bytes = lake.get(&smallest.cleaned_key).await.unwrap();
                lake.put(victim, bytes).await.unwrap();
            }
        }
        change_day(&src, 2, "B");
        let err = run(lake.clone(), &src, &options("d2")).await.unwrap_err();
        assert!(matches!(err, StageError::Validation(_)), "{damage}: {err}");
        assert!(err.to_string().contains(victim.as_str()), "{damage}: {err}");
        assert_eq!(
            lake.get(reviews_lake::layout::LATEST_MANIFEST)
                .await
                .unwrap(),
            pointer,
            "{damage}: nothing committed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_transformed_before_an_erasure_is_not_published() {
    let (_dir, lake, src) = day_one().await;
    change_day(&src, 2, "B");
    // "late" is transformed and scored, then a buyer is erased, then it tries to publish.
    dying_run(lake.clone(), &src, "late", DiesAfter::Score).await;
    let buyer = src
        .rows()
        .values()
        .find_map(|(_, r)| r.buyer_id.clone())
        .unwrap();
    assert!(
        state::add_erased_buyer(lake.as_ref(), &buyer)
            .await
            .unwrap()
    );
    let err = publish_scored(lake.clone(), "late", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StageError::Conflict(m) if m.contains("erasure")),
        "{err}"
    );
    assert_eq!(
        live_manifest(lake.as_ref())
            .await
            .unwrap()
            .unwrap()
            .run_id
            .as_str(),
        "d1"
    );
}

/// Day 1 with `buckets` buckets, then one product's reviews change: only that product's
/// bucket is rewritten, the model sees only the changed texts, and the snapshot equals a
/// full load. Then a review moves to a product of another bucket: it leaves its old bucket
/// (the source reports the move as a deletion under the old product), no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_change_rewrites_only_its_buckets_and_reuses_unchanged_topics() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let src = Source::default();
    for r in synthetic(400, 7, "A") {
        src.upsert([r]);
    }
    let mut opts = options("d1");
    opts.buckets = Some(16);
    let first = run(lake.clone(), &src, &opts).await.unwrap();
    assert_eq!((first.buckets, first.reused), (16, 0));
    let d1 = live_manifest(lake.as_ref()).await.unwrap().unwrap();
    assert!(d1.bucket_files.len() > 8, "{}", d1.bucket_files.len());

    // Edit two valid reviews of one product, add one, delete one.
    let published = live(lake.as_ref()).await;
    let (victim_product, ids): (String, Vec<String>) = {
        let of = |p: &str| -> Vec<String> {
            src.rows()
                .iter()
                .filter(|(id, (_, r))| {
                    r.product_id.as_deref() == Some(p) && published.contains_key(*id)
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        src.rows()
            .values()
            .filter_map(|(_, r)| r.product_id.clone())
            .map(|p| {
                let ids = of(&p);
                (p, ids)
            })
            .find(|(_, ids)| ids.len() >= 2)
            .unwrap()
    };
    assert!(ids.len() >= 2, "{ids:?}");
    for id in ids.iter().take(2) {
        let mut r = src.rows()[id].1.clone();
        r.text = Some(format!("Edited: the hinge broke after a week, {id}."));
        src.upsert([r]);
    }
    let mut fresh = src.rows()[&ids[0]].1.clone();
    fresh.review_id = Some("NEW00001".into());
    fresh.text = Some("Brand new: arrived quickly and works as described.".into());
    src.upsert([fresh]);
    let gone = src
        .rows()
        .iter()
        .find(|(id, (_, r))| {
            r.product_id.as_deref() != Some(victim_product.as_str())
                && !ids.contains(id)
                && published.contains_key(*id)
        })
        .map(|(id, _)| id.clone())
        .unwrap();
    src.delete(&gone);

    let mut opts = options("d2");
    opts.buckets = None; // the live snapshot's count
    let second = run(lake.clone(), &src, &opts).await.unwrap();
    assert!(second.accounted, "{:?}", second.changes);
    assert_eq!(second.buckets, 16);
    assert!(second.buckets_written <= 2, "{}", second.buckets_written);
    assert_eq!(second.full_pass, None);
    assert_eq!(second.encoded, 3, "two edited texts and one new review");
    assert!(second.reused > 0);
    assert_eq!((second.changes.updated, second.changes.new), (2, 1));
    assert_eq!(second.changes.deleted, 1);
    assert_eq!(live(lake.as_ref()).await, expected(&src).await);
    let d2 = live_manifest(lake.as_ref()).await.unwrap().unwrap();
    let from_d1 = d2
        .bucket_files
        .iter()
        .filter(|f| f.run_id.as_str() == "d1")
        .count();
    assert_eq!(
        from_d1,
        d2.bucket_files.len() - second.buckets_written as usize
    );
    let untouched = d2
        .bucket_files
        .iter()
        .find(|f| f.run_id.as_str() == "d1")
        .unwrap();
    assert_eq!(
        d1.bucket(untouched.bucket),
        Some(untouched),
        "referenced, not copied"
    );

    // A review moves to a product in another bucket.
    let (moved, other_product) = {
        let rows = src.rows();
        let (id, (_, r)) = rows
            .iter()
            .find(|(id, _)| *id != &ids[0] && published.contains_key(*id))
            .unwrap();
        let here = reviews_lake::layout::bucket_of(r.product_id.as_deref().unwrap(), 16);
        let other = src
            .rows()
            .values()
            .filter_map(|(_, o)| o.product_id.clone())
            .find(|p| reviews_lake::layout::bucket_of(p, 16) != here)
            .unwrap();
        (id.clone(), other)
    };
    let mut r = src.rows()[&moved].1.clone();
    r.product_id = Some(other_product);
    src.upsert([r]);
    let mut opts = options("d3");
    opts.buckets = None;
    let third = run(lake.clone(), &src, &opts).await.unwrap();
    assert_eq!(
        third.changes.deleted, 1,
        "left its old bucket: {:?}",
        third.changes
    );
    assert!(third.accounted, "{:?}", third.changes);
    assert_eq!(live(lake.as_ref()).await, expected(&src).await);
}

/// The state machine routes each raw part in a task of its own (a Map: in any order, at the
/// same time), then plans from the parts' records: the snapshot is the one that routing
/// them together gives. Planning before every part is routed, or after an erasure landed
/// mid-way, is refused and commits nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_routed_apart_publish_what_routing_them_together_does() {
    let (_dir, lake, src) = day_one().await;
    change_day(&src, 2, "B");
    let run = RunId::parse("d2").unwrap();
    begin_run(lake.as_ref(), &run, Duration::from_secs(3600))
        .await
        .unwrap();
    let extracted = extract_changes_in_parts(lake.clone(), &run, &src, None, &NoProgress, 25)
        .await
        .unwrap();
    let watermark = extracted.watermark.clone();
    assert!(extracted.raw_keys.len() >= 4, "{:?}", extracted.raw_keys);
    let plan_input = TransformInput {
        run_id: run.clone(),
        raw_keys: extracted.raw_keys.clone(),
        merge_previous: true,
        deletions_key: extracted.deletions_key.clone(),
        buckets: None,
        routed: true,
    };
    let route_all = || async {
        let tasks: Vec<_> = extracted
            .raw_keys
            .iter()
            .enumerate()
            .rev()
            .map(|(part, key)| {
                let lake = lake.clone();
                let input = RoutePartInput {
                    run_id: run.clone(),
                    part,
                    raw_key: key.clone(),
                    buckets: None,
                };
                tokio::spawn(async move { route(lake, &input, &NoProgress).await })
            })
            .collect();
        let mut rows = 0;
        for t in tasks {
            rows += t.await.unwrap().unwrap().rows_in;
        }
        rows
    };

    let err = transform(lake.clone(), &plan_input, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("was not routed"), "{err}");

    assert_eq!(route_all().await, extracted.rows);
    state::add_erased_buyer(lake.as_ref(), "someone-new")
        .await
        .unwrap();
    let err = transform(lake.clone(), &plan_input, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("an erasure landed"), "{err}");

    // Routed again (the next attempt), with the list as it now is.
    route_all().await;
    let planned = transform(lake.clone(), &plan_input, &NoProgress)
        .await
        .unwrap();
    assert_eq!(planned.buckets, 4, "the base snapshot's count");
    assert_eq!(planned.rows_in, extracted.rows);
    let items = plan_items(lake.as_ref(), &run).await.unwrap();
    assert_eq!(items.len() as u64, planned.changed);
    merge_buckets(lake.clone(), scorer(), &items, 2, Arc::new(NoProgress))
        .await
        .unwrap();
    publish_scored(lake.clone(), "d2", watermark.as_deref())
        .await
        .unwrap();
    assert_eq!(live(lake.as_ref()).await, expected(&src).await);
}
