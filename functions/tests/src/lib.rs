//! No library code: this package holds the integration tests of the stage functions
//! (tests/handlers.rs), which need every function crate and every service at once.
