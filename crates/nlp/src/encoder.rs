//! Sentence embeddings: tokenizer + BERT encoder on ONNX Runtime + mean pooling + L2 norm.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ndarray::{Array2, ArrayView3, Axis};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{NlpError, Result};
use crate::runtime;

/// Directory of the default model inside the models directory.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";

/// Where the model and runtime live and how to run them. Every field has a default, so an empty
/// `[model]` table in a config file is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderConfig {
    /// Directory with `model.onnx` and `tokenizer.json`. Default: `$REVIEWS_MODEL_DIR/all-MiniLM-L6-v2`
    /// (`REVIEWS_MODEL_DIR` defaults to `models`, relative to the working directory).
    pub model_dir: PathBuf,
    /// The ONNX Runtime shared library. Default: `ORT_DYLIB_PATH`, else
    /// `$REVIEWS_MODEL_DIR/onnxruntime/libonnxruntime.so.1.31.1`.
    pub ort_library: PathBuf,
    /// Threads ONNX Runtime uses inside one inference (one per core is the usual best).
    pub intra_threads: usize,
    /// Texts are truncated to this many tokens, [CLS] and [SEP] included. 256 is what
    /// sentence-transformers uses for this model; reviews rarely reach it.
    pub max_length: usize,
    /// Texts per forward pass. Texts are sorted by token count first, so a batch pads little.
    pub batch_size: usize,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        let models = models_dir();
        EncoderConfig {
            model_dir: models.join(DEFAULT_MODEL),
            ort_library: runtime::default_library_path(&models),
            intra_threads: 2,
            max_length: 256,
            batch_size: 16,
        }
    }
}

/// `REVIEWS_MODEL_DIR`, or `models` (relative to the working directory).
pub fn models_dir() -> PathBuf {
    match std::env::var_os("REVIEWS_MODEL_DIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("models"),
    }
}

/// A sentence encoder: text in, unit-length embedding out.
///
/// Build it once per process (see [`SentenceEncoder::shared`]): loading the session costs about
/// a second, an inference a few milliseconds. The session sits behind a mutex because `ort`
/// runs need `&mut`; ONNX Runtime parallelises inside a run with `intra_threads`.
pub struct SentenceEncoder {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    /// Model inputs in the order the session declares them.
    inputs: Vec<ModelInput>,
    output: String,
    dim: usize,
    pad_id: i64,
    config: EncoderConfig,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ModelInput {
    Ids,
    Mask,
    TypeIds,
}

impl ModelInput {
    fn name(self) -> &'static str {
        match self {
            ModelInput::Ids => "input_ids",
            ModelInput::Mask => "attention_mask",
            ModelInput::TypeIds => "token_type_ids",
        }
    }
}

/// One tokenized text, before padding.
struct Tokens {
    ids: Vec<u32>,
    type_ids: Vec<u32>,
}

static SHARED: Mutex<Option<Arc<SentenceEncoder>>> = Mutex::new(None);

impl SentenceEncoder {
    /// Load the tokenizer and build the ONNX Runtime session.
    pub fn new(config: EncoderConfig) -> Result<Self> {
        if config.max_length < 2 || config.batch_size == 0 || config.intra_threads == 0 {
            return Err(NlpError::Config(format!(
                "max_length must be >= 2, batch_size and intra_threads >= 1 (got {}, {}, {})",
                config.max_length, config.batch_size, config.intra_threads
            )));
        }
        let model_path = require_file(&config.model_dir, "model.onnx", "the ONNX encoder")?;
        let tokenizer_path = require_file(
            &config.model_dir,
            "tokenizer.json",
            "the tokenizer of the model",
        )?;
        let tokenizer = load_tokenizer(&tokenizer_path, config.max_length)?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0) as i64;

