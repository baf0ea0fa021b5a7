//! The lake port: object storage as the pipeline needs it, with atomic puts and
//! compare-and-swap. Adapters: `reviews_lake::{LocalLake, S3Lake, MemoryLake}`.

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

use crate::error::{Classified, ErrorClass};

#[derive(Debug, Error)]
pub enum LakeError {
    #[error("object {0:?} does not exist")]
    NotFound(String),
    #[error("invalid object key {key:?}: {why}")]
    InvalidKey { key: String, why: &'static str },
    #[error("lake I/O error on {key:?}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("S3 {operation} on {key:?} failed: {message}")]
    S3 {
        operation: &'static str,
        key: String,
        message: String,
        /// A throttle, timeout or 5xx: worth retrying.
        retryable: bool,
    },
    #[error("invalid lake URI {0:?}: expected a folder path, file://PATH or s3://BUCKET[/PREFIX]")]
    Uri(String),
    /// A conditional write lost: the object changed (or appeared) since it was read.
    #[error("conditional write of {key:?} refused: the object changed since it was read")]
    Conflict { key: String },
    /// A state document that does not parse: never overwritten blindly.
    #[error("state object {key:?} is invalid: {message}")]
    Corrupt { key: String, message: String },
}

impl LakeError {
    /// Whether retrying the same call may succeed (a transient service fault).
    pub fn is_retryable(&self) -> bool {
        match self {
            LakeError::S3 { retryable, .. } => *retryable,
            LakeError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }
}

/// The version of an object as the store names it: the S3 ETag, or a digest of the content
/// for the local lake. Only compared for equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub String);

/// When a conditional write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Only if the object does not exist (S3 `If-None-Match: *`).
    Absent,
    /// Only if the object is still at this version (S3 `If-Match: <etag>`).
    Matches(Version),
}

/// Object storage as the pipeline needs it. Keys are `/`-separated relative paths such as
/// `cleaned/run=2026-11-29-daily/part-00000.parquet`. A `put` is atomic: a reader sees the old
/// object or the new one, never a partial one.
#[async_trait]
pub trait Lake: Send + Sync {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), LakeError>;
    async fn get(&self, key: &str) -> Result<Bytes, LakeError>;
    /// The object and its version, or `None` when it does not exist.
    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>, LakeError>;
    /// Write only if `condition` holds at the moment of the write (compare-and-swap); a lost
    /// race is [`LakeError::Conflict`]. Returns the new version.
    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        condition: &PutCondition,
    ) -> Result<Version, LakeError>;
    /// Size in bytes, or `None` when the object does not exist.
    async fn size(&self, key: &str) -> Result<Option<u64>, LakeError>;
    /// Keys under a prefix, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, LakeError>;
    /// Delete an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), LakeError>;
    /// Delete the earlier versions a versioned store keeps of an object after it was
    /// overwritten or deleted (S3 with versioning on), so that rewriting an object really
    /// removes what it held (an erasure). The current version stays; a deleted object loses
    /// every version. Returns how many versions were removed; a store without versions has
    /// none.
    async fn delete_earlier_versions(&self, key: &str) -> Result<u64, LakeError> {
        validate_key(key)?;
        Ok(0)
    }
    /// The absolute location of `key`, as a reader outside this process names it:
    /// `s3://BUCKET/PREFIX/KEY` on S3, the absolute file path on the local lake (what an
    /// Athena symlink listing or a DuckDB query reads). Does not check that the object exists.
    fn location(&self, key: &str) -> Result<String, LakeError>;
    /// Where this lake lives, for logs and summaries (never credentials).
    fn describe(&self) -> String;
}

impl Classified for LakeError {
    fn class(&self) -> ErrorClass {
        ErrorClass::of(LakeError::is_retryable(self))
    }
}

/// Check that a key is a safe relative object key: no empty, `.` or `..` segments, no
/// backslashes or control characters, at most 1024 bytes.
pub fn validate_key(key: &str) -> Result<(), LakeError> {
    let bad = |why| {
        Err(LakeError::InvalidKey {
            key: key.to_owned(),
            why,
        })
    };
    if key.is_empty() || key.len() > 1024 {
        return bad("empty or longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("absolute");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("control character or backslash");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("empty, '.' or '..' segment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        assert!(validate_key("raw/run=x/part-00000.parquet").is_ok());
        for k in ["", "/abs", "a//b", "a/../b", "./a", "a\\b", "a\nb"] {
            assert!(validate_key(k).is_err(), "{k:?}");
        }
    }
}
