//! Routes, request validation and response shapes. The OpenAPI document is generated from
//! these types and handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use reviews_domain::clean::is_plausible_id;
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::{OpenApi, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::holder::IndexHolder;
use crate::index::{BucketIndex, LoadError, Product, Snapshot};
use crate::storefront;

/// Most reviews one request may ask for.
pub const MAX_LIMIT: usize = 50;
pub const DEFAULT_LIMIT: usize = 5;
pub const MAX_PER_PAGE: usize = 100;
pub const DEFAULT_PER_PAGE: usize = 24;
/// Longest request target (path + query) accepted.
pub const MAX_URI_BYTES: usize = 4096;

/// How the API notices a newly published dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadMode {
    /// A background task checks the manifest (local server).
    Background,
    /// Requests check the manifest when the last check is old enough (Lambda, where nothing
    /// runs between invocations).
    OnRequest,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Origin allowed by CORS (the storefront's), `*` for any, none for same-origin only.
    pub cors_origin: Option<String>,
    pub reload: ReloadMode,
    /// Serve the storefront page at `/`.
    pub storefront: bool,
}

#[derive(Clone)]
struct AppState {
    holder: Arc<IndexHolder>,
}

#[derive(Serialize, ToSchema)]
pub struct HealthBody {
    /// "ok" or "unavailable".
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub products: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<String>,
    /// Buckets of reviews held in memory (fetched from the lake on first use).
    pub cache: CacheBody,
    /// Why no dataset is served (with status "unavailable").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The last dataset that failed to load while this one kept being served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reload_error: Option<ReloadErrorBody>,
}

#[derive(Serialize, ToSchema)]
pub struct CacheBody {
    pub buckets: usize,
    pub bytes: usize,
    pub capacity_bytes: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ReloadErrorBody {
    pub run_id: Option<String>,
    pub reason: String,
    pub at: String,
}

#[derive(Serialize, ToSchema)]
pub struct TopicBody {
    pub id: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TopicsBody {
    pub topics: Vec<TopicBody>,
}

#[derive(Serialize, ToSchema)]
pub struct ProductSummary {
    pub product_id: String,
    pub title: String,
    pub category: String,
    pub review_count: u32,
    pub average_rating: f64,
}

#[derive(Serialize, ToSchema)]
pub struct ProductsPage {
    pub page: usize,
    pub per_page: usize,
    pub total: usize,
    pub products: Vec<ProductSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct TopicShare {
    pub id: String,
    pub name: String,
    /// Share of the product's reviews that are about this topic, in [0, 1].
    pub share: f64,
}

#[derive(Serialize, ToSchema)]
pub struct ProductDetail {
    pub product_id: String,
    pub title: String,
    pub category: String,
    pub review_count: u32,
    pub average_rating: f64,
    /// Reviews per star rating, "1" to "5".
    pub rating_histogram: BTreeMap<String, u32>,
    pub topics: Vec<TopicShare>,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewTopic {
    pub id: String,
    pub name: String,
    pub score: f32,
}

/// A review as the storefront shows it. There is no buyer identity in it, by construction.
#[derive(Serialize, ToSchema)]
pub struct ReviewBody {
    pub review_id: String,
    pub rating: u8,
    pub title: String,
    pub text: String,
    pub topics: Vec<ReviewTopic>,
    /// Relevance in [0, 1]; reviews come most relevant first.
    pub relevance: f32,
    pub helpful_votes: u32,
    pub total_votes: u32,
    pub verified_purchase: Option<bool>,
    /// YYYY-MM-DD.
    pub review_date: Option<String>,
    pub language: String,
    /// Why the review ranks where it does, strongest first, in a few words ("detailed",
    /// "differs from the average rating", "mentions durability"). Empty for data scored
    /// before reasons existed.
    pub reasons: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TopReviews {
    pub product_id: String,
    pub run_id: String,
    pub topic: Option<String>,
    pub reviews: Vec<ReviewBody>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Reviews API",
        description = "The most relevant customer reviews of each product."
    ),
    paths(health, topics, products, product, top_reviews),
    components(schemas(
        ErrorBody,
        HealthBody,
        CacheBody,
        TopicsBody,
        ProductsPage,
        ProductDetail,
        TopReviews
    ))
)]
pub struct ApiDoc;

/// The router: API, OpenAPI document, optionally the storefront; JSON errors everywhere.
pub fn router(holder: Arc<IndexHolder>, config: &ApiConfig) -> Router {
    let state = AppState { holder };
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/topics", get(topics))
        .route("/products", get(products))
        .route("/products/{product_id}", get(product))
        .route("/reviews/{product_id}/top", get(top_reviews))
        .route("/openapi.json", get(openapi));
    if config.storefront {
        for (path, content_type, body) in storefront::FILES {
            app = app.route(
                path,
                get(move || async move { storefront::file(content_type, body) }),
            );
        }
    }
    let mut app = app
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    if config.reload == ReloadMode::OnRequest {
        app = app.layer(middleware::from_fn_with_state(state.clone(), refresh_first));
    }
    let mut app = app.layer(middleware::from_fn(hardening)).with_state(state);
    if let Some(origin) = &config.cors_origin {
        let allow = if origin == "*" {
            AllowOrigin::any()
        } else {
            AllowOrigin::exact(
                HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("null")),
            )
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
                .allow_headers([header::ACCEPT, header::CONTENT_TYPE])
                .max_age(std::time::Duration::from_secs(600)),
        );
    }
    app
}

/// Start a refresh when one is due, and serve this request from the current snapshot.
async fn refresh_first(State(state): State<AppState>, req: Request, next: Next) -> Response {
    state.holder.refresh_in_background_if_due();
    next.run(req).await
}

/// Refuse oversized request targets and set headers every response should carry.
async fn hardening(req: Request, next: Next) -> Response {
    let target_len = req.uri().path().len() + req.uri().query().map_or(0, str::len);
    let mut resp = if target_len > MAX_URI_BYTES {
        ApiError {
            status: StatusCode::URI_TOO_LONG,
            code: "uri_too_long",
            message: format!("request target longer than {MAX_URI_BYTES} bytes"),
        }
        .into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("public, max-age=60"));
    resp
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such resource; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this API is read-only: use GET".into(),
    }
}

async fn openapi() -> Response {
    let mut resp = Json(ApiDoc::openapi()).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn live(state: &AppState) -> Result<Arc<Snapshot>, ApiError> {
    state.holder.current().ok_or_else(|| {
        let reason = state
            .holder
            .failure()
            .map_or_else(|| "no dataset loaded yet".to_owned(), |f| f.reason);
        ApiError::unavailable(format!("no valid dataset is loaded: {reason}"))
    })
}

type Params = Vec<(String, String)>;

fn params(q: Result<Query<Params>, QueryRejection>) -> Result<Params, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
}

fn param<'a>(p: &'a Params, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = p.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "{name} is given more than once"
        )));
    }
    Ok(first)
}

