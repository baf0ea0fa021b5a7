//! Arbitrary method, path, query, headers and body into the API router (`reviews_api::router`),
//! through `tower::ServiceExt::oneshot` on a current-thread runtime. Two routers, built once:
//! one serving a small in-memory curated dataset (made by the real pipeline from 300 synthetic
//! reviews), one with no dataset. Invariants: no panic; the dataset router never answers 5xx;
//! the empty one answers no 5xx but 503; every 4xx body is a JSON error
//! `{"error": {"code", "message"}}` with a JSON content type, and a 503 body is JSON too (a
//! HEAD answer has no body, so only its status is checked).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use reviews_api::{ApiConfig, IndexHolder, ReloadMode, router};
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_lake::{Lake, RunId};
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::{NoProgress, RunOptions, Scorer, run_local};
use reviews_stores::LocalLake;
use tower::ServiceExt;

struct Fixture {
    rt: tokio::runtime::Runtime,
    with_data: Router,
    empty: Router,
    product_ids: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(build_fixture);

fn build_fixture() -> Fixture {
    // The pipeline's stages use block_in_place, so the dataset is built on a multi-thread
    // runtime; requests then run on a current-thread one.
    let dir = std::env::temp_dir().join(format!("reviews-fuzz-http-{}", std::process::id()));
    let build_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let config = ApiConfig {
        cors_origin: Some("https://shop.example".into()),
        reload: ReloadMode::Background,
        storefront: true,
    };
    let (with_data, product_ids) = build_rt.block_on(async {
        let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(&dir));
        let rows: Vec<_> = SyntheticReviews::new(SyntheticConfig {
            reviews: 300,
            seed: 7,
            ..Default::default()
        })
        .collect();
        let scorer = Arc::new(Scorer::new(
            Arc::new(KeywordClassifier::default()),
            ScoreWeights::default(),
        ));
        let opts = RunOptions {
            run_id: RunId::parse("fuzz").expect("run id"),
            buckets: Some(4),
            workers: 1,
            merge_previous: false,
            lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
        };
        run_local(
            lake.clone(),
            rows.into_iter().map(Ok::<_, std::convert::Infallible>),
            scorer,
            &opts,
            Arc::new(NoProgress),
        )
        .await
        .expect("pipeline run");
        // Every bucket and the listing loaded once into memory: with no watcher the router
        // never reads the lake again, so the folder can go.
        let holder = reviews_api::start(lake, Duration::from_secs(365 * 86_400)).await;
        let index = holder.current().expect("dataset loaded");
        let listing = holder.directory(&index).await.expect("product listing");
        for p in &listing.products {
            holder
                .bucket(&index, &p.product_id)
                .await
                .expect("bucket loads");
        }
        let ids: Vec<String> = listing
            .page(0, 5)
            .iter()
            .map(|p| p.product_id.clone())
            .collect();
        (router(holder, &config), ids)
    });
    assert!(!product_ids.is_empty(), "the dataset has products");
    drop(build_rt);
    let _ = std::fs::remove_dir_all(&dir);
    let no_lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.join("absent")));
    let empty = router(
        Arc::new(IndexHolder::new(no_lake, Duration::from_secs(365 * 86_400))),
        &config,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    Fixture {
        rt,
        with_data,
        empty,
        product_ids,
    }
}

/// A request from bytes, written like HTTP/1.1 without the version:
///
/// ```text
/// [!]METHOD TARGET
/// Name: value
/// ...
///
/// body
/// ```
///
/// A leading `!` sends it to the router with no dataset. `$0`..`$9` in the target stand for
/// the dataset's product ids, so the fuzzer reaches real products. Bytes of the target that are
/// not printable ASCII (space, controls, UTF-8) are percent-encoded, as a client sends them. What `http` itself refuses
/// (an invalid method, URI or header) never reaches the router and is skipped.
struct Parsed {
    no_dataset: bool,
    request: Request<Body>,
}

fn parse(data: &[u8], product_ids: &[String]) -> Option<Parsed> {
    let (no_dataset, data) = match data.strip_prefix(b"!") {
        Some(rest) => (true, rest),
        None => (false, data),
    };
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next()?;
    let space = first.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&first[..space]).ok()?;
    let mut target = String::new();
    let raw_target = &first[space + 1..];
    let mut i = 0;
    while i < raw_target.len() {
        let b = raw_target[i];
        if b == b'$' && i + 1 < raw_target.len() && raw_target[i + 1].is_ascii_digit() {
            let n = usize::from(raw_target[i + 1] - b'0');
            target.push_str(&product_ids[n % product_ids.len()]);
            i += 2;
            continue;
        }
        if b.is_ascii_graphic() {
            target.push(char::from(b));
        } else {
            target.push_str(&format!("%{b:02X}"));
        }
        i += 1;
    }
    let uri: axum::http::Uri = target.parse().ok()?;
    let mut builder = Request::builder().method(method).uri(uri);
    for line in lines.take(16) {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
        builder = builder.header(name, value);
    }
    let request = builder.body(Body::from(body.to_vec())).ok()?;
    Some(Parsed {
        no_dataset,
        request,
    })
}

/// Run one fuzz input through the checks (panics on a violated invariant).
pub fn check(data: &[u8]) {
    let fx = &*FIXTURE;
    let Some(Parsed {
        no_dataset,
        request: req,
    }) = parse(data, &fx.product_ids)
    else {
        return;
    };
    let is_head = req.method() == Method::HEAD;
    let described = format!("{} {}", req.method(), req.uri());
    let app = if no_dataset { &fx.empty } else { &fx.with_data };
    fx.rt.block_on(async {
        let resp = app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        if no_dataset {
            assert!(
                !status.is_server_error() || status.as_u16() == 503,
                "{described} -> {status} without a dataset"
            );
        } else {
            assert!(!status.is_server_error(), "{described} -> {status}");
        }
        if status.is_client_error() || status.is_server_error() {
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .expect("body");
            if !is_head {
                assert!(
                    content_type.starts_with("application/json"),
                    "{described} -> {status} with content type {content_type:?}"
                );
                let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "{described} -> {status}: body is not JSON ({e}): {:?}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
                // 503 from /health is the health document; every other error is an error body.
                if status.is_client_error() {
                    assert!(
                        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                        "{described} -> {status}: not a JSON error: {body}"
                    );
                }
            }
        }
    });
}
