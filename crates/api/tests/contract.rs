//! Contract tests of every endpoint and error path, hot reload, and the buyer-identity
//! property, on a real curated dataset produced by the pipeline.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use reviews_api::{ApiConfig, IndexHolder, ReloadMode, router};
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_lake::{Lake, RunId, layout};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::{NoProgress, RunOptions, Scorer, run_local};
use reviews_stores::LocalLake;
use serde_json::Value;
use tower::ServiceExt;

async fn publish_run(lake: Arc<dyn Lake>, run: &str, reviews: u64, seed: u64) -> HashSet<String> {
    let rows: Vec<_> = SyntheticReviews::new(SyntheticConfig {
        reviews,
        seed,
        ..Default::default()
    })
    .collect();
    let buyers = rows.iter().filter_map(|r| r.buyer_id.clone()).collect();
    run_pipeline(lake, run, rows, false).await;
    buyers
}

/// One pipeline run over `rows`: a full load into 4 buckets, or the rows as changes to the
/// live snapshot (`merge_previous`).
async fn run_pipeline(
    lake: Arc<dyn Lake>,
    run: &str,
    rows: Vec<reviews_domain::RawReview>,
    merge_previous: bool,
) {
    let scorer = Arc::new(Scorer::new(
        Arc::new(KeywordClassifier::default()),
        ScoreWeights::default(),
    ));
    let opts = RunOptions {
        run_id: RunId::parse(run).unwrap(),
        buckets: (!merge_previous).then_some(4),
        workers: 2,
        merge_previous,
        lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
    };
    run_local(
        lake,
        rows.into_iter().map(Ok::<_, std::convert::Infallible>),
        scorer,
        &opts,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
}

async fn app_for(lake: Arc<dyn Lake>, cors: Option<&str>) -> (Router, Arc<IndexHolder>) {
    let holder = reviews_api::start(lake, Duration::from_secs(3600)).await;
    let cfg = ApiConfig {
        cors_origin: cors.map(str::to_owned),
        reload: ReloadMode::Background,
        storefront: true,
    };
    (router(holder.clone(), &cfg), holder)
}

async fn call(app: &Router, method: &str, uri: &str) -> (StatusCode, Value, axum::http::HeaderMap) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body, headers)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (s, b, h) = call(app, "GET", uri).await;
    if !uri.starts_with("/index") && uri != "/" {
        assert!(
            h.get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{uri} must answer JSON"
        );
    }
    (s, b)
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_and_error_path() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    publish_run(lake.clone(), "r1", 3_000, 1).await;
    let (app, _) = app_for(lake.clone(), Some("https://shop.example")).await;

    let (s, h) = get(&app, "/health").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["run_id"], "r1");
    assert!(h["rows"].as_u64().unwrap() > 2_500 && h["products"].as_u64().unwrap() > 100);

    let (s, t) = get(&app, "/topics").await;
    assert_eq!(s, StatusCode::OK);
    let topic_ids: Vec<&str> = t["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(topic_ids.contains(&"durability") && topic_ids.contains(&"off_topic"));

    let (s, p) = get(&app, "/products?page=1&per_page=10").await;
    assert_eq!(s, StatusCode::OK);
    let list = p["products"].as_array().unwrap();
    assert_eq!(list.len(), 10);
    let counts: Vec<u64> = list
        .iter()
        .map(|p| p["review_count"].as_u64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "most reviewed first"
    );
    assert_eq!(p["total"], h["products"]);
    let (_, last) = get(&app, "/products?page=100000&per_page=100").await;
    assert!(last["products"].as_array().unwrap().is_empty());
    for bad in [
        "/products?page=0",
        "/products?per_page=101",
        "/products?page=x",
        "/products?page=1&page=2",
    ] {
        let (s, b) = get(&app, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_code(&b), "bad_request");
    }

    let id = list[0]["product_id"].as_str().unwrap().to_owned();
    let (s, d) = get(&app, &format!("/products/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["review_count"], list[0]["review_count"]);
    let hist: u64 = d["rating_histogram"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(hist, d["review_count"].as_u64().unwrap());
    assert!(!d["topics"].as_array().unwrap().is_empty());

    let (s, top) = get(&app, &format!("/reviews/{id}/top")).await;
    assert_eq!(s, StatusCode::OK);
    let reviews = top["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 5, "default limit");
    let rel: Vec<f64> = reviews
        .iter()
        .map(|r| r["relevance"].as_f64().unwrap())
        .collect();
    assert!(
        rel.windows(2).all(|w| w[0] >= w[1]),
        "most relevant first: {rel:?}"
    );
    for field in [
        "review_id",
        "rating",
        "title",
        "text",
        "topics",
        "relevance",
        "helpful_votes",
        "verified_purchase",
        "review_date",
        "reasons",
    ] {
        assert!(reviews[0].get(field).is_some(), "missing {field}");
    }
    // Each review says why it is there, in a few words; the top ones have a reason.
    assert!(
        reviews.iter().all(|r| r["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| !x.as_str().unwrap().is_empty())),
        "{reviews:?}"
    );
    assert!(
        reviews
            .iter()
            .any(|r| !r["reasons"].as_array().unwrap().is_empty()),
        "no top review has a reason: {reviews:?}"
    );
    let (_, many) = get(&app, &format!("/reviews/{id}/top?limit=50")).await;
    assert_eq!(
        many["reviews"].as_array().unwrap().len() as u64,
        d["review_count"].as_u64().unwrap().min(50)
    );

    // Topic filter: only reviews about that topic.
    let t = d["topics"][0]["id"].as_str().unwrap();
    let (s, f) = get(&app, &format!("/reviews/{id}/top?limit=50&topic={t}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["topic"], t);
    let filtered = f["reviews"].as_array().unwrap();
    assert!(!filtered.is_empty());
    assert!(
        filtered
            .iter()
            .all(|r| r["topics"].as_array().unwrap().iter().any(|x| x["id"] == t))
    );

    for (uri, status) in [
        (format!("/reviews/{id}/top?limit=0"), 400),
        (format!("/reviews/{id}/top?limit=51"), 400),
        (format!("/reviews/{id}/top?limit=abc"), 400),
        (format!("/reviews/{id}/top?limit=-1"), 400),
        (format!("/reviews/{id}/top?topic=nonsense"), 400),
        ("/reviews/B0NOTTHERE1/top".to_owned(), 404),
        ("/products/B0NOTTHERE1".to_owned(), 404),
        ("/reviews/..%2F..%2Fetc%2Fpasswd/top".to_owned(), 400),
        ("/reviews/%27%20OR%201%3D1--/top".to_owned(), 400),
        (
            "/reviews/%3Cscript%3Ealert(1)%3C%2Fscript%3E/top".to_owned(),
            400,
        ),
        ("/reviews/%FF%FE/top".to_owned(), 400),
        (format!("/reviews/{}/top", "A".repeat(65)), 400),
        (
            format!("/reviews/{id}/top?limit=5&x={}", "y".repeat(5000)),
            414,
        ),
        ("/reviews".to_owned(), 404),
        ("/nope".to_owned(), 404),
        ("/reviews/B1/top/extra".to_owned(), 404),
    ] {
        let (s, b) = get(&app, &uri).await;
        assert_eq!(s.as_u16(), status, "{uri}: {b}");
        error_code(&b);
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let (s, b, _) = call(&app, method, "/health").await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(error_code(&b), "method_not_allowed");
    }

    // OpenAPI document generated from the code lists every endpoint.
    let (s, doc) = get(&app, "/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/health",
        "/topics",
        "/products",
        "/products/{product_id}",
        "/reviews/{product_id}/top",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }

    // CORS for the configured storefront origin, and the storefront itself.
    let req = Request::builder()
        .uri("/health")
        .header("origin", "https://shop.example")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let (s, page, h) = call(&app, "GET", "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.as_str().unwrap().contains("<html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dataset_means_503_json() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let (app, _) = app_for(lake, None).await;
    let (s, h) = get(&app, "/health").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h["status"], "unavailable");
    let reason = h["reason"].as_str().unwrap();
    assert!(reason.contains("no dataset has been published"), "{h}");
    assert!(
        !reason.contains("curated/"),
        "no object key in a client's message: {h}"
    );
    let (s, b) = get(&app, "/reviews/B1/top").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&b), "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_response_ever_contains_a_buyer_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let buyers = publish_run(lake.clone(), "p", 2_000, 7).await;
    assert!(buyers.len() > 100);
    let (app, holder) = app_for(lake, None).await;
    let index = holder.current().unwrap();
    let mut checked = 0;
    for page in 1.. {
        let (_, p) = get(&app, &format!("/products?page={page}&per_page=100")).await;
        let products = p["products"].as_array().unwrap().clone();
        if products.is_empty() {
            break;
        }
        for prod in products {
            let id = prod["product_id"].as_str().unwrap();
            for uri in [
                format!("/reviews/{id}/top?limit=50"),
                format!("/products/{id}"),
            ] {
                let (_, body) = get(&app, &uri).await;
                let text = body.to_string();
                assert!(!text.contains("buyer"), "{uri}");
                // Buyer ids look like C + 8 digits: no such token of the dataset appears.
                let bytes = text.as_bytes();
                for i in 0..bytes.len().saturating_sub(9) {
                    if bytes[i] == b'C' && bytes[i + 1..i + 9].iter().all(u8::is_ascii_digit) {
                        assert!(
                            !buyers.contains(&text[i..i + 9]),
                            "{uri} leaks {}",
                            &text[i..i + 9]
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked as u64, 2 * index.product_count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_switches_runs_and_refuses_a_corrupt_one() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    publish_run(lake.clone(), "first", 800, 1).await;
    let (app, holder) = app_for(lake.clone(), None).await;
    assert_eq!(get(&app, "/health").await.1["run_id"], "first");

    // Requests keep succeeding while a new run is published and loaded.
    let load = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..200 {
                let (s, _) = get(&app, "/products?per_page=5").await;
                assert_eq!(s, StatusCode::OK);
                ok += 1;
            }
            ok
        })
    };
    publish_run(lake.clone(), "second", 900, 2).await;
    assert!(holder.refresh().await, "the new run goes live");
    assert_eq!(load.await.unwrap(), 200);
    let (_, h) = get(&app, "/health").await;
    assert_eq!(h["run_id"], "second");
    assert!(h.get("last_reload_error").is_none());

    // A corrupt new dataset: the manifest points at a part whose bytes do not match.
    let third = RunId::parse("third").unwrap();
    let mut m =
        reviews_lake::Manifest::from_json(&lake.get(layout::LATEST_MANIFEST).await.unwrap())
            .unwrap();
    m.run_id = third.clone();
    m.keys = vec![layout::curated_bucket_key(&third, 0)];
    m.checksum = "0".repeat(64);
    lake.put(
        &m.keys[0],
        bytes::Bytes::from_static(b"PAR1 not really parquet"),
    )
    .await
    .unwrap();
    lake.put(layout::LATEST_MANIFEST, m.to_json().into())
        .await
        .unwrap();
    assert!(!holder.refresh().await);
    let (s, h) = get(&app, "/health").await;
    assert_eq!(s, StatusCode::OK, "still serving the last valid run");
    assert_eq!(h["run_id"], "second");
    assert_eq!(h["last_reload_error"]["run_id"], "third");
    let reason = h["last_reload_error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("invalid") && reason.contains("previous dataset is still served"),
        "{h}"
    );
    assert!(
        !reason.contains("curated/"),
        "no object key in a client's message: {h}"
    );

    // A manifest that is not JSON at all.
    lake.put(
        layout::LATEST_MANIFEST,
        bytes::Bytes::from_static(b"{not json"),
    )
    .await
    .unwrap();
    holder.refresh().await;
    assert_eq!(get(&app, "/health").await.1["run_id"], "second");
}

/// Every product of the live snapshot, by bucket.
async fn products_by_bucket(
    app: &Router,
    buckets: u32,
) -> std::collections::BTreeMap<u32, Vec<String>> {
    let mut out = std::collections::BTreeMap::<u32, Vec<String>>::new();
    for page in 1.. {
        let (s, p) = get(app, &format!("/products?page={page}&per_page=100")).await;
        assert_eq!(s, StatusCode::OK);
        let list = p["products"].as_array().unwrap().clone();
        if list.is_empty() {
            break;
        }
        for prod in list {
            let id = prod["product_id"].as_str().unwrap().to_owned();
            out.entry(layout::bucket_of(&id, buckets))
                .or_default()
                .push(id);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_fetched_on_first_use_once_and_within_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    publish_run(lake.clone(), "r1", 3_000, 3).await;
    let (app, holder) = app_for(lake.clone(), None).await;
    assert_eq!(
        holder.cache_stats().fetches,
        0,
        "start reads the manifest only"
    );
    let buckets = holder.current().unwrap().manifest.buckets;
    let by_bucket = products_by_bucket(&app, buckets).await;
    assert_eq!(by_bucket.len(), 4);
    assert_eq!(
        holder.cache_stats().fetches,
        0,
        "the listing reads the product directories, not the reviews"
    );

    let (b0, ids0) = by_bucket.iter().next().unwrap();
    assert!(ids0.len() >= 2, "bucket {b0}");
    let (s, _) = get(&app, &format!("/reviews/{}/top", ids0[0])).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(holder.cache_stats().fetches, 1);
    for uri in [
        format!("/reviews/{}/top?limit=50", ids0[1]),
        format!("/products/{}", ids0[1]),
        format!("/reviews/{}/top", ids0[0]),
    ] {
        assert_eq!(get(&app, &uri).await.0, StatusCode::OK, "{uri}");
    }
    assert_eq!(
        holder.cache_stats().fetches,
        1,
        "a bucket in memory is not fetched again"
    );
    for ids in by_bucket.values() {
        assert_eq!(
            get(&app, &format!("/reviews/{}/top", ids[0])).await.0,
            StatusCode::OK
        );
    }
    let all = holder.cache_stats();
    assert_eq!((all.fetches, all.buckets), (4, 4));

    // Room for about two of the four buckets: every answer is the same, the bound holds,
    // the least recently used bucket is fetched again.
    let bound = all.bytes / 2;
    let small = Arc::new(IndexHolder::with_cache(
        lake.clone(),
        Duration::from_secs(3600),
        bound,
    ));
    assert!(small.refresh().await);
    let small_app = router(
        small.clone(),
        &ApiConfig {
            cors_origin: None,
            reload: ReloadMode::Background,
            storefront: false,
        },
    );
    for _ in 0..2 {
        for ids in by_bucket.values() {
            let uri = format!("/reviews/{}/top?limit=50", ids[0]);
            let (s, body) = get(&small_app, &uri).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(body, get(&app, &uri).await.1, "{uri}");
            let st = small.cache_stats();
            assert!(st.bytes <= bound, "{st:?}");
        }
    }
    assert_eq!(
        small.cache_stats().fetches,
        8,
        "each bucket evicted before its next use"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_snapshot_fetches_only_the_buckets_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    publish_run(lake.clone(), "r1", 2_000, 5).await;
    let (app, holder) = app_for(lake.clone(), None).await;
    let buckets = holder.current().unwrap().manifest.buckets;
    let by_bucket = products_by_bucket(&app, buckets).await;
    for ids in by_bucket.values() {
        assert_eq!(
            get(&app, &format!("/reviews/{}/top", ids[0])).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(holder.cache_stats().fetches, 4);

    // One review edited at the source, published incrementally.
    let (changed_bucket, ids) = by_bucket.iter().next().unwrap();
    // The bucket's least reviewed product, so the edited review is among its top 50.
    let product = ids.last().unwrap().clone();
    let mut edited = SyntheticReviews::new(SyntheticConfig {
        reviews: 2_000,
        seed: 5,
        ..Default::default()
    })
    .find(|r| r.product_id.as_deref() == Some(product.as_str()))
    .unwrap();
    edited.text = Some("Edited after publication: the hinge broke within a week of use.".into());
    let edited_id = edited.review_id.clone().unwrap();
    run_pipeline(lake.clone(), "r2", vec![edited], true).await;
    assert!(holder.refresh().await);
    let live = holder.current().unwrap();
    assert_eq!(live.run_id(), "r2");
    let rewritten: Vec<u32> = live
        .manifest
        .bucket_files
        .iter()
        .filter(|f| f.run_id.as_str() == "r2")
        .map(|f| f.bucket)
        .collect();
    assert_eq!(rewritten, vec![*changed_bucket]);

    for ids in by_bucket.values() {
        assert_eq!(
            get(&app, &format!("/reviews/{}/top", ids[0])).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        holder.cache_stats().fetches,
        5,
        "only the rewritten bucket is fetched again"
    );
    let (_, top) = get(&app, &format!("/reviews/{product}/top?limit=50")).await;
    assert_eq!(top["run_id"], "r2");
    let served = top["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["review_id"] == edited_id.as_str())
        .unwrap()
        .clone();
    assert!(
        served["text"]
            .as_str()
            .unwrap()
            .starts_with("Edited after publication")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_bucket_is_a_503_for_its_products_only() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    publish_run(lake.clone(), "r1", 2_000, 9).await;
    let (app, holder) = app_for(lake.clone(), None).await;
    let snapshot = holder.current().unwrap();
    let by_bucket = products_by_bucket(&app, snapshot.manifest.buckets).await;
    let mut it = by_bucket.iter();
    let (damaged, damaged_ids) = it.next().unwrap();
    let (_, healthy_ids) = it.next().unwrap();
    let file = snapshot.manifest.bucket(*damaged).unwrap();
    lake.put(
        &file.curated_key,
        bytes::Bytes::from_static(b"PAR1 damaged"),
    )
    .await
    .unwrap();

    for uri in [
        format!("/reviews/{}/top", damaged_ids[0]),
        format!("/products/{}", damaged_ids[0]),
    ] {
        let (s, b) = get(&app, &uri).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(error_code(&b), "unavailable");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains("integrity check"), "{b}");
        assert!(
            !msg.contains("curated/") && !msg.contains("checksum"),
            "{b}"
        );
    }
    let (s, _) = get(&app, &format!("/reviews/{}/top", healthy_ids[0])).await;
    assert_eq!(s, StatusCode::OK, "the other buckets are served");
    assert_eq!(get(&app, "/health").await.0, StatusCode::OK);
}

/// In the Lambda mode a request starts the check of the manifest and is answered from the
/// current snapshot without waiting for it. A current-thread runtime makes that observable:
/// the spawned check cannot run before the request is answered.
#[tokio::test]
async fn on_request_the_refresh_runs_beside_the_request_not_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let publish = |run: &'static str, seed| {
        let lake = lake.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(publish_run(lake, run, 600, seed))
        })
        .join()
        .unwrap();
    };
    publish("first", 1);
    let holder = reviews_api::start(lake.clone(), Duration::ZERO).await;
    let app = router(
        holder.clone(),
        &ApiConfig {
            cors_origin: None,
            reload: ReloadMode::OnRequest,
            storefront: false,
        },
    );
    publish("second", 2);
    let (_, h) = get(&app, "/health").await;
    assert_eq!(h["run_id"], "first", "answered before the check ran");
    let mut seen = String::new();
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        seen = get(&app, "/health").await.1["run_id"]
            .as_str()
            .unwrap()
            .to_owned();
        if seen == "second" {
            break;
        }
    }
    assert_eq!(
        seen, "second",
        "the background check switched to the new snapshot"
    );
}
