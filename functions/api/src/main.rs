//! Lambda: the storefront API behind API Gateway (HTTP API, payload v2). A thin main: build the
//! lake client and read the live snapshot once per cold start, then hand the shared router to
//! lambda_http. Product buckets are fetched on first use and kept within REVIEWS_API_CACHE_MB;
//! a request starts a check of the manifest (without waiting for it) at most every
//! REVIEWS_RELOAD_SECS.

use std::time::Duration;

use lambda_http::{Error, run};
use reviews_api::{ApiConfig, ReloadMode, router};

#[tokio::main]
async fn main() -> Result<(), Error> {
    reviews_lambda::init_logging();
    let lake_uri = std::env::var("REVIEWS_LAKE_URI")
        .map_err(|_| "REVIEWS_LAKE_URI is not set (s3://bucket or a folder)")?;
    let reload_secs: u64 = std::env::var("REVIEWS_RELOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let cache_mb: usize = std::env::var("REVIEWS_API_CACHE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let lake = reviews_stores::open_lake(&lake_uri).await?;
    let holder = reviews_api::start_with_cache(
        lake,
        Duration::from_secs(reload_secs),
        cache_mb.max(1) << 20,
    )
    .await;
    let app = router(
        holder,
        &ApiConfig {
            cors_origin: std::env::var("REVIEWS_CORS_ORIGIN")
                .ok()
                .filter(|s| !s.is_empty()),
            reload: ReloadMode::OnRequest,
            storefront: false,
        },
    );
    run(app).await
}
