use std::path::PathBuf;

use reviews_domain::classify::ClassifyError;
use thiserror::Error;

/// Everything that can go wrong between a config file and an embedding.
#[derive(Debug, Error)]
pub enum NlpError {
    #[error("model file {path} is missing ({what}); run scripts/fetch-model.sh to fetch it")]
    ModelFileMissing { path: PathBuf, what: &'static str },

    #[error(
        "ONNX Runtime library {path} is missing; run scripts/fetch-model.sh to fetch it, \
         or point ORT_DYLIB_PATH at a libonnxruntime.so of version 1.31 or newer"
    )]
    RuntimeMissing { path: PathBuf },

    #[error("failed to load the ONNX Runtime library {path}: {reason}")]
    RuntimeLoad { path: PathBuf, reason: String },

    #[error(
        "ONNX Runtime is already loaded from {loaded}; this process cannot also load {requested}"
    )]
    RuntimeConflict { loaded: PathBuf, requested: PathBuf },

    #[error("failed to load model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },

    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    #[error("inference failed: {0}")]
    Inference(String),

    #[error("invalid NLP configuration: {0}")]
    Config(String),

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<ort::Error> for NlpError {
    fn from(e: ort::Error) -> Self {
        NlpError::Inference(e.to_string())
    }
}

impl From<NlpError> for ClassifyError {
    fn from(e: NlpError) -> Self {
        match e {
            // A missing or unloadable model is a setup problem, not a bad input.
            NlpError::ModelFileMissing { .. }
            | NlpError::RuntimeMissing { .. }
            | NlpError::RuntimeLoad { .. }
            | NlpError::RuntimeConflict { .. }
            | NlpError::ModelLoad { .. }
            | NlpError::Config(_)
            | NlpError::Io { .. } => ClassifyError::Unavailable(e.to_string()),
            NlpError::Tokenizer(_) | NlpError::Inference(_) => {
                ClassifyError::Inference(e.to_string())
            }
        }
    }
}

pub type Result<T, E = NlpError> = std::result::Result<T, E>;
