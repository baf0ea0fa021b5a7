//! The ports: what the stages need from the outside world, as traits, with one typed error
//! class. This crate is a leaf (it depends on the domain types only): the stages depend on it,
//! and each adapter implements it (`reviews-lake` the lake on a folder, S3 or memory,
//! `reviews-postgres` the change feed, `reviews-archive` the archive, `reviews-nlp` the
//! classifier). No port names a concrete service.
//!
//! | port | trait | adapters |
//! |------|-------|----------|
//! | the lake | [`Lake`] | `reviews_lake::{LocalLake, S3Lake, MemoryLake}` |
//! | rows of a source | [`RawSource`] | `reviews_stages::extract::IterSource` (files, generators) |
//! | changes since a position | [`ChangeFeed`] | `reviews_postgres::PgFeed` |
//! | the raw archive | [`RawArchive`] | `reviews_archive::Archive` (MongoDB) |
//! | the topic classifier | [`TopicClassifier`] | `reviews_nlp` (ONNX), `reviews_domain` keywords |

pub mod archive;
pub mod error;
pub mod lake;
pub mod source;

pub use archive::{RawArchive, Upserted};
pub use error::{Classified, ErrorClass, FATAL_ERROR, PortError, RETRYABLE_ERROR};
pub use lake::{Lake, LakeError, PutCondition, Version, validate_key};
/// The classifier port is synchronous on purpose: inference is CPU work, which the score
/// stage runs on blocking threads; an async signature would only hide that.
pub use reviews_domain::classify::{ClassifyError, TextSignals, Topic, TopicClassifier};
pub use source::{ChangeFeed, ChangeRead, Deletion, RawSource, ReadEnd, ReadRange};
