//! Arbitrary `RawReview`s (every field arbitrary text or absent), up to 8 rows per input, into
//! `Cleaner::check` then `Cleaner::admit`, as the transform stage calls them. Invariants:
//! nothing panics; every row is either admitted or rejected with a known reason code and the
//! row's original fields; an admitted review is valid (ids plausible, rating 1..=5, text not
//! empty) and its text and title are fixed points of `clean_text`; `clean_text` of any field is
//! idempotent.

use chrono::{DateTime, Utc};
use reviews_domain::clean::is_plausible_id;
use reviews_domain::text::clean_text;
use reviews_domain::{CleanOutcome, Cleaner, RawReview, RejectReason};

/// Rows from bytes: rows separated by 0x1E, fields by 0x1F, in the order review_id,
/// product_id, product_title, product_category, buyer_id, rating, title, text, helpful_votes,
/// total_votes, verified_purchase, review_date, language, read_defect. A missing trailing field
/// or a field that is the single byte 0x00 is absent; bytes that are not UTF-8 are replaced
/// (as the readers do). Seeds in fuzz/corpus/cleaning/ are readable with `cat -v`.
fn rows(data: &[u8]) -> Vec<RawReview> {
    data.split(|&b| b == 0x1e)
        .take(8)
        .map(|row| {
            let mut fields = row
                .split(|&b| b == 0x1f)
                .map(|f| (f != [0u8]).then(|| String::from_utf8_lossy(f).into_owned()));
            let mut next = || fields.next().flatten();
            RawReview {
                review_id: next(),
                product_id: next(),
                product_title: next(),
                product_category: next(),
                buyer_id: next(),
                rating: next(),
                title: next(),
                text: next(),
                helpful_votes: next(),
                total_votes: next(),
                verified_purchase: next(),
                review_date: next(),
                language: next(),
                read_defect: next(),
                marketplace: None,
                source_position: Some(1),
            }
        })
        .collect()
}

/// `once` is `clean_text(input)`: cleaning it again must change nothing.
fn assert_fixed_point(input: &str, once: &str) {
    let twice = clean_text(once);
    assert!(
        twice == once,
        "clean_text is not idempotent on {}: gives {}, then {}",
        ascii(input),
        ascii(once),
        ascii(&twice)
    );
}

/// A quoted string with everything but printable ASCII escaped, so that look-alikes such as
/// U+037E (which looks like `;`) show in panic messages.
fn ascii(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_ascii_graphic() || c == ' ' {
            out.extend(c.escape_debug());
        } else {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
    }
    out.push('"');
    out
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-29T00:00:00Z")
        .expect("valid timestamp")
        .with_timezone(&Utc)
}

/// Run one fuzz input through the checks (panics on a violated invariant).
pub fn check(data: &[u8]) {
    let rows = rows(data);
    let mut cleaner = Cleaner::new("fuzz", now()).with_erased_buyers(["C0".to_owned()]);
    // `Cleaner::clean` (one call) must decide like `check` then `admit`.
    let mut whole = Cleaner::new("fuzz", now()).with_erased_buyers(["C0".to_owned()]);
    let (mut admitted, mut rejected) = (0usize, 0usize);
    for raw in &rows {
        for field in [&raw.text, &raw.title, &raw.product_title]
            .into_iter()
            .flatten()
        {
            assert_fixed_point(field, &clean_text(field));
        }
        let in_one = whole.clean(raw);
        match cleaner.check(raw) {
            Ok(review) => match cleaner.admit(review) {
                Ok(review) => {
                    admitted += 1;
                    assert!(matches!(&in_one, CleanOutcome::Clean(r) if **r == review));
                    assert!(is_plausible_id(&review.review_id));
                    assert!(is_plausible_id(&review.product_id));
                    assert!((1..=5).contains(&review.rating));
                    assert!(!review.text.is_empty());
                    assert_fixed_point(raw.text.as_deref().unwrap_or(""), &review.text);
                    assert_fixed_point(raw.title.as_deref().unwrap_or(""), &review.title);
                }
                Err((reason, _detail)) => {
                    rejected += 1;
                    assert!(
                        matches!(&in_one, CleanOutcome::Rejected(r) if r.reason == reason && &r.raw == raw)
                    );
                    assert!(matches!(
                        reason,
                        RejectReason::DuplicateReviewId | RejectReason::DuplicateContent
                    ));
                }
            },
            Err(rej) => {
                rejected += 1;
                assert!(matches!(&in_one, CleanOutcome::Rejected(r) if **r == *rej));
                if rej.reason == RejectReason::ErasedBuyer {
                    // An erased buyer's reject keeps the review id, its position and the reason.
                    assert_eq!(
                        rej.raw.buyer_id, None,
                        "an erased buyer's reject names them"
                    );
                    assert_eq!(
                        rej.raw.text, None,
                        "an erased buyer's reject keeps their text"
                    );
                    assert_eq!(rej.raw.review_id, raw.review_id);
                } else {
                    assert_eq!(&rej.raw, raw, "a reject must keep the original fields");
                }
                assert_eq!(RejectReason::from_code(rej.reason.code()), Some(rej.reason));
                if raw.read_defect.is_none() {
                    // Details quote at most a short preview of a hostile value.
                    assert!(rej.detail.len() <= 1024, "reject detail is not bounded");
                }
            }
        }
    }
    assert_eq!(admitted + rejected, rows.len(), "a row was lost");
}
