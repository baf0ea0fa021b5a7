//! The pipeline stages as library functions with small JSON inputs and outputs (run id, object
//! keys, counts; never rows). The same functions run inside the stage Lambdas and in the local
//! runner ([`runner::run_local`]).

pub mod archive;
pub mod athena;
pub mod bucket;
pub mod carry;
pub mod erase;
pub mod error;
pub mod eval;
pub mod extract;
pub mod progress;
pub mod publish;
pub mod rank;
pub mod rejects;
pub mod runner;
pub mod score;
pub mod scoring;
pub mod transform;

pub use archive::ArchiveOutput;
pub use bucket::{BucketOutput, merge_bucket};
pub use error::StageError;
pub use extract::{
    Deletion, ExtractOutput, IterSource, extract_changes, extract_rows, extract_source,
};
pub use progress::{NoProgress, Progress};
pub use publish::{PublishInput, PublishOutput, PublishStatus, publish};
pub use runner::{
    DEFAULT_LEASE_TTL, RunOptions, RunSummary, begin_run, buckets_from_env, lease_ttl_from_env,
    merge_buckets, run_from_feed, run_local,
};
pub use score::Scorer;
pub use transform::{
    BucketItem, RoutePartInput, RoutePartOutput, TransformInput, TransformOutput, plan_items,
    route, transform,
};
