//! The domain of the reviews pipeline: the review record, its Arrow schemas, the cleaning rules
//! with their reject reasons, the topic-classifier seam and the relevance score.
//!
//! Nothing here does I/O: every function is pure, so the same rules run in a Lambda, in the
//! local runner and under a fuzzer.

pub mod classify;
pub mod clean;
pub mod fields;
pub mod lang;
pub mod lexicon;
pub mod record;
pub mod schema;
pub mod score;
pub mod text;
pub mod topics;

pub use classify::{ClassifyError, TextSignals, Topic, TopicClassifier};
pub use clean::{CleanOutcome, Cleaner, IdKey, RejectReason, Rejected};
pub use record::{RawReview, Review};
