//! Secrets (database URIs with their passwords) from AWS Secrets Manager: read once per cold
//! start, on first use, then cached for the life of the process. Environment variables only
//! *name* the secrets (`REVIEWS_PG_SECRET_ID`, `REVIEWS_MONGO_SECRET_ID`). For local runs a
//! secret may instead be given by value in another variable (`REVIEWS_PG_URL`, ...): that is
//! never set in the Terraform deployment.
//!
//! A secret's value is the URI itself, or a JSON object with a `uri` (or `url`) field.

use std::fmt;
use std::sync::Arc;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::OnceCell;

use crate::error::FunctionError;

/// The Secrets Manager client, built once (it reaches the emulator when `AWS_ENDPOINT_URL`
/// is set).
#[derive(Clone)]
pub struct SecretsClient {
    client: Client,
}

impl SecretsClient {
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self {
            client: Client::new(&config),
        }
    }

    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The current value of a secret. Throttling, timeouts and server errors are retryable;
    /// a missing secret, no permission or an empty value are not.
    pub async fn get(&self, id: &str) -> Result<String, FunctionError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                let retryable = match &e {
                    SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
                    SdkError::ServiceError(s) => matches!(
                        s.err().code(),
                        Some("ThrottlingException" | "InternalServiceError")
                    ),
                    SdkError::ResponseError(_) => true,
                    _ => false,
                };
                let code = e.code().unwrap_or("unknown").to_owned();
                let msg = e.message().map(str::to_owned).unwrap_or_else(|| {
                    // DisplayErrorContext names the cause (connection refused, ...) without
                    // any request content.
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()
                });
                FunctionError::classified(
                    retryable,
                    format!("Secrets Manager GetSecretValue {id}: {code}: {msg}"),
                )
            })?;
        let raw = out
            .secret_string()
            .ok_or_else(|| FunctionError::fatal(format!("secret {id} has no string value")))?;
        value_of(id, raw)
    }
}

/// The URI inside a secret value: the value itself, or the `uri`/`url` field of a JSON object.
fn value_of(id: &str, raw: &str) -> Result<String, FunctionError> {
    let raw = raw.trim();
    if raw.starts_with('{') {
        let doc: serde_json::Value = serde_json::from_str(raw)
            .map_err(|_| FunctionError::fatal(format!("secret {id} is not valid JSON")))?;
        return ["uri", "url"]
            .iter()
            .find_map(|k| doc.get(*k).and_then(|v| v.as_str()))
            .map(str::to_owned)
            .ok_or_else(|| {
                FunctionError::fatal(format!("secret {id}: JSON value without a \"uri\" field"))
            });
    }
    if raw.is_empty() {
        return Err(FunctionError::fatal(format!("secret {id} is empty")));
    }
    Ok(raw.to_owned())
}

enum Source {
    Manager { client: SecretsClient, id: String },
    Value(String),
}

/// One secret setting, resolved on first use and cached. Its `Debug` never shows the value.
pub struct Secret {
    what: &'static str,
    source: Source,
    cached: OnceCell<String>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match &self.source {
            Source::Manager { id, .. } => format!("secretsmanager:{id}"),
            Source::Value(_) => "environment".to_owned(),
        };
        f.debug_struct("Secret")
            .field("what", &self.what)
            .field("from", &from)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// `id_var` names a Secrets Manager secret (production); when it is unset, `value_var`
    /// holds the value itself (local runs). Neither set: a fatal error naming both.
    pub async fn from_env(
        what: &'static str,
        id_var: &str,
        value_var: &str,
    ) -> Result<Arc<Self>, FunctionError> {
        let id = std::env::var(id_var).ok().filter(|v| !v.trim().is_empty());
        let value = std::env::var(value_var)
            .ok()
            .filter(|v| !v.trim().is_empty());
        let source = match (id, value) {
            (Some(id), _) => Source::Manager {
                client: SecretsClient::from_env().await,
                id,
            },
            (None, Some(v)) => Source::Value(v),
            (None, None) => {
                return Err(FunctionError::fatal(format!(
                    "{what}: set {id_var} (a Secrets Manager secret id) or, locally, {value_var}"
                )));
            }
        };
        Ok(Arc::new(Self {
            what,
            source,
            cached: OnceCell::new(),
        }))
    }

    pub fn from_manager(what: &'static str, client: SecretsClient, id: impl Into<String>) -> Self {
        Self {
            what,
            source: Source::Manager {
                client,
                id: id.into(),
            },
            cached: OnceCell::new(),
        }
    }

    /// The value: fetched on the first call, from the cache afterwards. A failed fetch is not
    /// cached, so the next invocation tries again.
    pub async fn get(&self) -> Result<&str, FunctionError> {
        let v = self
            .cached
            .get_or_try_init(|| async {
                match &self.source {
                    Source::Value(v) => Ok::<_, FunctionError>(v.clone()),
                    Source::Manager { client, id } => {
                        let v = client.get(id).await?;
                        tracing::info!(secret = %id, what = self.what, "secret read");
                        Ok(v)
                    }
                }
            })
            .await?;
        Ok(v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values() {
        assert_eq!(
            value_of("s", " postgres://u:p@h/db\n").unwrap(),
            "postgres://u:p@h/db"
        );
        assert_eq!(
            value_of("s", r#"{"uri": "mongodb://h"}"#).unwrap(),
            "mongodb://h"
        );
        assert_eq!(
            value_of("s", r#"{"url": "postgres://h"}"#).unwrap(),
            "postgres://h"
        );
        let e = value_of("s", r#"{"password": "hunter2"}"#).unwrap_err();
        assert_eq!(e.error_type(), "FatalError");
        assert!(!e.to_string().contains("hunter2"));
        assert!(value_of("s", "  ").is_err());
        assert!(
            !value_of("s", "{not json hunter2")
                .unwrap_err()
                .to_string()
                .contains("hunter2")
        );
    }

    #[tokio::test]
    async fn debug_never_shows_the_value() {
        let s = Secret {
            what: "PostgreSQL URI",
            source: Source::Value("postgres://u:hunter2@h/db".into()),
            cached: OnceCell::new(),
        };
        assert_eq!(s.get().await.unwrap(), "postgres://u:hunter2@h/db");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
