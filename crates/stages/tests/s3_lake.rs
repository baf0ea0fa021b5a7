//! The S3 lake against a real S3 API: moto's server on loopback, started by the test.
//! The same stages run end to end with S3 as the lake.

use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_lake::{Lake, LakeError, RunId, layout};
use reviews_ports::Classified;
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::publish::live_manifest;
use reviews_stages::{NoProgress, RunOptions, Scorer, run_local};
use reviews_stores::S3Lake;
use reviews_testkit::Moto;

async fn s3_lake(moto: &Moto, bucket: &str) -> S3Lake {
    S3Lake::new(moto.bucket(bucket).await, bucket, "lake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (S3, Secrets Manager): scripts/test installs it"]
async fn s3_lake_operations_and_a_full_run() {
    let moto = Moto::start();
    let s3 = s3_lake(&moto, "reviews-test").await;
    let lake: Arc<dyn Lake> = Arc::new(s3.clone());

    lake.put("a/run=1/x.txt", bytes::Bytes::from_static(b"one"))
        .await
        .unwrap();
    lake.put("a/run=1/y.txt", bytes::Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(&lake.get("a/run=1/x.txt").await.unwrap()[..], b"one");
    assert_eq!(lake.size("a/run=1/y.txt").await.unwrap(), Some(3));
    assert_eq!(lake.size("a/none").await.unwrap(), None);
    assert_eq!(
        lake.list("a/run=1/").await.unwrap(),
        vec!["a/run=1/x.txt", "a/run=1/y.txt"]
    );
    assert!(matches!(
        lake.get("a/none").await,
        Err(LakeError::NotFound(_))
    ));
    lake.delete("a/run=1/x.txt").await.unwrap();
    assert_eq!(lake.list("a/").await.unwrap(), vec!["a/run=1/y.txt"]);
    // Keys live under the lake's prefix in the bucket.
    let raw = s3
        .client()
        .list_objects_v2()
        .bucket("reviews-test")
        .send()
        .await
        .unwrap();
    assert!(
        raw.contents()
            .iter()
            .all(|o| o.key().unwrap().starts_with("lake/"))
    );

    let scorer = Arc::new(Scorer::new(
        Arc::new(KeywordClassifier::default()),
        ScoreWeights::default(),
    ));
    let opts = RunOptions {
        run_id: RunId::parse("s3run").unwrap(),
        buckets: Some(4),
        workers: 2,
        merge_previous: false,
        lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
    };
    let rows = SyntheticReviews::new(SyntheticConfig {
        reviews: 1_500,
        ..Default::default()
    })
    .map(Ok::<_, std::convert::Infallible>);
    let s = run_local(lake.clone(), rows, scorer, &opts, Arc::new(NoProgress))
        .await
        .unwrap();
    assert!(s.accounted);
    assert_eq!(s.cleaned + s.rejected, 1_500);
    let live = live_manifest(lake.as_ref()).await.unwrap().unwrap();
    assert_eq!(live.run_id.as_str(), "s3run");
    for k in &live.keys {
        assert!(lake.size(k).await.unwrap().unwrap() > 0);
    }
    // The query listing names the live files by their s3:// URIs (what Athena's table reads).
    let listing = lake.get(reviews_stages::athena::SYMLINK_KEY).await.unwrap();
    let expected: String = live
        .keys
        .iter()
        .map(|k| format!("s3://reviews-test/lake/{k}\n"))
        .collect();
    assert_eq!(std::str::from_utf8(&listing).unwrap(), expected);
    assert!(
        lake.size(&layout::part_rejects_key(&opts.run_id, 0))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_s3_is_a_retryable_error() {
    let port = reviews_testkit::free_port();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    let lake = S3Lake::new(aws_sdk_s3::Client::from_conf(config), "nobucket", "");
    let err = lake.get("x").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let stage_err = reviews_stages::StageError::from(err);
    assert_eq!(stage_err.error_type(), "RetryableError");
}

/// S3 conditional writes (`If-None-Match: *`, `If-Match: <etag>`) as the commit point, the
/// lease and the erased list use them, against moto's S3 API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (S3, Secrets Manager): scripts/test installs it"]
async fn s3_conditional_writes_refuse_a_lost_race() {
    use reviews_lake::state::{self, CommitOutcome, LeaseOutcome};
    use reviews_lake::{Manifest, PutCondition};

    let moto = Moto::start();
    let lake = s3_lake(&moto, "reviews-cas").await;
    let v1 = lake
        .put_if("state/x.json", "1".into(), &PutCondition::Absent)
        .await
        .unwrap();
    assert!(
        matches!(
            lake.put_if("state/x.json", "again".into(), &PutCondition::Absent)
                .await,
            Err(LakeError::Conflict { .. })
        ),
        "If-None-Match: * on an existing object is refused"
    );
    let v2 = lake
        .put_if(
            "state/x.json",
            "2".into(),
            &PutCondition::Matches(v1.clone()),
        )
        .await
        .unwrap();
    assert_ne!(v1, v2);
    assert!(
        matches!(
            lake.put_if("state/x.json", "3".into(), &PutCondition::Matches(v1))
                .await,
            Err(LakeError::Conflict { .. })
        ),
        "If-Match on a stale ETag is refused"
    );
    let (body, v) = lake.get_versioned("state/x.json").await.unwrap().unwrap();
    assert_eq!((&body[..], v), (&b"2"[..], v2));

    // The state documents on top of it: two runs built on the same commit, one wins.
    let snapshot = |run: &str, base_sequence: u64| Manifest {
        dataset: "curated".into(),
        schema_version: 1,
        run_id: RunId::parse(run).unwrap(),
        keys: vec![],
        rows: 1,
        products: 1,
        checksum: format!("sum-{run}"),
        part_checksums: vec![],
        topics: vec![],
        created_at: chrono::Utc::now(),
        sequence: 0,
        base_sequence,
        watermark: None,
        erased_buyers: 0,
        buckets: 0,
        bucket_files: vec![],
    };
    assert!(matches!(
        state::commit(&lake, &snapshot("a", 0)).await.unwrap(),
        CommitOutcome::Committed(m) if m.sequence == 1
    ));
    assert!(matches!(
        state::commit(&lake, &snapshot("b", 1)).await.unwrap(),
        CommitOutcome::Committed(m) if m.sequence == 2
    ));
    assert!(matches!(
        state::commit(&lake, &snapshot("c", 1)).await.unwrap(),
        CommitOutcome::Stale { .. }
    ));
    let hour = chrono::Duration::hours(1);
    let now = chrono::Utc::now();
    let run = |r: &str| RunId::parse(r).unwrap();
    assert!(matches!(
        state::acquire_lease(&lake, &run("a"), hour, now)
            .await
            .unwrap(),
        LeaseOutcome::Acquired(_)
    ));
    assert!(matches!(
        state::acquire_lease(&lake, &run("b"), hour, now)
            .await
            .unwrap(),
        LeaseOutcome::Held(_)
    ));
    assert!(state::add_erased_buyer(&lake, "B1").await.unwrap());
    assert!(!state::add_erased_buyer(&lake, "B1").await.unwrap());
    assert!(state::add_erased_buyer(&lake, "B2").await.unwrap());
    assert_eq!(state::read_erased_buyers(&lake).await.unwrap().len(), 2);
}
