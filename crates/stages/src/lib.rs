//! The pipeline stages as library functions with small JSON inputs and outputs (run id, object
//! keys, counts; never rows). The same functions run inside the stage Lambdas and in the local
//! runner ([`runner::run_local`]).

pub mod carry;
pub mod error;
pub mod eval;
pub mod extract;
pub mod progress;
pub mod publish;
pub mod rejects;
pub mod runner;
pub mod score;
pub mod transform;

pub use error::StageError;
pub use extract::{ExtractOutput, extract_rows};
pub use progress::{NoProgress, Progress};
pub use publish::{PublishInput, PublishOutput, PublishStatus, publish};
pub use runner::{
    DEFAULT_LEASE_TTL, RunOptions, RunSummary, SourceChanges, begin_run, lease_ttl_from_env,
    run_from_source, run_local, score_shards,
};
pub use score::{ScoreInput, ScoreOutput, Scorer, score_shard};
pub use transform::{Shard, TransformInput, TransformOutput, transform};
