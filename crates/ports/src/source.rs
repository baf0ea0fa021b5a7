//! The source ports: rows as a source hands them over, and a feed of what changed since a
//! position (the database source). The stages turn them into raw/ parts; the adapters only
//! read.

use async_trait::async_trait;
use reviews_domain::RawReview;
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// Review rows, as read, in source order, a batch at a time (memory: one batch).
#[async_trait]
pub trait RawSource: Send {
    /// The next rows; `None` at the end. An error ends the read: nothing is published from a
    /// partial extract.
    async fn next_batch(&mut self) -> Result<Option<Vec<RawReview>>, PortError>;

    /// How many rows are left, when the source knows (for progress).
    fn size_hint(&self) -> Option<u64> {
        None
    }
}

/// A review deleted at the source (or moved away from a product), with the product it was
/// under when the source knows it: the deletion then touches one bucket, not all of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Deletion {
    pub review_id: String,
    #[serde(default)]
    pub product_id: Option<String>,
}

impl Deletion {
    pub fn of(review_id: impl Into<String>, product_id: Option<String>) -> Self {
        Self {
            review_id: review_id.into(),
            product_id,
        }
    }
}

/// What to read: the changes after `from`, up to and including `upto`. Positions are the
/// feed's own (JSON text it wrote in [`ReadEnd::position`]); the stages store them and hand
/// them back without looking inside. `from: None` reads everything (a full extract);
/// `upto: None` reads up to now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadRange {
    pub from: Option<String>,
    pub upto: Option<String>,
}

/// Where a read ended, known once its rows are consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadEnd {
    /// Where the next read starts (the last row read, or `from` when nothing was newer).
    pub position: Option<String>,
    /// The reviews deleted in the range, when the feed reports deletions (`None`: it does
    /// not; a full read reports none, its rows being the whole dataset).
    pub deletions: Option<Vec<Deletion>>,
}

/// One consistent read of a [`ChangeFeed`]: its rows, then where it ended.
#[async_trait]
pub trait ChangeRead: RawSource {
    /// Call after the rows are exhausted.
    async fn finish(self: Box<Self>) -> Result<ReadEnd, PortError>;
}

/// A source that reports what changed since a position: the rows created or updated, and
/// the rows deleted, in one consistent snapshot.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    async fn read(&self, range: &ReadRange) -> Result<Box<dyn ChangeRead>, PortError>;

    /// Where the feed reads from, for logs (never credentials).
    fn describe(&self) -> String;
}
