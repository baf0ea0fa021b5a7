//! The HTTP API of the storefront (docs/ARCHITECTURE.md section 6). One axum router serves
//! locally (`reviews serve`) and inside the API Lambda (lambda_http, API Gateway HTTP API v2).

pub mod cache;
pub mod error;
pub mod holder;
pub mod index;
pub mod routes;
pub mod storefront;

use std::sync::Arc;

pub use holder::IndexHolder;
pub use routes::{ApiConfig, ApiDoc, ReloadMode, router};

/// Build the holder for a lake and read the live snapshot (an absent or broken one is reported
/// by /health, not fatal: the API starts and waits for a valid dataset). Only the manifest is
/// read: buckets are fetched when first asked for.
pub async fn start(
    lake: Arc<dyn reviews_lake::Lake>,
    check_every: std::time::Duration,
) -> Arc<IndexHolder> {
    start_with_cache(lake, check_every, holder::DEFAULT_CACHE_BYTES).await
}

/// [`start`] with the bucket cache bounded to `cache_bytes`.
pub async fn start_with_cache(
    lake: Arc<dyn reviews_lake::Lake>,
    check_every: std::time::Duration,
    cache_bytes: usize,
) -> Arc<IndexHolder> {
    let holder = Arc::new(IndexHolder::with_cache(lake, check_every, cache_bytes));
    holder.refresh().await;
    holder
}
