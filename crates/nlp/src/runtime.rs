//! Loading the ONNX Runtime shared library (the `load-dynamic` feature of `ort`).
//!
//! The library comes from the PyPI `onnxruntime==1.31.1` wheel (scripts/fetch-model.sh); `ort`
//! never downloads anything. A process can load one library only, so the environment is built
//! once and shared by every session.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

use crate::error::{NlpError, Result};

/// File name of the runtime library inside the models directory.
pub const ORT_LIBRARY_FILE: &str = "onnxruntime/libonnxruntime.so.1.31.1";

static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The runtime library to load: `ORT_DYLIB_PATH` if set, else the one under `models_dir`.
pub fn default_library_path(models_dir: &Path) -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => models_dir.join(ORT_LIBRARY_FILE),
    }
}

/// The process-wide ONNX Runtime environment, loading `library` on first use.
///
/// Later calls with the same path return the same environment; a different path is an error
/// rather than a silent reuse of the first library.
pub fn environment(library: &Path) -> Result<Environment> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((loaded, env)) = slot.as_ref() {
        if same_file(loaded, library) {
            return Ok(env.clone());
        }
        return Err(NlpError::RuntimeConflict {
            loaded: loaded.clone(),
            requested: library.to_path_buf(),
        });
    }
    if !library.is_file() {
        return Err(NlpError::RuntimeMissing {
            path: library.to_path_buf(),
        });
    }
    let load_err = |reason: String| NlpError::RuntimeLoad {
        path: library.to_path_buf(),
        reason,
    };
    let env = ort::init_from(library)
        .map_err(|e| load_err(e.to_string()))?
        .with_name("reviews-nlp")
        .build()
        .map_err(|e| load_err(e.to_string()))?;
    tracing::info!(library = %library.display(), "loaded ONNX Runtime");
    *slot = Some((library.to_path_buf(), env.clone()));
    Ok(env)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
