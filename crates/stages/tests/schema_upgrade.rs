//! A lake whose live snapshot holds curated files of an earlier schema version: the next run
//! rewrites every bucket in the current version (never a snapshot of mixed files, which an
//! analytics table could not read with one type per column), reusing the topic scores.

use std::sync::Arc;

use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::schema::{CURATED_SCHEMA_ID, CURATED_SCHEMA_VERSION};
use reviews_domain::score::ScoreWeights;
use reviews_lake::parquet_io::{Dataset, parquet_info};
use reviews_lake::{Lake, PutCondition, RunId, state};
use reviews_stages::{NoProgress, RunOptions, RunSummary, Scorer, run_local};
use reviews_stores::LocalLake;
use reviews_testkit::synthetic;

async fn run(lake: &Arc<dyn Lake>, id: &str, seed: u64, n: u64, incremental: bool) -> RunSummary {
    let options = RunOptions {
        run_id: RunId::parse(id).unwrap(),
        buckets: Some(4),
        workers: 2,
        merge_previous: incremental,
        lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
    };
    let scorer = Arc::new(
        Scorer::new(
            Arc::new(KeywordClassifier::default()),
            ScoreWeights::default(),
        )
        .with_classifier_id("keywords"),
    );
    let s = run_local(
        lake.clone(),
        synthetic(n, seed, "U")
            .into_iter()
            .map(Ok::<_, std::convert::Infallible>),
        scorer,
        &options,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert!(s.accounted, "{s:?}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_an_earlier_curated_version_is_rewritten_whole_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    run(&lake, "u1", 1, 300, false).await;
    // As a release before the current curated version left it.
    let (mut live, version) = state::read_pointer(lake.as_ref()).await.unwrap().unwrap();
    assert_eq!(live.schema_version, CURATED_SCHEMA_VERSION);
    live.schema_version = CURATED_SCHEMA_VERSION - 1;
    state::write_if(
        lake.as_ref(),
        state::POINTER,
        &live,
        &PutCondition::Matches(version),
    )
    .await
    .unwrap();

    // A small change, which alone would rewrite one bucket or two.
    let s = run(&lake, "u2", 1, 3, true).await;
    let why = s.full_pass.clone().unwrap_or_default();
    assert!(why.contains("schema version"), "{s:?}");
    assert_eq!(s.buckets_written, u64::from(s.buckets), "{s:?}");
    assert_eq!(
        s.encoded, s.changes.new,
        "only the new texts are classified; the others keep their topic scores: {s:?}"
    );
    assert_eq!(s.reused, s.changes.carried, "{s:?}");
    let live = state::read_pointer(lake.as_ref()).await.unwrap().unwrap().0;
    assert_eq!(live.schema_version, CURATED_SCHEMA_VERSION);
    assert_eq!(live.rows, s.changes.total);
    for f in &live.bucket_files {
        assert_eq!(f.run_id.as_str(), "u2", "{f:?}");
        let info = parquet_info(Dataset::Curated, lake.get(&f.curated_key).await.unwrap()).unwrap();
        assert_eq!(info.schema_id.as_deref(), Some(CURATED_SCHEMA_ID));
    }
    // The next run is incremental again.
    let s = run(&lake, "u3", 9, 3, true).await;
    assert_eq!(s.full_pass, None, "{s:?}");
}
