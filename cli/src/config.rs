//! Scoring configuration (weights of the relevance signals, from a TOML file) and the choice of
//! topic classifier.

use std::path::Path;

use anyhow::{Context, Result};
use reviews_domain::score::ScoreWeights;
use reviews_nlp::EncoderConfig;
use reviews_stages::Scorer;

/// The file read when none is named, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/scoring.toml";

/// Which topic classifier scores the reviews (`auto`, `model` or `keywords`): the one type the
/// score Lambda reads from `REVIEWS_CLASSIFIER` too.
pub use reviews_nlp::ClassifierChoice;

/// `--classifier auto|model|keywords`, parsed as the score Lambda parses `REVIEWS_CLASSIFIER`.
pub fn parse_classifier_arg(s: &str) -> Result<ClassifierChoice, String> {
    s.parse()
}

/// Build the classifier. Says on stderr which one it took and why.
pub fn classifier(choice: ClassifierChoice) -> Result<reviews_nlp::Selected> {
    let selected = reviews_nlp::select_classifier(choice, EncoderConfig::default())
        .context("building the topic classifier")?;
    eprintln!("{}", selected.description);
    Ok(selected)
}

/// Load the weights (from `path`, else config/scoring.toml when present, else the built-in
/// defaults) and build the scorer around `classifier`, with the ranker file `ranker` (from
/// `reviews train`) when given.
pub fn load_scorer(
    path: Option<&Path>,
    classifier: reviews_nlp::Selected,
    ranker: Option<&Path>,
) -> Result<Scorer> {
    let weights = match path {
        Some(p) => read(p)?,
        None if Path::new(DEFAULT_CONFIG).exists() => read(Path::new(DEFAULT_CONFIG))?,
        None => reviews_stages::scoring::built_in(),
    };
    let scorer = Scorer::new(classifier.classifier, weights).with_classifier_id(classifier.id);
    match ranker {
        None => Ok(scorer),
        Some(p) => {
            let file = reviews_stages::rank::RankerFile::load(p)?;
            eprintln!(
                "learned ranking: {} (trained on {}, {} reviews)",
                p.display(),
                file.training.input,
                file.training.reviews
            );
            Ok(scorer.with_ranker(&file, &p.display().to_string())?)
        }
    }
}

fn read(path: &Path) -> Result<ScoreWeights> {
    Ok(reviews_stages::scoring::load(path)?)
}
