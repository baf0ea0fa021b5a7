//! Arbitrary bytes into `AmazonReader` over a `Cursor`, in both layouts (tab-separated unquoted
//! and CSV), reading every row. The reader must never panic: a header it cannot use is an
//! error, a row it cannot use is an `Err` or a row with a `read_defect`, and it always ends.

use std::io::Cursor;

use reviews_domain::RawReview;
use reviews_sources::AmazonReader;

/// Run one fuzz input through the checks (panics on a violated invariant).
pub fn check(data: &[u8]) {
    for tsv in [true, false] {
        let Ok(reader) = AmazonReader::from_reader(Cursor::new(data), "fuzz", tsv) else {
            continue;
        };
        let mut rows = 0usize;
        for row in reader {
            rows += 1;
            // There can never be more records than bytes (plus the one after the header).
            assert!(rows <= data.len() + 1, "reader does not end");
            if let Ok(raw) = row {
                check_row(&raw);
            }
        }
    }
}

fn check_row(raw: &RawReview) {
    // A row with a defect is flagged with a code cleaning understands.
    if let Some(defect) = &raw.read_defect {
        assert!(
            defect.starts_with("malformed_row") || defect.starts_with("invalid_utf8"),
            "unknown read defect {defect:?}"
        );
    }
    assert!(
        raw.source_position.is_some(),
        "row without a source position"
    );
}
