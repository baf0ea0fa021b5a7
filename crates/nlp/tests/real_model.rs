//! Tests against the real model and runtime fetched by scripts/fetch-model.sh.
//!
//! They never skip: without the files they fail and say how to get them. Run with
//! `--nocapture` to see the per-review tables (the French one is documented in the README).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use reviews_domain::classify::TopicClassifier;
use reviews_nlp::{
    DEFAULT_MODEL, EncoderConfig, SentenceEncoder, ZeroShotClassifier, ZeroShotConfig, runtime,
};

fn models_dir() -> PathBuf {
    match std::env::var_os("REVIEWS_MODEL_DIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
    }
}

fn config(model: &str) -> EncoderConfig {
    let dir = models_dir();
    let model_dir = dir.join(model);
    for f in ["model.onnx", "tokenizer.json"] {
        assert!(
            model_dir.join(f).is_file(),
            "{} is missing: run scripts/fetch-model.sh (or set REVIEWS_MODEL_DIR)",
            model_dir.join(f).display()
        );
    }
    EncoderConfig {
        model_dir,
        ort_library: runtime::default_library_path(&dir),
        intra_threads: 2,
        max_length: 256,
        batch_size: 16,
    }
}

fn encoder() -> Arc<SentenceEncoder> {
    SentenceEncoder::shared(config(DEFAULT_MODEL))
        .unwrap_or_else(|e| panic!("cannot load the model: {e}"))
}

fn classifier() -> &'static ZeroShotClassifier {
    static C: OnceLock<ZeroShotClassifier> = OnceLock::new();
    C.get_or_init(|| ZeroShotClassifier::new(encoder(), ZeroShotConfig::default()).unwrap())
}