fn int_param(p: &Params, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match param(p, name)? {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("{name} must be an integer from 1 to {max}"))
            }),
    }
}

fn product_id(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = p.map_err(|_| ApiError::bad_request("product id is not valid UTF-8"))?;
    if is_plausible_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::bad_request(
            "product id must be 1-64 ASCII letters, digits, '-', '_' or '.'",
        ))
    }
}

/// A lake failure as a client sees it: what to do, not where (the details are logged).
fn unreadable(e: &LoadError) -> ApiError {
    if e.is_transient() {
        ApiError::unavailable("the data store is unavailable or slow; retry in a few seconds")
    } else {
        ApiError::unavailable(
            "this product's reviews failed an integrity check and cannot be served until the \
             dataset is published again",
        )
    }
}

/// The bucket holding a product, and the product in it.
async fn find(
    state: &AppState,
    snapshot: &Snapshot,
    id: &str,
) -> Result<(Arc<BucketIndex>, usize), ApiError> {
    let missing = || ApiError::not_found(format!("no product {id} in the live dataset"));
    let bucket = state
        .holder
        .bucket(snapshot, id)
        .await
        .map_err(|e| unreadable(&e))?
        .ok_or_else(missing)?;
    let at = bucket.product_index(id).ok_or_else(missing)?;
    Ok((bucket, at))
}

fn product_at(bucket: &BucketIndex, at: usize) -> &Product {
    &bucket.products()[at]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Health and the loaded dataset.
#[utoipa::path(get, path = "/health", responses(
    (status = 200, description = "A valid dataset is served", body = HealthBody),
    (status = 503, description = "No valid dataset is loaded", body = HealthBody)))]
