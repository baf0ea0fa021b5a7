//! The PostgreSQL source of the pipeline.
//!
//! - [`setup`]: `reviews db setup`, the equivalent of the original create_database script:
//!   the source database, the tables `product`, `buyer`, `review` with keys and the indexes the
//!   extract needs, `review_deletion` (kept up by a trigger), an owner role and the read-only
//!   `etl_reader`; idempotent. [`load_reviews`] optionally loads review rows into it.
//! - [`extract_to_lake`]: the extract stage on PostgreSQL, as the read-only role: validate the
//!   schema, then, in one snapshot, list the reviews deleted and stream the rows changed since
//!   the live commit's watermark into raw/; the new watermark goes to publish, which commits it.
//!
//! Errors are typed ([`PgError`], [`ExtractError`]) and sorted into retryable (server down,
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
pub use error::{ExtractError, PgError};
pub use extract::{
    DeletionMark, SourceSchema, Watermark, extract_to_lake, read_watermark, validate_schema,
};
pub use setup::{LoadOptions, LoadReport, SetupConfig, SetupReport, load_reviews, setup};
pub use tls::TlsMode;
