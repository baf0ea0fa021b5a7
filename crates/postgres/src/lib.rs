//! The PostgreSQL source of the pipeline.
//!
//! - [`setup`]: `reviews db setup`, the equivalent of the original create_database script:
//!   the source database, the tables `product`, `buyer`, `review` with keys and the indexes the
//!   extract needs, `review_deletion` (kept up by a trigger), an owner role and the read-only
//!   `etl_reader`; idempotent. [`load_reviews`] optionally loads review rows into it.
//! - [`PgFeed`]: the change feed port (`reviews_ports::ChangeFeed`) on PostgreSQL, as the
//!   read-only role: validate the schema, then, in one snapshot, list the reviews deleted and
//!   stream the rows changed in a range of [`Watermark`]s. The extract stage
//!   (`reviews_stages::extract_changes`) decides the range and writes raw/.
//!
//! Errors are typed ([`PgError`]) and sorted into retryable (server down,
//! refusing, restarting, connection dropped) and fatal (configuration, schema, permissions).
//! SQL is parameterised; the only names spliced into SQL text are constants or configured
//! identifiers checked by [`check_identifier`].

pub mod config;
pub mod error;
pub mod extract;
mod scram;
pub mod setup;
pub mod tls;

pub use config::{
    DEFAULT_SAFETY_LAG, PgConfig, SAFETY_LAG_ENV, check_identifier, safety_lag_from_env,
};
pub use error::PgError;
pub use extract::{DeletionMark, PgFeed, SourceSchema, Watermark, validate_schema};
pub use setup::{LoadOptions, LoadReport, SetupConfig, SetupReport, load_reviews, setup};
pub use tls::TlsMode;