        let env = runtime::environment(&config.ort_library)?;
        let load_err = |reason: String| NlpError::ModelLoad {
            path: model_path.clone(),
            reason,
        };
        let err = |e: ort::Error<_>| load_err(e.to_string());
        let session = Session::builder(&env)
            .map_err(|e| load_err(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(err)?
            .with_intra_threads(config.intra_threads)
            .map_err(err)?
            // One graph run at a time: inter-op threads would only compete with intra-op ones.
            .with_inter_threads(1)
            .map_err(err)?
            .commit_from_file(&model_path)
            .map_err(|e| load_err(e.to_string()))?;

        let inputs = session
            .inputs()
            .iter()
            .map(|i| {
                [ModelInput::Ids, ModelInput::Mask, ModelInput::TypeIds]
                    .into_iter()
                    .find(|m| m.name() == i.name())
                    .ok_or_else(|| load_err(format!("unexpected model input `{}`", i.name())))
            })
            .collect::<Result<Vec<_>>>()?;
        if !inputs.contains(&ModelInput::Ids) || !inputs.contains(&ModelInput::Mask) {
            return Err(load_err(
                "the model must take input_ids and attention_mask".into(),
            ));
        }
        let output = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .find(|n| n == "last_hidden_state")
            .ok_or_else(|| load_err("the model has no `last_hidden_state` output".into()))?;

        let mut encoder = SentenceEncoder {
            session: Mutex::new(session),
            tokenizer,
            inputs,
            output,
            dim: 0,
            pad_id,
            config,
        };
        // The hidden size is not always in the graph's static shape: ask the model once.
        encoder.dim = encoder.encode(&["dimension probe"])?.ncols();
        tracing::info!(
            model = %model_path.display(),
            dim = encoder.dim,
            intra_threads = encoder.config.intra_threads,
            "sentence encoder ready"
        );
        Ok(encoder)
    }

    /// The process-wide encoder, built on the first call. Later calls return the same one; a
    /// call with a different configuration is an error, since a second session would double
    /// the memory and the threads.
    pub fn shared(config: EncoderConfig) -> Result<Arc<SentenceEncoder>> {
        let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(enc) = slot.as_ref() {
            if enc.config == config {
                return Ok(Arc::clone(enc));
            }
            return Err(NlpError::Config(format!(
                "the shared encoder was already built with {:?}, not {config:?}",
                enc.config
            )));
        }
        let enc = Arc::new(SentenceEncoder::new(config)?);
        *slot = Some(Arc::clone(&enc));
        Ok(enc)
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Embedding width (384 for MiniLM-L6).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Token count of each text after truncation, [CLS] and [SEP] included.
    pub fn token_counts(&self, texts: &[&str]) -> Result<Vec<usize>> {
        Ok(self.tokenize(texts)?.iter().map(|t| t.ids.len()).collect())
    }

    /// Unit-length embeddings, one row per text, in input order.
    ///
    /// Texts are sorted by token count and cut into batches of `batch_size`, each padded to its
    /// own longest text, so short reviews never pay for long ones.
    pub fn encode(&self, texts: &[&str]) -> Result<Array2<f32>> {
        let tokens = self.tokenize(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| tokens[i].ids.len());

        let mut out: Option<Array2<f32>> = None;
        for chunk in order.chunks(self.config.batch_size) {
            let batch: Vec<&Tokens> = chunk.iter().map(|&i| &tokens[i]).collect();
            let emb = self.run_batch(&batch)?;
            let out = out.get_or_insert_with(|| Array2::zeros((texts.len(), emb.ncols())));
            for (row, &i) in emb.rows().into_iter().zip(chunk) {
                out.row_mut(i).assign(&row);
            }
        }
        Ok(out.unwrap_or_else(|| Array2::zeros((0, self.dim))))
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Tokens>> {
        let encodings = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|e| NlpError::Tokenizer(e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| Tokens {
                ids: e.get_ids().to_vec(),
                type_ids: e.get_type_ids().to_vec(),
            })
            .collect())
    }

    /// One forward pass over texts padded to the longest of them; returns pooled, normalised rows.
    fn run_batch(&self, batch: &[&Tokens]) -> Result<Array2<f32>> {
        let rows = batch.len();
        let cols = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0);
        let mut ids = Array2::<i64>::from_elem((rows, cols), self.pad_id);
        let mut mask = Array2::<i64>::zeros((rows, cols));
        let mut types = Array2::<i64>::zeros((rows, cols));
        for (r, t) in batch.iter().enumerate() {
            for (c, (&id, &ty)) in t.ids.iter().zip(&t.type_ids).enumerate() {
                ids[[r, c]] = id as i64;
                mask[[r, c]] = 1;
                types[[r, c]] = ty as i64;
            }
        }
        let mut feeds = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            let array = match input {
                ModelInput::Ids => &ids,
                ModelInput::Mask => &mask,
                ModelInput::TypeIds => &types,
            };
            feeds.push((input.name(), TensorRef::from_array_view(array.view())?));
        }

        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(feeds)?;
        let hidden = outputs[self.output.as_str()].try_extract_array::<f32>()?;
        let hidden = hidden
            .into_dimensionality::<ndarray::Ix3>()
            .map_err(|e| NlpError::Inference(format!("last_hidden_state is not 3-D: {e}")))?;
        if hidden.shape()[..2] != [rows, cols] {
            return Err(NlpError::Inference(format!(
                "last_hidden_state has shape {:?}, expected [{rows}, {cols}, _]",
                hidden.shape()
            )));
        }
        Ok(mean_pool_normalize(hidden, &mask))
    }
}

