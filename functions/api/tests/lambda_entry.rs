//! The Lambda entry point: API Gateway HTTP API v2 request fixtures go through lambda_http's
//! adapter and the API router, exactly as in AWS, and come back as v2 responses.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use reviews_api::{ApiConfig, ReloadMode, router};
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_lake::{Lake, RunId};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::{NoProgress, RunOptions, Scorer, run_local};
use reviews_stores::LocalLake;
use serde_json::Value;

async fn invoke(app: &axum::Router, fixture: &str) -> (u16, Value, Value) {
    let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
    let payload: LambdaRequest =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut adapter: Adapter<'_, _, _> = Adapter::from(app.clone());
    let resp = adapter
        .call(LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    let v = serde_json::to_value(&resp).unwrap();
    let body: Value =
        serde_json::from_str(v["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
    (
        v["statusCode"].as_u64().unwrap() as u16,
        body,
        v["headers"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateway_v2_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let rows = SyntheticReviews::new(SyntheticConfig {
        reviews: 1_000,
        ..Default::default()
    });
    let scorer = Arc::new(Scorer::new(
        Arc::new(KeywordClassifier::default()),
        ScoreWeights::default(),
    ));
    let opts = RunOptions {
        run_id: RunId::parse("lambda").unwrap(),
        buckets: None,
        workers: 1,
        merge_previous: false,
        lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
    };
    run_local(
        lake.clone(),
        rows.map(Ok::<_, std::convert::Infallible>),
        scorer,
        &opts,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let holder = reviews_api::start(lake, Duration::from_secs(30)).await;
    let app = router(
        holder,
        &ApiConfig {
            cors_origin: Some("https://shop.example".into()),
            reload: ReloadMode::OnRequest,
            storefront: false,
        },
    );

    let (s, b, h) = invoke(&app, "health.json").await;
    assert_eq!(s, 200);
    assert_eq!(b["run_id"], "lambda");
    assert_eq!(h["access-control-allow-origin"], "https://shop.example");

    let (s, b, h) = invoke(&app, "top_reviews.json").await;
    assert_eq!(s, 200, "{b}");
    assert!(
        h["content-type"]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(b["product_id"], "B000000000");
    assert_eq!(b["reviews"].as_array().unwrap().len(), 3);

    for (fixture, status, code) in [
        ("bad_limit.json", 400, "bad_request"),
        ("unknown_product.json", 404, "not_found"),
        ("unknown_path.json", 404, "not_found"),
        ("post.json", 405, "method_not_allowed"),
    ] {
        let (s, b, _) = invoke(&app, fixture).await;
        assert_eq!(s, status, "{fixture}: {b}");
        assert_eq!(b["error"]["code"], code, "{fixture}");
    }
}
