//! Progress reporting for long stages: the CLI draws bars, Lambdas log, tests ignore it.

/// Receives progress of a stage. Implementations must be cheap: `advance` is called per batch.
pub trait Progress: Send + Sync {
    /// A stage (or step of one) starts, with the number of units to do when known.
    fn start(&self, _step: &str, _total: Option<u64>) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
    /// The step is over.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
