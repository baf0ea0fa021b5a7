//! Dump the model signals of a reviews CSV (the Amazon sample layout) for tuning.
//!
//! `cargo run --release -p reviews-nlp --example signals_csv -- IN.csv OUT.csv`
//! Writes review_id, tokens, generic_similarity, informativeness and one score column per topic.
//! Text = headline + ". " + body, as the score stage sees it.

use std::sync::Arc;
use std::time::Instant;

use reviews_nlp::{EncoderConfig, SentenceEncoder, ZeroShotClassifier, ZeroShotConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        return Err("usage: signals_csv IN.csv OUT.csv".into());
    };
    let mut reader = csv::Reader::from_path(input)?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or(format!("no column {name}"))
    };
    let (id_col, head_col, body_col) = (
        col("review_id")?,
        col("review_headline")?,
        col("review_body")?,
    );
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    for record in reader.records() {
        let r = record?;
        ids.push(r[id_col].to_string());
        texts.push(format!("{}. {}", &r[head_col], &r[body_col]));
    }

    let encoder = SentenceEncoder::shared(EncoderConfig::default())?;
    let classifier = ZeroShotClassifier::new(Arc::clone(&encoder), ZeroShotConfig::default())?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let start = Instant::now();
    let analyses = classifier.analyze(&refs)?;
    eprintln!(
        "{} reviews in {:.1} s",
        refs.len(),
        start.elapsed().as_secs_f64()
    );
    let tokens = encoder.token_counts(&refs)?;

    let mut writer = csv::Writer::from_path(output)?;
    let mut header = vec![
        "review_id",
        "tokens",
        "generic_similarity",
        "informativeness",
    ];
    let topic_ids: Vec<String> = ZeroShotConfig::default()
        .topics
        .into_iter()
        .map(|t| t.id)
        .collect();
    header.extend(topic_ids.iter().map(String::as_str));
    writer.write_record(&header)?;
    for ((id, a), n) in ids.iter().zip(&analyses).zip(&tokens) {
        let mut row = vec![
            id.clone(),
            n.to_string(),
            format!("{:.5}", a.generic_similarity),
            format!("{:.5}", a.signals.informativeness),
        ];
        row.extend(a.signals.topic_scores.iter().map(|s| format!("{s:.5}")));
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok(())
}
