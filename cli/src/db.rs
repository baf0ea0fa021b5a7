//! `reviews db setup`: the source database the extract reads (tables, indexes, roles), and
//! optionally a file loaded into it.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use reviews_domain::RawReview;
use reviews_postgres::{LoadOptions, PgConfig, SetupConfig, load_reviews, setup};
use reviews_sources::{AmazonReader, SyntheticConfig, SyntheticReviews};

#[derive(Subcommand)]
pub enum DbCommand {
    /// Create (or check) the source database, its tables, indexes and roles; optionally load
    /// reviews into it. Running it twice changes nothing.
    Setup(SetupArgs),
}

#[derive(Args)]
pub struct SetupArgs {
    /// An administrator's URL (a superuser, or the RDS master user); its database is only used
    /// to create the source database.
    #[arg(long, env = "REVIEWS_PG_ADMIN_URL", hide_env_values = true)]
    admin_url: String,
    /// The source database.
    #[arg(long, default_value = "amazonreviews")]
    database: String,
    /// The role that owns the tables (NOLOGIN).
    #[arg(long, default_value = "reviews_owner")]
    owner_role: String,
    /// The extract's read-only login role.
    #[arg(long, default_value = "etl_reader")]
    reader_role: String,
    /// The read-only role's password, from the environment (never a command-line value, which
    /// other users can see in the process list).
    #[arg(
        long = "reader-password-env",
        default_value = "REVIEWS_PG_READER_PASSWORD"
    )]
    reader_password_env: String,
    /// Load this file (Amazon TSV or CSV) into the tables after setup.
    #[arg(long, conflicts_with = "synthetic")]
    load: Option<PathBuf>,
    /// Load this many synthetic reviews instead.
    #[arg(long)]
    synthetic: Option<u64>,
    /// Seed of the synthetic reviews.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the reports as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: DbCommand) -> Result<()> {
    match command {
        DbCommand::Setup(args) => setup_command(args).await,
    }
}

async fn setup_command(args: SetupArgs) -> Result<()> {
    let password = std::env::var(&args.reader_password_env).unwrap_or_default();
    if password.is_empty() {
        bail!(
            "set the read-only role's password in ${} (or name another variable with --reader-password-env)",
            args.reader_password_env
        );
    }
    let admin = PgConfig::new(&args.admin_url)?;
    let cfg = SetupConfig {
        database: args.database.clone(),
        owner_role: args.owner_role.clone(),
        reader_role: args.reader_role.clone(),
        reader_password: password,
    };
    let report = setup(&admin, &cfg)
        .await
        .with_context(|| format!("setting up {}", admin.target()))?;
    let target = admin.with_database(&args.database);
    let load =
        match (&args.load, args.synthetic) {
            (Some(path), _) => {
                let reader = AmazonReader::open(path)?;
                Some(load_until_error(&target, reader).await.with_context(|| {
                    format!("loading {} into {}", path.display(), target.target())
                })?)
            }
            (None, Some(n)) => {
                let rows = SyntheticReviews::new(SyntheticConfig {
                    seed: args.seed,
                    reviews: n,
                    ..Default::default()
                });
                Some(load_reviews(&target, rows, &LoadOptions::default()).await?)
            }
            (None, None) => None,
        };
    if args.json {
        let doc = serde_json::json!({ "setup": report, "load": load });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if report.changes.is_empty() {
        println!("{}: already set up, nothing changed", target.target());
    } else {
        println!("{}: set up", target.target());
        for c in &report.changes {
            println!("  {c}");
        }
    }
    println!(
        "  the extract connects as {} (read-only sessions)",
        args.reader_role
    );
    if let Some(l) = load {
        println!(
            "loaded: {} read, {} inserted, {} updated, {} unchanged, {} rejected",
            l.read,
            l.inserted,
            l.updated,
            l.unchanged,
            l.rejected_total()
        );
        for (reason, n) in &l.rejected {
            println!("  {reason:<24} {n:>8}");
        }
    }
    Ok(())
}

/// Load a file's rows; a read error (not a malformed row, which the reader hands on as a
/// defect for the source to reject) stops the load and is returned after what was read.
async fn load_until_error(
    target: &PgConfig,
    reader: AmazonReader<impl std::io::Read>,
) -> Result<reviews_postgres::LoadReport> {
    let mut failure = None;
    let rows = reader.map_while(|r: Result<RawReview, _>| match r {
        Ok(row) => Some(row),
        Err(e) => {
            failure = Some(e);
            None
        }
    });
    let report = load_reviews(target, rows, &LoadOptions::default()).await?;
    if let Some(e) = failure {
        bail!("reading stopped after {} rows: {e}", report.read);
    }
    Ok(report)
}
