//! The PostgreSQL source of the pipeline.
//!
//! - [`setup`]: `reviews db setup`, the equivalent of the original create_database script:
//!   the source database, the tables `product`, `buyer`, `review` with keys and the indexes the
//!   extract needs, an owner role and the read-only `etl_reader`; idempotent. [`load_reviews`]
//!   optionally loads review rows into it.
//! - [`extract_to_lake`]: the extract stage on PostgreSQL, as the read-only role: validate the
//!   schema, stream the rows changed since the watermark into raw/, then move the watermark.
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

pub use config::{PgConfig, check_identifier};
pub use error::{ExtractError, PgError};
pub use extract::{SourceSchema, Watermark, extract_to_lake, read_watermark, validate_schema};
pub use setup::{LoadOptions, LoadReport, SetupConfig, SetupReport, load_reviews, setup};
