//! Stage errors: typed, and sorted into the two classes the state machine acts on.

use reviews_domain::ClassifyError;
use reviews_lake::LakeError;
use reviews_lake::parquet_io::ParquetIoError;
pub use reviews_ports::{Classified, ErrorClass, FATAL_ERROR, PortError, RETRYABLE_ERROR};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StageError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{key}: {source}")]
    Parquet {
        key: String,
        #[source]
        source: ParquetIoError,
    },
    #[error("invalid stage input: {0}")]
    Input(String),
    #[error("validation failed: {0}")]
    Validation(String),
    /// Refused to protect the live state: another run holds the lease or published since.
    #[error("refused: {0}")]
    Conflict(String),
    /// Another run holds the run lease: this one must not run the stages (nothing is lost:
    /// the watermark has not moved, the next run extracts the same rows).
    #[error("another run ({holder}) holds the lease until {expires_at}: nothing done")]
    LeaseHeld {
        holder: reviews_lake::RunId,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// A port's service failed (the database source, the archive): its class and typed
    /// error are kept ([`PortError::downcast_ref`]).
    #[error("{0}")]
    Source(#[from] PortError),
    #[error("classifier: {0}")]
    Classify(#[from] ClassifyError),
    #[error("{0}")]
    Internal(String),
}

impl StageError {
    /// The class of the error (its `error_type`, which statemachine.asl.json matches in Retry
    /// and Catch, comes with [`Classified`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            StageError::Lake(e) => e.is_retryable(),
            StageError::Source(e) => e.is_retryable(),
            StageError::Classify(ClassifyError::Unavailable(_)) => false,
            _ => false,
        }
    }

    /// The adapter's typed error inside a [`StageError::Source`], when it is an `E`.
    pub fn source_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            StageError::Source(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }

    pub(crate) fn parquet(key: &str) -> impl FnOnce(ParquetIoError) -> StageError + '_ {
        move |source| StageError::Parquet {
            key: key.to_owned(),
            source,
        }
    }
}

impl Classified for StageError {
    fn class(&self) -> ErrorClass {
        ErrorClass::of(StageError::is_retryable(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let transient = StageError::Lake(LakeError::S3 {
            operation: "PutObject",
            key: "k".into(),
            message: "SlowDown".into(),
            retryable: true,
        });
        assert_eq!(transient.error_type(), RETRYABLE_ERROR);
        assert_eq!(StageError::Input("x".into()).error_type(), FATAL_ERROR);
        assert_eq!(
            StageError::Lake(LakeError::NotFound("k".into())).error_type(),
            FATAL_ERROR
        );
    }
}
