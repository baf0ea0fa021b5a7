//! `reviews`: run the reviews pipeline on the embedded default (a local folder as the lake),
//! list and roll back published runs, generate synthetic data, and benchmark.

mod alloc;
mod bench;
mod config;
mod db;
mod erase;
mod eval;
mod progress;
mod serve;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use reviews_lake::RunId;
use reviews_postgres::{PgConfig, PgFeed};
use reviews_sources::{AmazonReader, SyntheticConfig, SyntheticReviews};
use reviews_stages::{RunOptions, RunSummary, run_from_feed, run_local};
use reviews_stores::open_lake;

// The pipeline allocates and frees millions of short strings; glibc malloc spent about a
// fifth of a full load in malloc/free (perf). mimalloc is measured by `reviews bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "reviews",
    version,
    about = "Turn raw customer reviews into the reviews that matter most for each product"
)]
struct Cli {
    /// Log format on stderr: text or json. Level from RUST_LOG (default: warn).
    #[arg(
        long,
        global = true,
        default_value = "text",
        env = "REVIEWS_LOG_FORMAT"
    )]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline end to end: extract, transform, score, publish.
    Run(RunArgs),
    /// Generate synthetic reviews to a CSV file (the Amazon CSV layout the readers take).
    Generate(GenerateArgs),
    /// List the published runs of a lake and which one is live.
    Runs(LakeArgs),
    /// Make an earlier published run live again (default: the one before the live run).
    Rollback(RollbackArgs),
    /// Measure the ranking against real helpful votes (NDCG@k, age-controlled pairwise accuracy).
    Eval(eval::EvalArgs),
    /// Train the learned ranking on a file with helpful votes; write it as a ranker file.
    Train(train::TrainArgs),
    /// Serve the API and the storefront page from the live dataset of a lake.
    Serve(serve::ServeArgs),
    /// The whole thing in one command: generate reviews, run the pipeline, serve the storefront.
    Demo(serve::DemoArgs),
    /// Benchmark transform + write cleaned + score + write curated on synthetic reviews.
    Bench(bench::BenchArgs),
    /// The PostgreSQL source database.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Right to erasure: remove a buyer from the archive and from every object of the lake.
    Erase(erase::EraseArgs),
}

