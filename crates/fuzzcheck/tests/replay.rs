//! Every input kept in fuzz/corpus/<target>/ (the seeds and the inputs that once crashed),
//! through the same checks as the fuzz targets.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    inputs
}

fn replay(target: &str, check: fn(&[u8])) {
    for (name, data) in corpus(target) {
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "fuzz/corpus/{target}/{name} violates an invariant"
        );
    }
}

#[test]
fn readers_corpus() {
    replay("readers", reviews_fuzz_checks::readers::check);
}

#[test]
fn cleaning_corpus() {
    replay("cleaning", reviews_fuzz_checks::cleaning::check);
}

#[test]
fn http_corpus() {
    replay("http", reviews_fuzz_checks::http::check);
}
