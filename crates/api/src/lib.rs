//! The HTTP API of the storefront (DESIGN section 6). One axum router serves locally
//! (`reviews serve`) and inside the API Lambda (lambda_http, API Gateway HTTP API v2).

pub mod error;
pub mod holder;
pub mod index;
pub mod routes;
pub mod storefront;

use std::sync::Arc;

pub use holder::IndexHolder;
pub use routes::{ApiConfig, ApiDoc, ReloadMode, router};

/// Build the holder for a lake and load the live dataset (an absent or broken one is reported
/// by /health, not fatal: the API starts and waits for a valid dataset).
pub async fn start(
    lake: Arc<dyn reviews_lake::Lake>,
    check_every: std::time::Duration,
) -> Arc<IndexHolder> {
    let holder = Arc::new(IndexHolder::new(lake, check_every));
    holder.refresh().await;
    holder
}
