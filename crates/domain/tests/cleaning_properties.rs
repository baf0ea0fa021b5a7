//! Property tests of the cleaning invariants: never panics, idempotent, never loses a row.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use reviews_domain::text::clean_text;
use reviews_domain::{CleanOutcome, Cleaner, RawReview};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-29T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Strings that look like what review exports contain: text, markup, entities, odd Unicode.
fn review_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Zéèàç ]{0,12}",
        Just("<br />".to_owned()),
        Just("<b>".to_owned()),
        Just("</p>".to_owned()),
        Just("&amp;".to_owned()),
        Just("&lt;".to_owned()),
        Just("&gt;".to_owned()),
        Just("&#39;".to_owned()),
        Just("&quot;".to_owned()),
        Just("&nbsp;".to_owned()),
        Just("<".to_owned()),
        Just("&".to_owned()),
        Just("\n\n\n".to_owned()),
        Just("\t \r\n".to_owned()),
        Just("\u{0}\u{7}\u{1b}".to_owned()),
        Just("e\u{301}".to_owned()),
        Just("😀👍🏽".to_owned()),
        Just("مرحبا".to_owned()),
        Just("\u{202E}\u{200F}\u{FEFF}".to_owned()),
        Just("=cmd|' /C calc'!A0".to_owned()),
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn opt(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(0.9, s)
}

fn raw_review() -> impl Strategy<Value = RawReview> {
    (
        opt("R[0-9]{1,3}|[ -~]{0,8}"),
        opt("P[0-9]{1,2}|[ -~]{0,8}"),
        opt("C[0-9]{1,2}"),
        opt("[0-6]|[0-9.a-z-]{0,4}"),
        opt(review_text()),
        opt("20[0-3][0-9]-[01][0-9]-[0-3][0-9]|[ -~]{0,10}"),
        opt("[0-9]{1,3}|-1|x"),
        opt("[0-9]{1,3}"),
    )
        .prop_map(
            |(id, product, buyer, rating, text, date, helpful, total)| RawReview {
                review_id: id,
                product_id: product,
                buyer_id: buyer,
                rating,
                text,
                review_date: date,
                helpful_votes: helpful,
                total_votes: total,
                ..Default::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn clean_text_is_idempotent(s in review_text()) {
        let once = clean_text(&s);
        prop_assert_eq!(clean_text(&once), once.clone());
        prop_assert!(!once.chars().any(|c| c.is_control() && c != '\n'));
        prop_assert_eq!(once.trim(), once.as_str());
    }

    #[test]
    fn cleaning_never_loses_a_row(rows in prop::collection::vec(raw_review(), 0..60)) {
        let mut cleaner = Cleaner::new("p", now());
        let mut cleaned = 0usize;
        let mut rejected = 0usize;
        for r in &rows {
            match cleaner.clean(r) {
                CleanOutcome::Clean(c) => {
                    cleaned += 1;
                    prop_assert!((1..=5).contains(&c.rating));
                    prop_assert!(!c.text.is_empty());
                    prop_assert_eq!(clean_text(&c.text), c.text.clone());
                }
                CleanOutcome::Rejected(rej) => {
                    rejected += 1;
                    prop_assert_eq!(&rej.raw, r);
                }
            }
        }
        prop_assert_eq!(cleaned + rejected, rows.len());
    }

    #[test]
    fn cleaned_reviews_clean_again_unchanged(r in raw_review()) {
        // A cleaned review fed back as raw is accepted and comes out the same.
        let mut cleaner = Cleaner::new("p", now());
        if let CleanOutcome::Clean(c) = cleaner.clean(&r) {
            let again = RawReview {
                review_id: Some(c.review_id.clone()),
                product_id: Some(c.product_id.clone()),
                buyer_id: c.buyer_id.clone(),
                rating: Some(c.rating.to_string()),
                text: Some(c.text.clone()),
                title: Some(c.title.clone()),
                review_date: Some(c.review_date.to_string()),
                helpful_votes: Some(c.helpful_votes.to_string()),
                total_votes: Some(c.total_votes.to_string()),
                ..Default::default()
            };
            match Cleaner::new("p", now()).clean(&again) {
                CleanOutcome::Clean(c2) => {
                    prop_assert_eq!(c2.text, c.text);
                    prop_assert_eq!(c2.rating, c.rating);
                }
                CleanOutcome::Rejected(rej) => prop_assert!(false, "re-clean rejected: {:?}", rej.reason),
            }
        }
    }
}
