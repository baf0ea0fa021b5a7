//! Running the `reviews` binary as a user does, for the CLI tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Run `reviews` in `cwd` with extra environment; the caller's archive URI is never inherited.
pub fn reviews_with(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reviews"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .env_remove("REVIEWS_MONGO_URI")
        .envs(env.iter().copied())
        .output()
        .expect("run reviews")
}

pub fn reviews(args: &[&str], cwd: &Path) -> Output {
    reviews_with(args, cwd, &[])
}

/// The command's stdout, after asserting it succeeded (showing both streams if not).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "reviews failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}
