//! The stores of the lake port ([`reviews_ports::Lake`]): a local folder (the embedded
//! default), S3, and memory (the fast test tier), and [`open_lake`] to pick one from a URI.

pub mod local;
pub mod memory;
pub mod s3;

use std::sync::Arc;

pub use local::LocalLake;
pub use memory::MemoryLake;
use reviews_ports::{Lake, LakeError, PutCondition, Version, validate_key};
pub use s3::S3Lake;

/// Open a lake from a URI: `s3://bucket[/prefix]` for S3 (the endpoint and credentials come
/// from the usual AWS configuration, so `AWS_ENDPOINT_URL` points it at an emulator), or a
/// folder path / `file://path` for the local lake.
pub async fn open_lake(uri: &str) -> Result<Arc<dyn Lake>, LakeError> {
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(LakeError::Uri(uri.to_owned()));
        }
        return Ok(Arc::new(S3Lake::from_env(bucket, prefix).await));
    }
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    if path.is_empty() || uri.contains("://") && !uri.starts_with("file://") {
        return Err(LakeError::Uri(uri.to_owned()));
    }
    Ok(Arc::new(LocalLake::new(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uris() {
        assert!(open_lake("http://x").await.is_err());
        assert!(open_lake("s3://").await.is_err());
        assert!(
            open_lake("./lake")
                .await
                .unwrap()
                .describe()
                .contains("lake")
        );
    }
}
