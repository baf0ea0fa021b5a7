//! What every stage Lambda shares, so that each `functions/<stage>/src/main.rs` stays a few
//! lines: build the configuration and clients once per cold start, then `lambda_runtime::run`.
//!
//! - [`FunctionError`]: every failure leaves the function as one of two stable error types,
//!   `RetryableError` or `FatalError`, which statemachine.asl.json matches in Retry and Catch.
//! - [`Secret`]: a value (a database URI) read from AWS Secrets Manager on first use and cached
//!   for a TTL, read again at once when a login is refused (rotation); locally it may come from
//!   the environment instead.
//! - [`parse_input`]: the event as the stage's typed input, or a `FatalError` naming the field.
//! - [`init_logging`]: JSON lines (or text) on stderr at the level Lambda's logging controls or
//!   `RUST_LOG` set (CloudWatch adds the time).

pub mod error;
pub mod secrets;
pub mod xray;

use std::sync::Arc;

use reviews_lake::Lake;
use serde::de::DeserializeOwned;

pub use error::FunctionError;
pub use secrets::{DEFAULT_SECRET_TTL, Secret, SecretKind, SecretsClient, secret_ttl_from_env};

/// How a function logs, from its environment: the filter is `RUST_LOG` (env-filter syntax)
/// when set, else the level of Lambda's logging controls (`AWS_LAMBDA_LOG_LEVEL`: TRACE, DEBUG,
/// INFO, WARN, ERROR or FATAL), else `info`; the format is JSON lines unless
/// `AWS_LAMBDA_LOG_FORMAT` is `Text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub filter: String,
    pub json: bool,
}

impl LogSettings {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let filter = set("RUST_LOG").unwrap_or_else(|| {
            match set("AWS_LAMBDA_LOG_LEVEL")
                .map(|l| l.trim().to_ascii_uppercase())
                .as_deref()
            {
                Some("TRACE") => "trace",
                Some("DEBUG") => "debug",
                Some("WARN") => "warn",
                Some("ERROR" | "FATAL") => "error",
                _ => "info",
            }
            .to_owned()
        });
        let json =
            !set("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.trim().eq_ignore_ascii_case("text"));
        Self { filter, json }
    }
}

/// Structured logs on stderr as [`LogSettings`] says (CloudWatch adds the time), and, when
/// Lambda's active tracing runs an X-Ray daemon, the spans as X-Ray subsegments
/// ([`xray::XRayLayer`]). Never log a secret: the configuration types print hosts and names
/// only.
pub fn init_logging() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let settings = LogSettings::from_vars(|name| std::env::var(name).ok());
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .without_time()
        .with_writer(std::io::stderr);
    let fmt = if settings.json {
        fmt.json().flatten_event(true).boxed()
    } else {
        fmt.with_ansi(false).boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(xray::XRayLayer::from_env())
        .init();
}

#[cfg(test)]
mod log_tests {
    use super::LogSettings;

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        LogSettings::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn lambda_logging_controls_are_honoured_and_rust_log_wins() {
        assert_eq!(
            settings(&[]),
            LogSettings {
                filter: "info".into(),
                json: true
            }
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]).filter,
            "debug"
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "fatal")]).filter,
            "error"
        );
        assert_eq!(settings(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")]).filter, "warn");
        assert_eq!(
            settings(&[
                ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
                ("RUST_LOG", "reviews=trace")
            ])
            .filter,
            "reviews=trace"
        );
        assert_eq!(
            settings(&[("RUST_LOG", " ")]).filter,
            "info",
            "blank means unset"
        );
        assert!(!settings(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).json);
        assert!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).json);
    }
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
    reviews_stores::open_lake(&uri)
        .await
        .map_err(|e| FunctionError::fatal(format!("REVIEWS_LAKE_URI: {e}")))
}

/// The archive writer's MongoDB URI (`REVIEWS_MONGO_SECRET_ID`, or locally `REVIEWS_MONGO_URI`)
/// and how long to wait for a usable server (`REVIEWS_MONGO_TIMEOUT_SECS`, default 10 s): what
/// the archive and erase functions both read at cold start.
pub async fn mongo_settings_from_env() -> Result<(Arc<Secret>, std::time::Duration), FunctionError>
{
    let uri = Secret::from_env(
        "MongoDB URI of the archive writer",
        SecretKind::Mongo,
        "REVIEWS_MONGO_SECRET_ID",
        "REVIEWS_MONGO_URI",
    )
    .await?;
    let timeout = match std::env::var("REVIEWS_MONGO_TIMEOUT_SECS") {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or_else(|| {
                FunctionError::fatal(format!(
                    "REVIEWS_MONGO_TIMEOUT_SECS: not a positive number: {v:?}"
                ))
            })?,
        Err(_) => 10.0,
    };
    Ok((uri, std::time::Duration::from_secs_f64(timeout)))
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
