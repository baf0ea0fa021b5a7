//! Review sources for the embedded default: readers for public Amazon review exports (TSV and
//! CSV) and a seeded generator of realistic synthetic reviews.

pub mod amazon;
pub mod synthetic;

pub use amazon::{AmazonReader, SourceError};
pub use synthetic::{SyntheticConfig, SyntheticReviews};
