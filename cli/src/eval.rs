//! `reviews eval`: score a real dataset as if every review were brand new (no votes, no age)
//! and measure the ranking against the helpful votes it really got.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use reviews_domain::clean::fill_product_stats;
use reviews_domain::schema::CuratedReview;
use reviews_domain::score::relevance;
use reviews_domain::{CleanOutcome, Cleaner};
use reviews_sources::AmazonReader;
use reviews_stages::Progress;
use reviews_stages::eval::{Judged, evaluate};
use reviews_stages::rank::{RankerFile, cross_validated_scores, features, learned_signal};

/// Folds of the learned ranking's cross-validation (split by product).
const CV_FOLDS: usize = 5;

use crate::config::{ClassifierChoice, classifier, load_scorer, parse_classifier_arg};

#[derive(Args)]
pub struct EvalArgs {
    /// A review file with helpful votes (Amazon TSV or CSV).
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "auto", value_parser = parse_classifier_arg)]
    classifier: ClassifierChoice,
    /// Scoring configuration (weights).
    #[arg(long, env = "REVIEWS_SCORING_CONFIG")]
    config: Option<PathBuf>,
    /// Also rank with this trained ranker file (`reviews train`), e.g. one trained on another
    /// file: how the learned ranking does on reviews and products it never saw.
    #[arg(long, env = "REVIEWS_RANKER")]
    ranker: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// A vote-bearing file scored as if every review were brand new: what eval and train share.
pub(crate) struct Judging {
    pub reviews: Vec<reviews_domain::Review>,
    pub curated: HashMap<String, CuratedReview>,
    pub items: Vec<Judged>,
    /// The learned ranking's features of each review (same order as `reviews`).
    pub x: Vec<Vec<f64>>,
    pub classifier_id: String,
    pub weights: reviews_domain::score::ScoreWeights,
}

pub(crate) async fn judge(
    input: &Path,
    choice: ClassifierChoice,
    config: Option<&Path>,
    show_progress: bool,
) -> Result<Judging> {
    let now = chrono::Utc::now();
    let mut cleaner = Cleaner::new("eval", now);
    let mut reviews = Vec::new();
    for row in AmazonReader::open(input)? {
        if let CleanOutcome::Clean(r) = cleaner.clean(&row?) {
            reviews.push(*r);
        }
    }
    if reviews.is_empty() {
        bail!("no valid review in {}", input.display());
    }
    fill_product_stats(&mut reviews);
    let mut scorer = load_scorer(config, classifier(choice)?, None)?;
    // A brand-new review has neither votes nor age: score without them.
    scorer.use_votes = false;
    scorer.use_age = false;
    let bars = crate::progress::Bars::new(
        show_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    bars.start("classify + score", Some(reviews.len() as u64));
    let scored =
        tokio::task::block_in_place(|| scorer.score(&reviews, now.date_naive(), now, &bars))?;
    bars.finish();
    let curated: HashMap<String, CuratedReview> = scored
        .into_iter()
        .map(|c| (c.review_id.clone(), c))
        .collect();
    let items = reviews
        .iter()
        .map(|r| Judged {
            product_id: r.product_id.clone(),
            helpful_votes: r.helpful_votes,
            day: r.review_date.num_days_from_ce_i64(),
        })
        .collect();
    let x = reviews
        .iter()
        .map(|r| features(r, curated[&r.review_id].signals.informativeness))
        .collect();
    Ok(Judging {
        reviews,
        curated,
        items,
        x,
        classifier_id: scorer.classifier_id.clone(),
        weights: scorer.weights.clone(),
    })
}

pub async fn run(args: EvalArgs) -> Result<()> {
    // Read the ranker file before the long scoring, so that a bad one fails at once.
    let ranker = args.ranker.as_deref().map(RankerFile::load).transpose()?;
    let Judging {
        reviews,
        curated: by_id,
        items,
        x,
        weights,
        ..
    } = judge(
        &args.input,
        args.classifier,
        args.config.as_deref(),
        !args.json,
    )
    .await?;
    let pick = |f: &dyn Fn(&CuratedReview) -> f64| -> Vec<f64> {
        reviews.iter().map(|r| f(&by_id[&r.review_id])).collect()
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
    let learned = cross_validated_scores(&items, &x, CV_FOLDS);
    // What the pipeline serves with a ranker: the relevance with the learned signal in it.
    let with_learned: Vec<f64> = reviews
        .iter()
        .zip(&learned)
        .map(|(r, l)| {
            let mut s = by_id[&r.review_id].signals;
            s.learned = Some(learned_signal(*l));
            f64::from(relevance(&s, &weights))
        })
        .collect();
    let mut rankings = vec![
        (
            "relevance (ours)".to_owned(),
            pick(&|c| f64::from(c.relevance)),
        ),
        (format!("learned ({CV_FOLDS}-fold CV by product)"), learned),
        (
            format!("relevance + learned ({CV_FOLDS}-fold CV)"),
            with_learned,
        ),
    ];
    // A ranker trained on another file: how it does on data it never saw at all.
    if let Some(file) = &ranker {
        let model = file.model();
        rankings.push((
            format!("learned (file, from {})", file.training.input),
            x.iter().map(|v| model.score(v)).collect(),
        ));
    }
    rankings.extend([
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
    ]);
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
            "{:<40} {:>7} {:>7} {:>7} {:>15} {:>9} {:>15}",
            "ranking", "NDCG@1", "NDCG@3", "NDCG@5", "(95% CI)", "pairwise", "(95% CI)"
        );
        for r in &report.rankings {
            println!(
                "{:<40} {:>7.3} {:>7.3} {:>7.3}   [{:.3}, {:.3}] {:>9.3}   [{:.3}, {:.3}]",
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