fn top_topic(c: &ZeroShotClassifier, scores: &[f32]) -> (String, f32) {
    let (i, s) = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap();
    (c.topics()[i].id.clone(), *s)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
#[ignore = "needs the model: scripts/test fetches it (scripts/fetch-model.sh)"]
fn unambiguous_english_reviews_land_on_the_expected_topic() {
    let cases = [
        (
            "Arrived late and the box was crushed.",
            "delivery_packaging",
        ),
        (
            "The parcel took three weeks to come and the packaging was torn open.",
            "delivery_packaging",
        ),
        (
            "Great value for the price, much cheaper than in the shops.",
            "value_for_money",
        ),
        ("Overpriced, not worth the money.", "value_for_money"),
        (
            "I emailed the seller twice about a refund and never got an answer.",
            "customer_service",
        ),
        (
            "The support agent on the phone was friendly and sorted out my return.",
            "customer_service",
        ),
        (
            "Setup was simple and the controls are intuitive.",
            "ease_of_use",
        ),
        (
            "The manual is useless and the menus are impossible to figure out.",
            "ease_of_use",
        ),
        ("It fell apart after a month of light use.", "durability"),
        (
            "Three years on and it still works like the day I bought it.",
            "durability",
        ),
        (
            "The stitching is sloppy and the material feels cheap.",
            "product_quality",
        ),
        (
            "Superb sound, crisp highs and deep bass.",
            "product_quality",
        ),
        (
            "Bought this as a present for my nephew, have not given it to him yet.",
            "off_topic",
        ),
    ];
    let c = classifier();
    let texts: Vec<&str> = cases.iter().map(|(t, _)| *t).collect();
    let signals = c.classify(&texts).unwrap();
    let mut wrong = Vec::new();
    for ((text, expected), s) in cases.iter().zip(&signals) {
        let (got, score) = top_topic(c, &s.topic_scores);
        println!("{got:>20} {score:.2}  inf {:.2}  {text}", s.informativeness);
        if got != *expected {
            wrong.push(format!(
                "{text:?}: expected {expected}, got {got} ({score:.2})"
            ));
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}

#[derive(serde::Deserialize)]
struct Reference {
    max_seq_length: usize,
    sentences: Vec<ReferenceSentence>,
}

#[derive(serde::Deserialize)]
struct ReferenceSentence {
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

#[test]
#[ignore = "needs the model: scripts/test fetches it (scripts/fetch-model.sh)"]
fn embeddings_match_sentence_transformers_reference() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/nlp/reference_vectors.json");
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let enc = encoder();
    assert_eq!(enc.config().max_length, reference.max_seq_length);
    let texts: Vec<&str> = reference
        .sentences
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    // Same token counts: the 128-token truncation of tokenizer.json is overridden (one text
    // has 182 tokens) and no fixed padding leaks into the counts.
    let counts = enc.token_counts(&texts).unwrap();
    let expected: Vec<usize> = reference.sentences.iter().map(|s| s.tokens).collect();
    assert_eq!(counts, expected);

    // All in one call, so texts of different lengths share padded batches.
    let got = enc.encode(&texts).unwrap();
    for (row, s) in got.rows().into_iter().zip(&reference.sentences) {
        let row = row.to_vec();
        let diff = max_abs_diff(&row, &s.embedding);
        let cos: f32 = row.iter().zip(&s.embedding).map(|(a, b)| a * b).sum();
        println!("max abs diff {diff:.2e}  cosine {cos:.8}  {:.40}", s.text);
        assert!(diff < 1e-4, "{:?}: max abs diff {diff}", s.text);
        assert!(cos > 0.9999, "{:?}: cosine {cos}", s.text);
    }
}

#[test]
#[ignore = "needs the model: scripts/test fetches it (scripts/fetch-model.sh)"]
fn batch_order_and_batch_size_do_not_change_vectors() {
    let texts = [
        "ok",
        "Arrived late and the box was crushed.",
        "The battery died after three weeks; customer service never replied to my four emails.",
        "Great.",
        "I bought this kettle to replace an older one. It boils quickly, the lid opens with a \
         button and does not spit steam, but the cord is short and the window is hard to read.",
        "Très bon produit.",
        "Five stars",
        "Worth every penny, would buy again.",
    ];
    let enc = encoder();
    let all = enc.encode(&texts).unwrap();

    let reversed: Vec<&str> = texts.iter().rev().copied().collect();
    let rev = enc.encode(&reversed).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let a = all.row(i).to_vec();
        let d = max_abs_diff(&a, &rev.row(texts.len() - 1 - i).to_vec());
        assert!(
            d < 1e-5,
            "{text:?} differs by {d} when the order is reversed"
        );
        let alone = enc.encode(&[*text]).unwrap().row(0).to_vec();
        let d = max_abs_diff(&a, &alone);
        assert!(d < 1e-5, "{text:?} differs by {d} when encoded alone");
    }

    // A second session with tiny batches: other batch compositions, other padding.
    let small = SentenceEncoder::new(EncoderConfig {
        batch_size: 3,
        ..config(DEFAULT_MODEL)
    })
    .unwrap();
    let d = max_abs_diff(
        all.as_slice().unwrap(),
        small.encode(&texts).unwrap().as_slice().unwrap(),
    );
    assert!(d < 1e-5, "batch size 3 vs 16 differ by {d}");
    assert_eq!(enc.encode(&[]).unwrap().dim(), (0, enc.dim()));
}

#[test]
#[ignore = "needs the model: scripts/test fetches it (scripts/fetch-model.sh)"]
fn informativeness_prefers_concrete_experience_to_vague_verdicts() {
    let c = classifier();
    let detailed = "The zip broke after two weeks of daily use and the left strap is fraying; \
                    the side pocket fits a 13 inch laptop but not a charger.";
    let texts = [detailed, "Great product!", "Five stars", "", "   "];
    let s = c.classify(&texts).unwrap();
    let inf: Vec<f32> = s.iter().map(|s| s.informativeness).collect();
    println!("{inf:?}");
    assert!(inf.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(inf[0] > 0.5, "detailed review: {}", inf[0]);
    assert!(inf[1] < 0.2 && inf[2] < 0.2, "vague verdicts: {inf:?}");
    assert_eq!((inf[3], inf[4]), (0.0, 0.0));
}

#[test]
#[ignore = "needs the model: scripts/test fetches it (scripts/fetch-model.sh)"]
fn classifier_honours_the_trait_contract() {
    let c = classifier();
    let ids: Vec<&str> = c.topics().iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), 7);
    let texts = ["Cheap and cheerful.", "", "Never arrived."];
    let signals = c.classify(&texts).unwrap();
    assert_eq!(signals.len(), texts.len());
    for s in &signals {
        assert_eq!(s.topic_scores.len(), ids.len());
        assert!(s.topic_scores.iter().all(|p| (0.0..=1.0).contains(p)));
        assert!((s.topic_scores.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    // Order preserved: the third text is the delivery one.
    assert_eq!(
        top_topic(c, &signals[2].topic_scores).0,
        "delivery_packaging"
    );
    assert!(c.classify(&[]).unwrap().is_empty());
}

#[test]
#[ignore = "needs the model: scripts/test fetches it (scripts/fetch-model.sh)"]
fn a_custom_label_set_loads_from_a_json_file() {
    let dir = std::env::temp_dir().join(format!("reviews-nlp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("labels.json");
    std::fs::write(
        &path,
        r#"{
          "temperature": 0.05,
          "informativeness": {"center": 0.35, "scale": 0.05, "generic": ["Great."]},
          "topics": [
            {"id": "battery", "name": "Battery", "description": "Battery life and charging."},
            {"id": "screen", "name": "Screen", "description": "The display: brightness, colours, resolution."}
          ]
        }"#,
    )
    .unwrap();
    let config = ZeroShotConfig::from_path(&path).unwrap();
    let c = ZeroShotClassifier::new(encoder(), config).unwrap();
    let s = c
        .classify(&[
            "The battery barely lasts half a day.",
            "The display is too dim outdoors.",
        ])
        .unwrap();
    assert_eq!(top_topic(&c, &s[0].topic_scores).0, "battery");
    assert_eq!(top_topic(&c, &s[1].topic_scores).0, "screen");
    std::fs::remove_dir_all(dir).ok();
}

/// The model is English-only: this records what French reviews get (see README), and only
/// checks that the outputs are well-formed.
#[test]
#[ignore = "needs the model: scripts/test fetches it (scripts/fetch-model.sh)"]
fn french_reviews_outcome_is_recorded() {
    let cases = [
        (
            "Arrivé en retard et le carton était écrasé.",
            "delivery_packaging",
        ),
        (
            "Colis livré avec deux semaines de retard.",
            "delivery_packaging",
        ),
        ("Très bon rapport qualité prix.", "value_for_money"),
        ("Beaucoup trop cher pour ce que c'est.", "value_for_money"),
        (
            "Le service client n'a jamais répondu à mes mails.",
            "customer_service",
        ),
        ("Très facile à installer et à utiliser.", "ease_of_use"),
        ("Cassé au bout de deux semaines.", "durability"),
        (
            "Les coutures sont de mauvaise qualité, le tissu est fin.",
            "product_quality",
        ),
    ];
    let c = classifier();
    let texts: Vec<&str> = cases.iter().map(|(t, _)| *t).collect();
    let signals = c.classify(&texts).unwrap();
    let mut hits = 0;
    for ((text, expected), s) in cases.iter().zip(&signals) {
        let (got, score) = top_topic(c, &s.topic_scores);
        hits += usize::from(got == *expected);
        let mark = if got == *expected { "ok " } else { "NO " };
        println!(
            "{mark} expected {expected:>18}  got {got:>18} {score:.2}  inf {:.2}  {text}",
            s.informativeness
        );
        assert!(s.topic_scores.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    println!("French: {hits}/{} on the expected topic", cases.len());

    // Informativeness is measured against English vague verdicts, which French text is far
    // from whatever it says: record how vague French verdicts score.
    let vague = ["Très bien.", "Parfait, je recommande.", "Nul."];
    for (text, s) in vague.iter().zip(c.classify(&vague).unwrap()) {
        println!("vague French: inf {:.2}  {text}", s.informativeness);
    }
}

#[test]
#[ignore = "needs the model: scripts/test fetches it (scripts/fetch-model.sh)"]
fn int8_model_agrees_with_the_fp32_export() {
    let int8 = SentenceEncoder::new(config("all-MiniLM-L6-v2-int8"))
        .unwrap_or_else(|e| panic!("int8 model: {e}"));
    let texts = [
        "Arrived late and the box was crushed.",
        "Great value for the price.",
        "The customer service team never answered my emails.",
        "It fell apart after a month.",
    ];
    let a = encoder().encode(&texts).unwrap();
    let b = int8.encode(&texts).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let cos = a.row(i).dot(&b.row(i));
        println!("int8 vs fp32 cosine {cos:.5}  {t}");
        assert!(cos > 0.99, "{t:?}: cosine {cos}");
    }
}
