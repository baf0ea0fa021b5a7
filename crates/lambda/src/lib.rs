//! What every stage Lambda shares, so that each `functions/<stage>/src/main.rs` stays a few
//! lines: build the configuration and clients once per cold start, then `lambda_runtime::run`.
//!
//! - [`FunctionError`]: every failure leaves the function as one of two stable error types,
//!   `RetryableError` or `FatalError`, which statemachine.asl.json matches in Retry and Catch.
//! - [`Secret`]: a value (a database URI) read from AWS Secrets Manager on first use and cached
//!   for the life of the process; locally it may come from the environment instead.
//! - [`parse_input`]: the event as the stage's typed input, or a `FatalError` naming the field.
//! - [`init_logging`]: JSON lines on stderr (CloudWatch adds the time).

pub mod error;
pub mod secrets;

use std::sync::Arc;

use reviews_lake::Lake;
use serde::de::DeserializeOwned;

pub use error::FunctionError;
pub use secrets::{Secret, SecretsClient};

/// Structured JSON logs, level from `RUST_LOG` (default `info`). Never log a secret: the
/// configuration types print hosts and names only.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .with_writer(std::io::stderr)
        .init();
}

/// A required environment variable, or an error that names it.
pub fn env_required(name: &str) -> Result<String, FunctionError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(FunctionError::fatal(format!(
            "environment variable {name} is not set"
        ))),
    }
}

/// The lake named by `REVIEWS_LAKE_URI` (`s3://bucket[/prefix]`, or a folder locally). The
/// S3 client is built here, once; it reaches the emulator when `AWS_ENDPOINT_URL` is set.
pub async fn lake_from_env() -> Result<Arc<dyn Lake>, FunctionError> {
    let uri = env_required("REVIEWS_LAKE_URI")?;
    reviews_lake::open_lake(&uri)
        .await
        .map_err(|e| FunctionError::fatal(format!("REVIEWS_LAKE_URI: {e}")))
}

/// The Lambda event as the stage's input type. Anything else is a `FatalError` (a retry cannot
/// fix a malformed payload), with serde's message naming the field.
pub fn parse_input<T: DeserializeOwned>(event: serde_json::Value) -> Result<T, FunctionError> {
    serde_json::from_value(event)
        .map_err(|e| FunctionError::fatal(format!("invalid stage input: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Input {
        run_id: String,
        index: usize,
    }

    #[test]
    fn malformed_input_is_fatal_and_names_the_field() {
        let err = parse_input::<Input>(serde_json::json!({"run_id": "r1"})).unwrap_err();
        assert_eq!(err.error_type(), "FatalError");
        assert!(err.to_string().contains("index"), "{err}");
        let err =
            parse_input::<Input>(serde_json::json!({"run_id": "r1", "index": "x"})).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        assert!(parse_input::<Input>(serde_json::json!({"run_id": "r", "index": 2})).is_ok());
    }

    #[test]
    fn missing_variable_is_named() {
        let err = env_required("REVIEWS_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert!(
            err.to_string()
                .contains("REVIEWS_TEST_SURELY_UNSET_VARIABLE")
        );
        assert_eq!(err.error_type(), "FatalError");
    }
}
