//! `reviews eval`: score a real dataset as if every review were brand new (no votes, no age)
//! and measure the ranking against the helpful votes it really got.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use reviews_domain::clean::fill_product_stats;
use reviews_domain::{CleanOutcome, Cleaner};
use reviews_sources::AmazonReader;
use reviews_stages::Progress;
use reviews_stages::eval::{Judged, evaluate};
use reviews_stages::rank::{cross_validated_scores, features};

/// Folds of the learned ranking's cross-validation (split by product).
const CV_FOLDS: usize = 5;

use crate::config::{ClassifierChoice, classifier, load_scorer};

#[derive(Args)]
pub struct EvalArgs {
    /// A review file with helpful votes (Amazon TSV or CSV).
    #[arg(long)]
    input: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    classifier: ClassifierChoice,
    /// Scoring configuration (weights).
    #[arg(long, env = "REVIEWS_SCORING_CONFIG")]
    config: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: EvalArgs) -> Result<()> {
    let now = chrono::Utc::now();
    let mut cleaner = Cleaner::new("eval", now);
    let mut reviews = Vec::new();
    for row in AmazonReader::open(&args.input)? {
        if let CleanOutcome::Clean(r) = cleaner.clean(&row?) {
            reviews.push(*r);
        }
    }
    if reviews.is_empty() {
        bail!("no valid review in {}", args.input.display());
    }
    fill_product_stats(&mut reviews);
    let mut scorer = load_scorer(args.config.as_deref(), classifier(args.classifier)?)?;
    // A brand-new review has neither votes nor age: score without them.
    scorer.use_votes = false;
    scorer.use_age = false;
    let bars = crate::progress::Bars::new(
        !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    bars.start("classify + score", Some(reviews.len() as u64));
    let curated =
        tokio::task::block_in_place(|| scorer.score(&reviews, now.date_naive(), now, &bars))?;
    bars.finish();

    let by_id: HashMap<&str, &reviews_domain::schema::CuratedReview> =
        curated.iter().map(|c| (c.review_id.as_str(), c)).collect();
    let items: Vec<Judged> = reviews
        .iter()
        .map(|r| Judged {
            product_id: r.product_id.clone(),
            helpful_votes: r.helpful_votes,
            day: r.review_date.num_days_from_ce_i64(),
        })
        .collect();
    let pick = |f: &dyn Fn(&reviews_domain::schema::CuratedReview) -> f64| -> Vec<f64> {
        reviews
            .iter()
            .map(|r| f(by_id[r.review_id.as_str()]))
            .collect()
    };
    // Random: a fixed hash of the review id, so the baseline is reproducible.
    let random: Vec<f64> = reviews
        .iter()
        .map(|r| {
            use std::hash::{DefaultHasher, Hash, Hasher};
            let mut h = DefaultHasher::new();
            r.review_id.hash(&mut h);
            (h.finish() >> 11) as f64
        })
        .collect();
    // The learned ranking, scored on each product by a model trained on other products only.
    let x: Vec<Vec<f64>> = reviews
        .iter()
        .map(|r| features(r, by_id[r.review_id.as_str()].signals.informativeness))
        .collect();
    let learned = cross_validated_scores(&items, &x, CV_FOLDS);
    let rankings = vec![
        (
            "relevance (ours)".to_owned(),
            pick(&|c| f64::from(c.relevance)),
        ),
        (format!("learned ({CV_FOLDS}-fold CV by product)"), learned),
        (
            "baseline: length".to_owned(),
            reviews.iter().map(|r| f64::from(r.word_count)).collect(),
        ),
        ("baseline: random".to_owned(), random),
        (
            "signal: informativeness".to_owned(),
            pick(&|c| f64::from(c.signals.informativeness.unwrap_or(0.0))),
        ),
        (
            "signal: deviation".to_owned(),
            pick(&|c| f64::from(c.signals.deviation)),
        ),
    ];
    let report = evaluate(&items, &rankings);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} reviews; NDCG over {} products (>= 5 reviews, >= 1 voted); pairwise over {} age-controlled pairs",
            report.reviews, report.products, report.pairs
        );
        if !report.measurable {
            println!(
                "too few helpful votes to measure a ranking: no product has 5 reviews with one \
                 voted, and no two reviews of a product posted within 90 days differ in votes"
            );
            return Ok(());
        }
        println!(
            "{:<34} {:>7} {:>7} {:>7} {:>15} {:>9} {:>15}",
            "ranking", "NDCG@1", "NDCG@3", "NDCG@5", "(95% CI)", "pairwise", "(95% CI)"
        );
        for r in &report.rankings {
            println!(
                "{:<34} {:>7.3} {:>7.3} {:>7.3}   [{:.3}, {:.3}] {:>9.3}   [{:.3}, {:.3}]",
                r.name,
                r.ndcg_at_1,
                r.ndcg_at_3,
                r.ndcg_at_5,
                r.ndcg_at_5_ci[0],
                r.ndcg_at_5_ci[1],
                r.pairwise_accuracy,
                r.pairwise_accuracy_ci[0],
                r.pairwise_accuracy_ci[1]
            );
        }
        println!(
            "intervals: bootstrap over products ({} resamples)",
            reviews_stages::eval::BOOTSTRAP_SAMPLES
        );
    }
    Ok(())
}

trait DaysFromCe {
    fn num_days_from_ce_i64(&self) -> i64;
}

impl DaysFromCe for chrono::NaiveDate {
    fn num_days_from_ce_i64(&self) -> i64 {
        use chrono::Datelike;
        i64::from(self.num_days_from_ce())
    }
}