#[derive(Args, Clone)]
pub(crate) struct LakeArgs {
    /// The lake: a folder (the embedded default), file://PATH, or s3://BUCKET[/PREFIX].
    #[arg(long, default_value = "./lake", env = "REVIEWS_LAKE_URI")]
    pub(crate) lake: String,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    lake: LakeArgs,
    /// Read reviews from this file (Amazon TSV or CSV) instead of generating synthetic ones.
    #[arg(long, conflicts_with = "postgres")]
    input: Option<PathBuf>,
    /// Read from PostgreSQL instead (the read-only role's URI, as `reviews db setup` made it):
    /// only the rows changed and deleted since the live commit, as the extract Lambda reads
    /// them. `REVIEWS_PG_SAFETY_LAG_SECS` sets the safety lag (default 300).
    #[arg(
        long,
        env = "REVIEWS_RUN_PG_URL",
        hide_env_values = true,
        value_name = "URI"
    )]
    postgres: Option<String>,
    /// Synthetic reviews to generate when no --input is given.
    #[arg(long, default_value_t = 10_000)]
    synthetic: u64,
    /// Seed of the synthetic generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Run id (default: <today>-local). Re-running a run id replaces that run's objects only.
    #[arg(long)]
    run_id: Option<String>,
    /// Product buckets the dataset is split into (a run rewrites only the buckets its
    /// changes fall into; default: the live snapshot's count, else 64). Another count than
    /// the live snapshot's re-buckets it once.
    #[arg(long, env = "REVIEWS_BUCKETS",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(reviews_lake::layout::MAX_BUCKETS)))]
    buckets: Option<u32>,
    /// Buckets merged and scored at once (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Scoring configuration (weights); default: config/scoring.toml if present, else built-in.
    #[arg(long, env = "REVIEWS_SCORING_CONFIG")]
    config: Option<PathBuf>,
    /// Topic classifier: auto (the model when installed, else keywords), model or keywords.
    #[arg(long, default_value = "auto", value_parser = config::parse_classifier_arg)]
    classifier: config::ClassifierChoice,
    /// A ranker file from `reviews train`: the learned ranking of helpfulness becomes the
    /// `learned` signal of the relevance, and the reasons shown come from it.
    #[arg(long, env = "REVIEWS_RANKER")]
    ranker: Option<PathBuf>,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct GenerateArgs {
    #[arg(long, default_value_t = 10_000)]
    reviews: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output CSV file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct RollbackArgs {
    #[command(flatten)]
    lake: LakeArgs,
    /// The run to make live; default: the newest published run older than the live one.
    run_id: Option<String>,
    /// Allow a run published before the last `reviews erase` whose scrub did not finish: it
    /// may still hold the erased buyers' reviews.
    #[arg(long)]
    allow_before_erasure: bool,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    if !matches!(cli.command, Command::Serve(_) | Command::Demo(_)) {
        alloc::keep_freed_memory();
    }
    match dispatch(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Run(args) => run(args).await,
        Command::Generate(args) => generate(args),
        Command::Runs(args) => list_runs(args).await,
        Command::Rollback(args) => rollback(args).await,
        Command::Eval(args) => eval::run(args).await,
        Command::Train(args) => train::run(args).await,
        Command::Serve(args) => serve::serve(args).await,
        Command::Demo(args) => serve::demo(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Db(command) => db::run(command).await,
        Command::Erase(args) => erase::run(args).await,
    }
}

/// `<date>-local-<HHMMSS>`: every run of the command is a new run; `--run-id` names an
/// earlier one to finish or redo it.
fn default_run_id() -> RunId {
    let now = chrono::Utc::now();
    RunId::for_execution(now.date_naive(), &format!("local-{}", now.format("%H%M%S")))
        .expect("valid run id")
}

pub(crate) async fn run(args: RunArgs) -> Result<()> {
    let run_id = match &args.run_id {
        Some(r) => RunId::parse(r).map_err(anyhow::Error::msg)?,
        None => default_run_id(),
    };
    let scorer = Arc::new(config::load_scorer(
        args.config.as_deref(),
        config::classifier(args.classifier)?,
        args.ranker.as_deref(),
    )?);
    let lake = open_lake(&args.lake.lake).await?;
    let options = RunOptions {
        run_id,
        buckets: args.buckets,
        workers: args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        merge_previous: false,
        lease_ttl: reviews_stages::lease_ttl_from_env()?,
    };
    let bars: Arc<dyn reviews_stages::Progress> = Arc::new(progress::Bars::new(
        !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    ));
    let result = if let Some(url) = &args.postgres {
        let mut cfg = PgConfig::new(url)?;
        if let Some(lag) = reviews_postgres::safety_lag_from_env()? {
            cfg = cfg.with_safety_lag(lag);
        }
        run_from_feed(lake, &PgFeed::new(cfg), scorer, &options, bars).await
    } else {
        match &args.input {
            Some(path) => {
                let reader = AmazonReader::open(path)?;
                run_local(lake, reader, scorer, &options, bars).await
            }
            None => {
                let synthetic = SyntheticReviews::new(SyntheticConfig {
                    seed: args.seed,
                    reviews: args.synthetic,
                    ..Default::default()
                });
                run_local(
                    lake,
                    synthetic.map(Ok::<_, std::convert::Infallible>),
                    scorer,
                    &options,
                    bars,
                )
                .await
            }
        }
    };
    let summary = match result {
        Err(reviews_stages::StageError::LeaseHeld { holder, expires_at }) => {
            // Not a failure: the other run goes on, and nothing of this one was written.
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "run_id": options.run_id, "status": "lease_held",
                        "holder": holder, "lease_expires_at": expires_at,
                    })
                );
            } else {
                println!(
                    "run {} not started: run {holder} holds the lease until {expires_at}.\n  \
                     If that run died, finish it with `reviews run --run-id {holder}` (same \
                     input), or wait until the lease expires (REVIEWS_LEASE_TTL_SECS).",
                    options.run_id
                );
            }
            return Ok(());
        }
        other => other?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(s: &RunSummary) {
    println!("run {} on {}", s.run_id, s.lake);
    println!("  rows extracted   {:>10}", s.rows_extracted);
    println!("  cleaned          {:>10}", s.cleaned);
    println!(
        "  rejected         {:>10}   ({})",
        s.rejected, s.rejects_key
    );
    for (reason, n) in &s.rejected_by_reason {
        println!("    {reason:<22} {n:>8}");
    }
    println!(
        "  curated          {:>10}   in {} bucket(s), {} written by this run",
        s.curated, s.buckets, s.buckets_written
    );
    if let Some(why) = &s.full_pass {
        println!("                                (every bucket rewritten: {why})");
    }
    println!(
        "  classified       {:>10}   ({} unchanged texts reused their topics)",
        s.encoded, s.reused
    );
    println!("  products         {:>10}", s.products);
    let c = &s.changes;
    println!(
        "  dataset          {:>10}   = {} before + {} new - {} deleted - {} rejected updates - {} erased",
        c.total, c.previous, c.new, c.deleted, c.removed_by_reject, c.erased
    );
    println!(
        "                                ({} updated, {} carried over unchanged)",
        c.updated, c.carried
    );
    println!(
        "  accounted        {:>10}   (extracted = cleaned + rejected, changes add up, dataset = curated)",
        if s.accounted { "yes" } else { "NO" }
    );
    let status = match s.status {
        reviews_stages::PublishStatus::Published => "published",
        reviews_stages::PublishStatus::AlreadyLive => "already live (unchanged)",
    };
    println!("  live             {status}, commit {}", s.sequence);
    println!("  live manifest    {}", s.manifest_key);
    println!("  time per stage:");
    let total: f64 = s.stages.iter().map(|t| t.seconds).sum();
    for t in &s.stages {
        println!("    {:<26} {:>8.2} s", t.stage, t.seconds);
    }
    println!("    {:<26} {:>8.2} s", "total", total);
}

