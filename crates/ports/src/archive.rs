//! The archive port: where raw rows are kept, as read, for audit. The archive stage
//! (`reviews_stages::archive`) decides what to archive and records it in the lake; the
//! adapter only writes and deletes documents.

use async_trait::async_trait;
use reviews_domain::RawReview;

use crate::error::PortError;

/// How an upsert went: documents created (new review ids) and replaced (already archived).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upserted {
    pub inserted: u64,
    pub replaced: u64,
}

#[async_trait]
pub trait RawArchive: Send + Sync {
    /// Make the store ready (indexes); idempotent, called once per archive stage.
    async fn prepare(&self) -> Result<(), PortError>;

    /// Keep `rows` of run `run_id`, one document per review id: archiving a row again
    /// replaces its document.
    async fn upsert(&self, run_id: &str, rows: &[RawReview]) -> Result<Upserted, PortError>;

    /// Right to erasure: delete every document of a buyer (the trimmed buyer id). Returns how
    /// many were deleted.
    async fn erase_buyer(&self, buyer_key: &str) -> Result<u64, PortError>;
}