/// Mean of the token vectors of real (unmasked) tokens, then L2 normalisation: the
/// sentence-transformers recipe for all-MiniLM-L6-v2 (Pooling mean_tokens + Normalize).
pub fn mean_pool_normalize(hidden: ArrayView3<'_, f32>, mask: &Array2<i64>) -> Array2<f32> {
    let (rows, _, dim) = hidden.dim();
    let mut out = Array2::<f32>::zeros((rows, dim));
    for (r, mut row) in out.rows_mut().into_iter().enumerate() {
        let seq = hidden.index_axis(Axis(0), r);
        let mut count = 0.0f32;
        for (tok, &m) in seq.rows().into_iter().zip(mask.row(r)) {
            if m != 0 {
                row += &tok;
                count += 1.0;
            }
        }
        row /= count.max(1e-9);
        let norm = row.dot(&row).sqrt().max(1e-12);
        row /= norm;
    }
    out
}

fn require_file(dir: &Path, name: &str, what: &'static str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(NlpError::ModelFileMissing { path, what })
    }
}

/// The tokenizer, with the padding and truncation of tokenizer.json replaced: the file pads
/// every text to 128 tokens (6x the work for a short review) and truncates at 128 where the
/// model was used at 256. Padding is done per batch in [`SentenceEncoder::encode`].
fn load_tokenizer(path: &Path, max_length: usize) -> Result<Tokenizer> {
    let mut tokenizer =
        Tokenizer::from_file(path).map_err(|e| NlpError::Tokenizer(format!("{path:?}: {e}")))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(|e| NlpError::Tokenizer(e.to_string()))?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn pooling_ignores_padding_and_normalises() {
        // Two texts: the second has one real token and one padded position holding garbage.
        let mut hidden = Array3::<f32>::zeros((2, 2, 2));
        hidden[[0, 0, 0]] = 3.0;
        hidden[[0, 1, 1]] = 4.0;
        hidden[[1, 0, 0]] = 2.0;
        hidden[[1, 1, 1]] = 1000.0;
        let mask = ndarray::array![[1, 1], [1, 0]];
        let out = mean_pool_normalize(hidden.view(), &mask);
        assert!((out[[0, 0]] - 0.6).abs() < 1e-6 && (out[[0, 1]] - 0.8).abs() < 1e-6);
        assert_eq!(out.row(1).to_vec(), vec![1.0, 0.0]);
    }

    #[test]
    fn missing_model_names_the_file_and_the_fetch_script() {
        let config = EncoderConfig {
            model_dir: PathBuf::from("/nonexistent/model"),
            ..EncoderConfig::default()
        };
        let err = SentenceEncoder::new(config).err().expect("must fail");
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/model/model.onnx"), "{msg}");
        assert!(msg.contains("scripts/fetch-model.sh"), "{msg}");
    }

    #[test]
    fn missing_runtime_is_reported_as_such() {
        let err = runtime::environment(Path::new("/nonexistent/libonnxruntime.so"))
            .expect_err("must fail");
        assert!(matches!(err, NlpError::RuntimeMissing { .. }), "{err}");
        assert!(err.to_string().contains("scripts/fetch-model.sh"));
    }
}