fn generate(args: GenerateArgs) -> Result<()> {
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    w.write_record([
        "review_id",
        "customer_id",
        "marketplace",
        "star_rating",
        "helpful_votes",
        "total_votes",
        "verified_purchase",
        "review_headline",
        "review_body",
        "review_date",
        "product_id",
        "product_name",
        "product_category",
    ])?;
    let synthetic = SyntheticReviews::new(SyntheticConfig {
        seed: args.seed,
        reviews: args.reviews,
        ..Default::default()
    });
    let mut n = 0u64;
    for r in synthetic {
        let v = |o: &Option<String>| o.clone().unwrap_or_default();
        w.write_record([
            v(&r.review_id),
            v(&r.buyer_id),
            v(&r.marketplace),
            v(&r.rating),
            v(&r.helpful_votes),
            v(&r.total_votes),
            v(&r.verified_purchase),
            v(&r.title),
            v(&r.text),
            v(&r.review_date),
            v(&r.product_id),
            v(&r.product_title),
            v(&r.product_category),
        ])?;
        n += 1;
    }
    w.flush()?;
    eprintln!("wrote {n} reviews to {}", args.out.display());
    Ok(())
}

async fn list_runs(args: LakeArgs) -> Result<()> {
    let lake = open_lake(&args.lake).await?;
    let live = reviews_stages::publish::live_manifest(lake.as_ref()).await?;
    let runs = published_runs(lake.as_ref()).await?;
    if runs.is_empty() {
        println!("no published runs in {}", lake.describe());
    }
    for (run, m) in runs {
        let mark = if live.as_ref().is_some_and(|l| l.run_id == run) {
            "* live"
        } else {
            ""
        };
        println!(
            "{run:<40} {:>10} rows {:>8} products  {}  {mark}",
            m.rows, m.products, m.created_at
        );
    }
    Ok(())
}

async fn published_runs(
    lake: &dyn reviews_lake::Lake,
) -> Result<Vec<(RunId, reviews_lake::Manifest)>> {
    let mut out = Vec::new();
    for key in lake.list("curated/run=").await? {
        if key.ends_with("/_manifest.json")
            && let Some(run) = reviews_lake::layout::run_of_key(&key)
        {
            let m = reviews_lake::Manifest::from_json(&lake.get(&key).await?)
                .with_context(|| format!("reading {key}"))?;
            out.push((run, m));
        }
    }
    out.sort_by_key(|(_, m)| m.created_at);
    Ok(out)
}

async fn rollback(args: RollbackArgs) -> Result<()> {
    let lake = open_lake(&args.lake.lake).await?;
    let target = match args.run_id {
        Some(r) => RunId::parse(&r).map_err(anyhow::Error::msg)?,
        None => {
            let live = reviews_stages::publish::live_manifest(lake.as_ref())
                .await?
                .context("no live dataset to roll back from")?;
            let runs = published_runs(lake.as_ref()).await?;
            let pos = runs.iter().position(|(r, _)| *r == live.run_id);
            match pos {
                Some(p) if p > 0 => runs[p - 1].0.clone(),
                _ => bail!("no published run older than the live run {}", live.run_id),
            }
        }
    };
    // An erasure scrubs every run kept for rollback; only while a scrub is unfinished may an
    // earlier run still hold an erased buyer.
    if !args.allow_before_erasure
        && let Some(last) = reviews_stages::erase::last_erasure(lake.as_ref()).await?
        && !last.lake_scrubbed
    {
        let runs = published_runs(lake.as_ref()).await?;
        if let Some((_, m)) = runs.iter().find(|(r, _)| *r == target)
            && m.created_at < last.at
        {
            bail!(
                "run {target} was published before the last erasure ({}), whose scrub of the \
                 lake did not finish, and may still hold an erased buyer's reviews: run `reviews \
                 erase` again, or pass --allow-before-erasure to make it live anyway",
                last.at
            );
        }
    }
    let m = reviews_stages::publish::promote(lake.as_ref(), &target).await?;
    println!(
        "live dataset is now run {} ({} rows, {} products)",
        m.run_id, m.rows, m.products
    );
    Ok(())
}
