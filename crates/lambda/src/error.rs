//! The one error type a stage Lambda returns, with the stable `errorType` the state machine
//! matches: `RetryableError` (a service down, a throttle: Retry with backoff) or `FatalError`
//! (bad input, invalid data: Catch into the failure path).

use lambda_runtime::Diagnostic;
use reviews_ports::{Classified, FATAL_ERROR, RETRYABLE_ERROR};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FunctionError {
    error_type: &'static str,
    message: String,
}

impl FunctionError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            error_type: RETRYABLE_ERROR,
            message: message.into(),
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            error_type: FATAL_ERROR,
            message: message.into(),
        }
    }

    /// From any typed error that knows its class (`PgError`, `ArchiveError`, ...).
    pub fn classified(retryable: bool, message: impl Into<String>) -> Self {
        if retryable {
            Self::retryable(message)
        } else {
            Self::fatal(message)
        }
    }

    pub fn error_type(&self) -> &'static str {
        self.error_type
    }

    pub fn is_retryable(&self) -> bool {
        self.error_type == RETRYABLE_ERROR
    }
}

/// Any classified error (a stage's, a port's, an adapter's) keeps its class.
impl<E: Classified> From<E> for FunctionError {
    fn from(e: E) -> Self {
        Self::classified(e.is_retryable(), e.to_string())
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Self {
        // Logged here once, with its class, so every failure shows up in the function's log.
        tracing::error!(error_type = e.error_type, error = %e.message, "stage failed");
        Diagnostic {
            error_type: e.error_type.to_owned(),
            error_message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reviews_ports::{LakeError, PortError};

    #[test]
    fn classified_errors_keep_their_class() {
        let slow = PortError::new(LakeError::S3 {
            operation: "PutObject",
            key: "raw/x".into(),
            message: "SlowDown".into(),
            retryable: true,
        });
        let d: Diagnostic = FunctionError::from(slow).into();
        assert_eq!(d.error_type, "RetryableError");
        assert!(d.error_message.contains("SlowDown"));
        let bad: Diagnostic = FunctionError::from(LakeError::NotFound("raw/x".into())).into();
        assert_eq!(bad.error_type, "FatalError");
        assert_eq!(bad.error_message, "object \"raw/x\" does not exist");
    }
}
