//! `reviews train`: fit the learned ranking on a file with helpful votes and write it as a
//! small versioned ranker file, which `reviews run --ranker`, the score Lambda
//! (`REVIEWS_RANKER`) and `reviews eval --ranker` read.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use reviews_stages::rank::{EPOCHS, L2, RankerFile, TrainingProvenance, train_all};
use sha2::{Digest, Sha256};

use crate::config::{ClassifierChoice, parse_classifier_arg};
use crate::eval::{Judging, judge};

#[derive(Args)]
pub struct TrainArgs {
    /// A review file with helpful votes (Amazon TSV or CSV).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the ranker file.
    #[arg(long, default_value = "ranker.json")]
    out: PathBuf,
    /// The classifier whose informativeness is one of the features: train with the one the
    /// pipeline will score with.
    #[arg(long, default_value = "auto", value_parser = parse_classifier_arg)]
    classifier: ClassifierChoice,
    /// Scoring configuration (weights).
    #[arg(long, env = "REVIEWS_SCORING_CONFIG")]
    config: Option<PathBuf>,
}

pub async fn run(args: TrainArgs) -> Result<()> {
    let input_sha256 = sha256_of(&args.input)?;
    let Judging {
        items,
        x,
        classifier_id,
        ..
    } = judge(&args.input, args.classifier, args.config.as_deref(), true).await?;
    let (model, pairs) = train_all(&items, &x);
    if pairs == 0 {
        bail!(
            "{}: no two reviews of a product posted within {} days differ in helpful votes: \
             nothing to learn from",
            args.input.display(),
            reviews_stages::rank::PAIR_MAX_DAYS
        );
    }
    let products = items
        .iter()
        .map(|i| i.product_id.as_str())
        .collect::<HashSet<_>>()
        .len();
    let file = RankerFile::new(
        &model,
        TrainingProvenance {
            input: args
                .input
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            input_sha256,
            reviews: items.len(),
            products,
            pairs,
            classifier: classifier_id,
            l2: L2,
            epochs: EPOCHS,
            trained_at: chrono::Utc::now(),
        },
    );
    write_atomically(&args.out, &file.to_json())?;
    eprintln!(
        "trained on {} reviews of {} products ({} pairs); wrote {}",
        items.len(),
        products,
        pairs,
        args.out.display()
    );
    Ok(())
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Write next to the target, then rename: a crash leaves the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
