//! Print the topic scores and informativeness of each line of stdin (or of each argument).
//!
//! `cargo run -p reviews-nlp --example classify -- "Arrived late and the box was crushed."`
//! Environment: REVIEWS_MODEL_DIR, ORT_DYLIB_PATH, REVIEWS_TOPICS (a TOML/JSON label file).

use std::io::BufRead;
use std::sync::Arc;

use reviews_domain::classify::TopicClassifier;
use reviews_nlp::{EncoderConfig, SentenceEncoder, ZeroShotClassifier, ZeroShotConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut texts: Vec<String> = std::env::args().skip(1).collect();
    if texts.is_empty() {
        texts = std::io::stdin().lock().lines().collect::<Result<_, _>>()?;
    }
    let config = match std::env::var_os("REVIEWS_TOPICS") {
        Some(path) => ZeroShotConfig::from_path(path.as_ref())?,
        None => ZeroShotConfig::default(),
    };
    let encoder = SentenceEncoder::shared(EncoderConfig::default())?;
    let classifier = ZeroShotClassifier::new(Arc::clone(&encoder), config)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let signals = classifier.classify(&refs)?;
    for (text, s) in texts.iter().zip(signals) {
        let mut ranked: Vec<(&str, f32)> = classifier
            .topics()
            .iter()
            .map(|t| t.id.as_str())
            .zip(s.topic_scores)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = ranked
            .iter()
            .take(3)
            .map(|(id, p)| format!("{id} {p:.2}"))
            .collect();
        println!("inf {:.2} | {} | {text}", s.informativeness, top.join(", "));
    }
    Ok(())
}
