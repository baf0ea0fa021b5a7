//! `reviews serve` and `reviews demo`: the API and the storefront on a local address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use reviews_api::{ApiConfig, ReloadMode, router};
use reviews_stores::open_lake;

#[derive(Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub lake: crate::LakeArgs,
    /// Address to listen on. Loopback by default: put a reverse proxy in front to expose it.
    #[arg(long, default_value = "127.0.0.1:8080", env = "REVIEWS_ADDR")]
    pub addr: SocketAddr,
    /// Storefront origin allowed by CORS (e.g. https://shop.example.com, or * for any).
    #[arg(long, env = "REVIEWS_CORS_ORIGIN")]
    pub cors_origin: Option<String>,
    /// Seconds between checks of curated/_latest.json for a newly published dataset.
    #[arg(long, default_value_t = 5)]
    pub reload_secs: u64,
    /// Memory for product buckets held in memory (MiB); buckets are fetched from the lake
    /// when first asked for and the least recently used dropped beyond this.
    #[arg(long, default_value_t = 256, env = "REVIEWS_API_CACHE_MB")]
    pub cache_mb: usize,
    /// Do not serve the storefront page at /.
    #[arg(long)]
    pub no_storefront: bool,
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    let lake = open_lake(&args.lake.lake).await?;
    let holder = reviews_api::start_with_cache(
        lake.clone(),
        Duration::from_secs(args.reload_secs.max(1)),
        args.cache_mb.max(1) << 20,
    )
    .await;
    match holder.current() {
        Some(i) => eprintln!(
            "live run {} ({} reviews, {} products) in {}, ready in {:.2} s",
            i.run_id(),
            i.rows(),
            i.product_count(),
            lake.describe(),
            started.elapsed().as_secs_f64()
        ),
        None => eprintln!(
            "no valid dataset yet in {} ({}); serving 503 until one is published",
            lake.describe(),
            holder.failure().map(|f| f.reason).unwrap_or_default()
        ),
    }
    holder.spawn_watcher();
    let app = router(
        holder,
        &ApiConfig {
            cors_origin: args.cors_origin.clone(),
            reload: ReloadMode::Background,
            storefront: !args.no_storefront,
        },
    );
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    println!(
        "serving on http://{addr}/  (API: /health, /products, /reviews/{{product_id}}/top, /openapi.json)"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[derive(Args)]
pub struct DemoArgs {
    /// Synthetic reviews to generate.
    #[arg(long, default_value_t = 20_000)]
    pub reviews: u64,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Generate data, run the pipeline, then serve the API and the storefront.
pub async fn demo(args: DemoArgs) -> Result<()> {
    let run = crate::RunArgs {
        postgres: None,
        lake: args.serve.lake.clone(),
        input: None,
        synthetic: args.reviews,
        seed: 42,
        run_id: None,
        buckets: None,
        workers: None,
        config: None,
        classifier: crate::config::ClassifierChoice::Auto,
        ranker: None,
        json: false,
    };
    crate::run(run).await?;
    println!();
    serve(args.serve).await
}