async fn health(State(state): State<AppState>) -> Response {
    let failure = state.holder.failure().map(|f| ReloadErrorBody {
        run_id: f.run_id,
        reason: f.reason,
        at: f.at.to_rfc3339(),
    });
    let stats = state.holder.cache_stats();
    let cache = CacheBody {
        buckets: stats.buckets,
        bytes: stats.bytes,
        capacity_bytes: stats.capacity,
    };
    let (status, body) = match state.holder.current() {
        Some(i) => (
            StatusCode::OK,
            HealthBody {
                status: "ok",
                run_id: Some(i.run_id().to_owned()),
                rows: Some(i.rows()),
                products: Some(i.product_count()),
                loaded_at: Some(i.loaded_at.to_rfc3339()),
                cache,
                reason: None,
                last_reload_error: failure,
            },
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            HealthBody {
                status: "unavailable",
                run_id: None,
                rows: None,
                products: None,
                loaded_at: None,
                cache,
                reason: Some(
                    failure
                        .as_ref()
                        .map_or_else(|| "no dataset loaded yet".to_owned(), |f| f.reason.clone()),
                ),
                last_reload_error: failure,
            },
        ),
    };
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The topic labels reviews are classified into.
#[utoipa::path(get, path = "/topics", responses((status = 200, body = TopicsBody), (status = 503, body = ErrorBody)))]
async fn topics(State(state): State<AppState>) -> Result<Json<TopicsBody>, ApiError> {
    let index = live(&state)?;
    Ok(Json(TopicsBody {
        topics: index
            .topics()
            .iter()
            .map(|t| TopicBody {
                id: t.id.clone(),
                name: t.name.clone(),
            })
            .collect(),
    }))
}

/// Products, most reviewed first, one page at a time.
#[utoipa::path(get, path = "/products",
    params(("page" = Option<usize>, Query, description = "Page number, from 1"),
           ("per_page" = Option<usize>, Query, description = "Products per page, 1 to 100 (default 24)")),
    responses((status = 200, body = ProductsPage), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn products(
    State(state): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<ProductsPage>, ApiError> {
    let p = params(q)?;
    let page = int_param(&p, "page", 1, 1_000_000)?;
    let per_page = int_param(&p, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    let snapshot = live(&state)?;
    let directory = state
        .holder
        .directory(&snapshot)
        .await
        .map_err(|e| unreadable(&e))?;
    let products = directory
        .page((page - 1) * per_page, per_page)
        .iter()
        .map(|p| ProductSummary {
            product_id: p.product_id.clone(),
            title: p.title.clone(),
            category: p.category.clone(),
            review_count: p.reviews,
            average_rating: round2(p.rating_sum as f64 / f64::from(p.reviews.max(1))),
        })
        .collect();
    Ok(Json(ProductsPage {
        page,
        per_page,
        total: directory.products.len(),
        products,
    }))
}

/// One product: rating summary and what its reviews talk about.
#[utoipa::path(get, path = "/products/{product_id}",
    params(("product_id" = String, Path, description = "Product id, e.g. B000000042")),
    responses((status = 200, body = ProductDetail), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn product(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ProductDetail>, ApiError> {
    let id = product_id(id)?;
    let snapshot = live(&state)?;
    let (bucket, at) = find(&state, &snapshot, &id).await?;
    let p = product_at(&bucket, at);
    let n = f64::from(p.review_count().max(1));
    let mut topics: Vec<TopicShare> = snapshot
        .topics()
        .iter()
        .zip(&p.topic_counts)
        .filter(|(_, c)| **c > 0)
        .map(|(t, c)| TopicShare {
            id: t.id.clone(),
            name: t.name.clone(),
            share: round2(f64::from(*c) / n),
        })
        .collect();
    topics.sort_by(|a, b| b.share.total_cmp(&a.share));
    Ok(Json(ProductDetail {
        product_id: p.product_id.clone(),
        title: p.title.clone(),
        category: p.category.clone(),
        review_count: p.review_count(),
        average_rating: round2(p.average_rating()),
        rating_histogram: (1..=5)
            .map(|s| (s.to_string(), p.rating_histogram[s - 1]))
            .collect(),
        topics,
    }))
}

/// The most relevant reviews of a product.
#[utoipa::path(get, path = "/reviews/{product_id}/top",
    params(("product_id" = String, Path, description = "Product id"),
           ("limit" = Option<usize>, Query, description = "Reviews to return, 1 to 50 (default 5)"),
           ("topic" = Option<String>, Query, description = "Only reviews about this topic id (see /topics)")),
    responses((status = 200, body = TopReviews), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn top_reviews(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<TopReviews>, ApiError> {
    let id = product_id(id)?;
    let p = params(q)?;
    let limit = int_param(&p, "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let snapshot = live(&state)?;
    let topic = match param(&p, "topic")? {
        None => None,
        Some(t) => Some(snapshot.topic_index(t).ok_or_else(|| {
            ApiError::bad_request("unknown topic; see /topics for the topic ids")
        })?),
    };
    let (bucket, at) = find(&state, &snapshot, &id).await?;
    let product = product_at(&bucket, at);
    let topics = snapshot.topics();
    let reviews = bucket
        .top_reviews(&snapshot, product, limit, topic)
        .into_iter()
        .map(|r| ReviewBody {
            review_id: r.review_id.to_owned(),
            rating: r.rating,
            title: r.title.to_owned(),
            text: r.text.to_owned(),
            topics: r
                .topics
                .iter()
                .map(|(t, s)| ReviewTopic {
                    id: topics[*t].id.clone(),
                    name: topics[*t].name.clone(),
                    score: *s,
                })
                .collect(),
            relevance: (r.relevance * 1000.0).round() / 1000.0,
            helpful_votes: r.helpful_votes,
            total_votes: r.total_votes,
            verified_purchase: r.verified_purchase,
            review_date: r.review_date.map(|d| d.to_string()),
            language: r.language.to_owned(),
            reasons: r.reasons.iter().map(|s| (*s).to_owned()).collect(),
        })
        .collect();
    Ok(Json(TopReviews {
        product_id: id,
        run_id: snapshot.run_id().to_owned(),
        topic: topic.map(|t| topics[t].id.clone()),
        reviews,
    }))
}
