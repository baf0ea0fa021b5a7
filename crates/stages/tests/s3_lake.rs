//! The S3 lake against a real S3 API: moto's server on loopback, started by the test.
//! The same stages run end to end with S3 as the lake.

use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_lake::{Lake, LakeError, RunId, S3Lake, layout};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::publish::live_manifest;
use reviews_stages::{NoProgress, RunOptions, Scorer, run_local};
use reviews_testkit::Moto;

async fn s3_lake(moto: &Moto, bucket: &str) -> S3Lake {
    S3Lake::new(moto.bucket(bucket).await, bucket, "lake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        shard_rows: Some(400),
        workers: 2,
        merge_previous: false,
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
    assert!(
        lake.size(&layout::rejects_key(&opts.run_id))
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
