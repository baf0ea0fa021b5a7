//! The query listing `curated/_athena/symlink.txt` follows the commits on a local lake: after
//! a publish it names exactly the live snapshot's files (spread over several runs' prefixes
//! once an incremental run leaves buckets unchanged), after a rollback the rolled-back run's,
//! and a publish that failed between its commit and the listing is repaired by its re-run.

use std::sync::Arc;

use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_lake::{Lake, Manifest, RunId, layout};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::athena::{SYMLINK_KEY, write_symlink_listing};
use reviews_stages::publish::{live_manifest, promote};
use reviews_stages::{NoProgress, PublishInput, PublishStatus, RunOptions, Scorer, run_local};
use reviews_stores::LocalLake;
use reviews_testkit::FaultyLake;

fn scorer() -> Arc<Scorer> {
    Arc::new(
        Scorer::new(
            Arc::new(KeywordClassifier::default()),
            ScoreWeights::default(),
        )
        .with_classifier_id("keywords"),
    )
}

fn synthetic(
    n: u64,
    seed: u64,
) -> impl Iterator<Item = Result<reviews_domain::RawReview, std::convert::Infallible>> + Send {
    SyntheticReviews::new(SyntheticConfig {
        reviews: n,
        seed,
        ..Default::default()
    })
    .map(Ok)
}

fn options(run: &str, merge_previous: bool) -> RunOptions {
    RunOptions {
        run_id: RunId::parse(run).unwrap(),
        buckets: Some(8),
        workers: 2,
        merge_previous,
        lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
    }
}

/// The lines of the listing.
async fn listing(lake: &dyn Lake) -> Vec<String> {
    let text = String::from_utf8(lake.get(SYMLINK_KEY).await.unwrap().to_vec()).unwrap();
    assert!(text.ends_with('\n'), "every line ends with a newline");
    text.lines().map(str::to_owned).collect()
}

/// What the listing must say for `manifest`: the absolute paths of its curated files.
fn expected(dir: &std::path::Path, manifest: &Manifest) -> Vec<String> {
    let root = std::path::absolute(dir).unwrap();
    manifest
        .bucket_files
        .iter()
        .map(|f| root.join(&f.curated_key).to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_follows_publish_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    run_local(
        lake.clone(),
        synthetic(2_000, 1),
        scorer(),
        &options("day1", false),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let day1 = live_manifest(lake.as_ref()).await.unwrap().unwrap();
    assert_eq!(day1.bucket_files.len(), 8);
    assert_eq!(listing(lake.as_ref()).await, expected(dir.path(), &day1));

    // An incremental run touching a few products: the listing mixes both runs' files.
    let few = SyntheticReviews::new(SyntheticConfig {
        reviews: 5,
        seed: 2,
        products: Some(2),
        ..Default::default()
    })
    .map(|mut r| {
        r.review_id = r.review_id.map(|id| format!("new-{id}"));
        Ok::<_, std::convert::Infallible>(r)
    });
    run_local(
        lake.clone(),
        few,
        scorer(),
        &options("day2", true),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let day2 = live_manifest(lake.as_ref()).await.unwrap().unwrap();
    assert_eq!(day2.run_id.as_str(), "day2");
    let runs: std::collections::BTreeSet<_> = day2
        .bucket_files
        .iter()
        .map(|f| f.run_id.as_str())
        .collect();
    assert_eq!(
        runs.into_iter().collect::<Vec<_>>(),
        ["day1", "day2"],
        "unchanged buckets keep day1's files"
    );
    let lines = listing(lake.as_ref()).await;
    assert_eq!(lines, expected(dir.path(), &day2));
    for line in &lines {
        assert!(std::path::Path::new(line).is_absolute() && std::path::Path::new(line).is_file());
    }

    // Rollback: the listing names day1's files again.
    promote(lake.as_ref(), &RunId::parse("day1").unwrap())
        .await
        .unwrap();
    assert_eq!(listing(lake.as_ref()).await, expected(dir.path(), &day1));

    // Nothing but the listing under curated/_athena/ (Athena reads every object there).
    assert_eq!(
        lake.list("curated/_athena/").await.unwrap(),
        vec![SYMLINK_KEY]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_failed_after_its_commit_is_repaired_by_its_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    run_local(
        lake.clone(),
        synthetic(800, 3),
        scorer(),
        &options("r0", false),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let r0 = live_manifest(lake.as_ref()).await.unwrap().unwrap();

    // The commit of r1 lands, the write of its listing fails (an S3 5xx).
    let faulty = Arc::new(FaultyLake::new(
        LocalLake::new(dir.path()),
        "curated/_athena/",
        1,
    ));
    let err = run_local(
        faulty.clone(),
        synthetic(1_000, 4),
        scorer(),
        &options("r1", false),
        Arc::new(NoProgress),
    )
    .await
    .expect_err("the listing's write fails");
    assert!(err.is_retryable(), "{err}");
    assert_eq!(faulty.failed_key().as_deref(), Some(SYMLINK_KEY));
    let r1 = live_manifest(lake.as_ref()).await.unwrap().unwrap();
    assert_eq!(r1.run_id.as_str(), "r1", "the commit happened");
    assert_eq!(
        listing(lake.as_ref()).await,
        expected(dir.path(), &r0),
        "the listing is still r0's"
    );

    // The retry of publish finds r1 live and writes its listing.
    let out = reviews_stages::publish(
        lake.clone(),
        &PublishInput {
            run_id: r1.run_id.clone(),
            expected_rows: Some(r1.rows),
            watermark: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(out.status, PublishStatus::AlreadyLive);
    assert_eq!(listing(lake.as_ref()).await, expected(dir.path(), &r1));
    // Idempotent: written again, the same bytes.
    let before = lake.get(SYMLINK_KEY).await.unwrap();
    write_symlink_listing(lake.as_ref()).await.unwrap();
    assert_eq!(lake.get(SYMLINK_KEY).await.unwrap(), before);
}

#[tokio::test]
async fn nothing_live_writes_no_listing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    assert!(write_symlink_listing(&lake).await.unwrap().is_none());
    assert_eq!(lake.size(SYMLINK_KEY).await.unwrap(), None);
    // A relative lake folder still lists absolute locations.
    let rel = LocalLake::new("some/lake");
    let loc = rel.location(&layout::curated_bucket_key(&RunId::parse("x").unwrap(), 3));
    let loc = loc.unwrap();
    assert!(std::path::Path::new(&loc).is_absolute(), "{loc}");
    assert!(loc.ends_with("some/lake/curated/run=x/bucket=00003.parquet"));
    assert!(rel.location("../escape").is_err());
}
