//! Cleaning: turn a [`RawReview`] into a valid [`Review`] or a [`Rejected`] row with a
//! machine-readable reason. Every input row ends up in exactly one of the two.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::fields;
use crate::lang::guess_language;
use crate::record::{RawReview, Review};
use crate::text::{char_count, clean_text, word_count};

/// Longest review text we accept, in characters, after cleaning.
pub const MAX_TEXT_CHARS: usize = 50_000;
/// Longest raw text we even try to clean, in bytes (cheap guard against hostile input).
pub const MAX_RAW_TEXT_BYTES: usize = 1 << 20;
/// Longest title, in characters, after cleaning.
pub const MAX_TITLE_CHARS: usize = 1_000;
/// Longest identifier (review id, product id, buyer id).
pub const MAX_ID_LEN: usize = 64;

/// Why a row was rejected. The `code` strings are stable: dashboards and re-processing key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The reader could not parse the row into the expected columns.
    MalformedRow,
    /// The row was not valid UTF-8.
    InvalidUtf8,
    MissingReviewId,
    InvalidReviewId,
    MissingProductId,
    InvalidProductId,
    InvalidBuyerId,
    MissingRating,
    InvalidRating,
    RatingOutOfRange,
    MissingDate,
    InvalidDate,
    DateOutOfRange,
    InvalidVotes,
    InconsistentVotes,
    EmptyText,
    TextTooLong,
    TitleTooLong,
    DuplicateReviewId,
    DuplicateContent,
    /// The buyer asked for erasure: their reviews never reach the lake's cleaned data.
    ErasedBuyer,
}

impl RejectReason {
    pub const ALL: [RejectReason; 21] = [
        Self::MalformedRow,
        Self::InvalidUtf8,
        Self::MissingReviewId,
        Self::InvalidReviewId,
        Self::MissingProductId,
        Self::InvalidProductId,
        Self::InvalidBuyerId,
        Self::MissingRating,
        Self::InvalidRating,
        Self::RatingOutOfRange,
        Self::MissingDate,
        Self::InvalidDate,
        Self::DateOutOfRange,
        Self::InvalidVotes,
        Self::InconsistentVotes,
        Self::EmptyText,
        Self::TextTooLong,
        Self::TitleTooLong,
        Self::DuplicateReviewId,
        Self::DuplicateContent,
        Self::ErasedBuyer,
    ];

    /// The stable reason code written to rejects/ and to run summaries.
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedRow => "malformed_row",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::MissingReviewId => "missing_review_id",
            Self::InvalidReviewId => "invalid_review_id",
            Self::MissingProductId => "missing_product_id",
            Self::InvalidProductId => "invalid_product_id",
            Self::InvalidBuyerId => "invalid_buyer_id",
            Self::MissingRating => "missing_rating",
            Self::InvalidRating => "invalid_rating",
            Self::RatingOutOfRange => "rating_out_of_range",
            Self::MissingDate => "missing_date",
            Self::InvalidDate => "invalid_date",
            Self::DateOutOfRange => "date_out_of_range",
            Self::InvalidVotes => "invalid_votes",
            Self::InconsistentVotes => "inconsistent_votes",
            Self::EmptyText => "empty_text",
            Self::TextTooLong => "text_too_long",
            Self::TitleTooLong => "title_too_long",
            Self::DuplicateReviewId => "duplicate_review_id",
            Self::DuplicateContent => "duplicate_content",
            Self::ErasedBuyer => "erased_buyer",
        }
    }

    /// Parse a reason code as written by [`RejectReason::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejected row: the original fields, untouched, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub raw: RawReview,
    pub reason: RejectReason,
    /// A short human explanation (which value, which limit).
    pub detail: String,
}

fn reject(raw: &RawReview, reason: RejectReason, detail: String) -> CleanOutcome {
    CleanOutcome::Rejected(Box::new(Rejected {
        raw: raw.clone(),
        reason,
        detail,
    }))
}

/// The outcome of cleaning one row.
#[derive(Debug, Clone, PartialEq)]
pub enum CleanOutcome {
    Clean(Box<Review>),
    Rejected(Box<Rejected>),
}

/// An identifier we accept: 1 to 64 characters of ASCII letters, digits, `-`, `_` and `.`,
/// not only dots. The API uses the same rule to turn away implausible product ids.
pub fn is_plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.bytes().all(|b| b == b'.')
}

/// Stateful cleaner for one run: remembers review ids and contents already seen, so that
/// duplicates are rejected (the first valid occurrence wins).
#[derive(Debug)]
pub struct Cleaner {
    run_id: String,
    processed_at: DateTime<Utc>,
    earliest: NaiveDate,
    latest: NaiveDate,
    // foldhash, not SipHash: one lookup per row of every run, on ids from the company's own
    // database (no hash flooding to defend against), seeded per process all the same.
    seen_ids: HashSet<IdKey, std::hash::BuildHasherDefault<PrehashedHasher>>,
    seen_content: HashSet<u64, foldhash::fast::RandomState>,
    erased_buyers: HashSet<String>,
}

/// A review id as the id set keeps it: its 128-bit xxh3 digest, computed apart from the
/// (serial) duplicate check. 16 bytes a row instead of the id's text and its allocation,
/// so that a 10M-row run's set stays a few hundred MB. Two different ids share a digest with
/// probability about n²/2¹²⁹ (10⁻²⁴ at 10M ids): a collision would reject a valid row as a
/// duplicate (reported, with its row, in rejects), never publish a wrong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdKey {
    digest: u128,
}

impl IdKey {
    pub fn new(review_id: &str) -> Self {
        // Fixed seed: keys computed on different threads (or runs) must agree.
        Self {
            digest: twox_hash::XxHash3_128::oneshot(review_id.as_bytes()),
        }
    }
}

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The low half places the key; equality compares all 128 bits.
        state.write_u64(self.digest as u64);
    }
}

/// The hasher of the id set: an [`IdKey`] brings its hash along.
#[derive(Default)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `IdKey` is hashed with it, through `write_u64`; anything else still hashes.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Cleaner {
    /// A cleaner for `run_id`. Dates after `processed_at` (plus one day of time-zone slack) or
    /// before 1995 (the first online reviews) are impossible.
    pub fn new(run_id: impl Into<String>, processed_at: DateTime<Utc>) -> Self {
        Self {
            run_id: run_id.into(),
            processed_at,
            earliest: NaiveDate::from_ymd_opt(1995, 1, 1).expect("valid date"),
            latest: processed_at.date_naive() + chrono::Days::new(1),
            seen_ids: HashSet::default(),
            seen_content: HashSet::default(),
            erased_buyers: HashSet::new(),
        }
    }

    /// Buyers whose reviews must be dropped (right to erasure).
    pub fn with_erased_buyers(mut self, buyers: impl IntoIterator<Item = String>) -> Self {
        self.erased_buyers.extend(buyers);
        self
    }

    /// Make room for `rows` more admitted rows at once. A set grown one doubling at a time
    /// holds its old table beside the new one at each step, and a batch process that keeps
    /// freed memory keeps them all: at 10M rows that is hundreds of MB.
    pub fn reserve(&mut self, rows: usize) {
        self.seen_ids.reserve(rows);
        self.seen_content.reserve(rows);
    }

    /// Clean one row: [`Cleaner::check`] then [`Cleaner::admit`].
    pub fn clean(&mut self, raw: &RawReview) -> CleanOutcome {
        match self.check(raw) {
            Ok(review) => match self.admit(review) {
                Ok(review) => CleanOutcome::Clean(Box::new(review)),
                Err((reason, detail)) => reject(raw, reason, detail),
            },
            Err(rejected) => CleanOutcome::Rejected(rejected),
        }
    }

    /// The row-local rules (everything but duplicates). Needs only `&self`, so a batch can be
    /// checked on several threads; then [`Cleaner::admit`] runs in input order.
    pub fn check(&self, raw: &RawReview) -> Result<Review, Box<Rejected>> {
        self.validate(raw).map_err(|(reason, detail)| {
            Box::new(Rejected {
                raw: if reason == RejectReason::ErasedBuyer {
                    raw.redacted()
                } else {
                    raw.clone()
                },
                reason,
                detail,
            })
        })
    }

    /// The duplicate rules: the first valid occurrence of a review id, and of a text by the same
    /// buyer on the same product, wins. Call in input order.
    pub fn admit(&mut self, review: Review) -> Result<Review, (RejectReason, String)> {
        let content = Self::content_key(&review);
        self.admit_keyed(review, content)
    }

    /// What [`Cleaner::admit`] compares to find the same text by the same buyer on the same
    /// product: computed apart, so that a caller can hash a batch on all cores.
    pub fn content_key(review: &Review) -> Option<u64> {
        review.buyer_id.as_ref().map(|buyer| {
            let mut h = DefaultHasher::new();
            (buyer, &review.product_id, &review.text).hash(&mut h);
            h.finish()
        })
    }

    /// [`Cleaner::admit`] with the review's [`Cleaner::content_key`] already computed.
    pub fn admit_keyed(
        &mut self,
        review: Review,
        content: Option<u64>,
    ) -> Result<Review, (RejectReason, String)> {
        self.admit_id(IdKey::new(&review.review_id), &review.review_id, content)
            .map(|()| review)
    }

    /// [`Cleaner::admit`] of the review with this id (`id` is its [`IdKey`]) and content key,
    /// both computed apart (on any thread): the review itself can stay where it is.
    pub fn admit_id(
        &mut self,
        id: IdKey,
        review_id: &str,
        content: Option<u64>,
    ) -> Result<(), (RejectReason, String)> {
        if self.seen_ids.contains(&id) {
            return Err((
                RejectReason::DuplicateReviewId,
                format!("review id {review_id} seen before"),
            ));
        }
        if let Some(content) = content
            && !self.seen_content.insert(content)
        {
            return Err((
                RejectReason::DuplicateContent,
                "same text by the same buyer on the same product".into(),
            ));
        }
        self.seen_ids.insert(id);
        Ok(())
    }

    fn validate(&self, raw: &RawReview) -> Result<Review, (RejectReason, String)> {
        use RejectReason as R;
        if let Some(defect) = &raw.read_defect {
            if raw.is_redacted() {
                return Err((R::ErasedBuyer, String::new()));
            }
            let reason = if defect.starts_with("invalid_utf8") {
                R::InvalidUtf8
            } else {
                R::MalformedRow
            };
            return Err((reason, defect.clone()));
        }
        // Before every other rule: an erased buyer's row is rejected for that reason alone, and
        // its reject keeps nothing but the review id (see `check`).
        if raw
            .buyer_key()
            .is_some_and(|b| self.erased_buyers.contains(b))
        {
            return Err((R::ErasedBuyer, String::new()));
        }
        let review_id = required_id(&raw.review_id, R::MissingReviewId, R::InvalidReviewId)?;
        let product_id = required_id(&raw.product_id, R::MissingProductId, R::InvalidProductId)?;
        let buyer_id = match trimmed(&raw.buyer_id) {
            None => None,
            Some(b) if is_plausible_id(b) => Some(b.to_owned()),
            Some(b) => return Err((R::InvalidBuyerId, format!("buyer id {:?}", preview(b)))),
        };
        let rating = parse_rating(&raw.rating)?;
        let review_date = self.parse_date(&raw.review_date)?;
        let helpful_votes = parse_votes(&raw.helpful_votes, "helpful_votes")?;
        let total_votes = parse_votes(&raw.total_votes, "total_votes")?;
        if helpful_votes > total_votes && total_votes > 0 {
            return Err((
                R::InconsistentVotes,
                format!("helpful_votes {helpful_votes} > total_votes {total_votes}"),
            ));
        }
        // Sources that only count helpful votes: the total is at least the helpful count.
        let total_votes = total_votes.max(helpful_votes);

        let raw_text = raw.text.as_deref().unwrap_or("");
        if raw_text.len() > MAX_RAW_TEXT_BYTES {
            return Err((R::TextTooLong, format!("{} bytes", raw_text.len())));
        }
        let text = clean_text(raw_text);
        if text.is_empty() {
            return Err((R::EmptyText, "no text after cleaning".into()));
        }
        let char_count = char_count(&text);
        if char_count as usize > MAX_TEXT_CHARS {
            return Err((R::TextTooLong, format!("{char_count} characters")));
        }
        let title = clean_text(raw.title.as_deref().unwrap_or(""));
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err((R::TitleTooLong, format!("{} characters", title.len())));
        }

        let declared_language = trimmed(&raw.language).map(|l| l.to_ascii_lowercase());
        let language_guess = guess_language(&text).to_owned();
        Ok(Review {
            review_id: review_id.to_owned(),
            product_id: product_id.to_owned(),
            product_title: clean_text(raw.product_title.as_deref().unwrap_or("")),
            product_category: clean_text(raw.product_category.as_deref().unwrap_or("")),
            buyer_id,
            rating,
            title,
            word_count: word_count(&text),
            char_count,
            text,
            helpful_votes,
            total_votes,
            verified_purchase: parse_flag(&raw.verified_purchase),
            review_date,
            language: declared_language,
            language_guess,
            run_id: self.run_id.clone(),
            processed_at: self.processed_at,
            product_mean_rating: f32::from(rating),
            product_review_count: 1,
        })
    }

    fn parse_date(&self, value: &Option<String>) -> Result<NaiveDate, (RejectReason, String)> {
        let s = trimmed(value).ok_or((RejectReason::MissingDate, String::new()))?;
        let date = parse_date_str(s)
            .ok_or_else(|| (RejectReason::InvalidDate, format!("date {:?}", preview(s))))?;
        if date < self.earliest || date > self.latest {
            return Err((
                RejectReason::DateOutOfRange,
                format!("date {date} outside {}..={}", self.earliest, self.latest),
            ));
        }
        Ok(date)
    }
}

/// Fill each review's product mean rating and review count from the reviews given (one run).
pub fn fill_product_stats(reviews: &mut [Review]) {
    let mut stats: HashMap<&str, (u64, u32), foldhash::fast::RandomState> = HashMap::default();
    for r in reviews.iter() {
        let e = stats.entry(r.product_id.as_str()).or_default();
        e.0 += u64::from(r.rating);
        e.1 += 1;
    }
    // Per row first: the map borrows the product ids the second pass writes beside.
    let per_row: Vec<(f32, u32)> = reviews
        .iter()
        .map(|r| {
            let (sum, n) = stats[r.product_id.as_str()];
            (sum as f32 / n as f32, n)
        })
        .collect();
    drop(stats);
    for (r, (mean, n)) in reviews.iter_mut().zip(per_row) {
        r.product_mean_rating = mean;
        r.product_review_count = n;
    }
}

fn trimmed(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn required_id(
    value: &Option<String>,
    missing: RejectReason,
    invalid: RejectReason,
) -> Result<&str, (RejectReason, String)> {
    let id = trimmed(value).ok_or((missing, String::new()))?;
    if is_plausible_id(id) {
        Ok(id)
    } else {
        Err((invalid, format!("id {:?}", preview(id))))
    }
}

fn parse_rating(value: &Option<String>) -> Result<u8, (RejectReason, String)> {
    let s = trimmed(value).ok_or((RejectReason::MissingRating, String::new()))?;
    let n: i64 = fields::parse_integer(s).ok_or_else(|| {
        (
            RejectReason::InvalidRating,
            format!("rating {:?}", preview(s)),
        )
    })?;
    if !(1..=5).contains(&n) {
        return Err((
            RejectReason::RatingOutOfRange,
            format!("rating {n} not in 1..=5"),
        ));
    }
    Ok(n as u8)
}

fn parse_votes(value: &Option<String>, field: &str) -> Result<u32, (RejectReason, String)> {
    match trimmed(value) {
        None => Ok(0),
        Some(s) => fields::parse_integer::<u32>(s).ok_or_else(|| {
            (
                RejectReason::InvalidVotes,
                format!("{field} {:?}", preview(s)),
            )
        }),
    }
}

/// Dates as sources write them (see [`fields::parse_date`]).
pub fn parse_date_str(s: &str) -> Option<NaiveDate> {
    fields::parse_date(s)
}

/// A yes/no flag (see [`fields::parse_flag`]); anything else is unknown.
fn parse_flag(value: &Option<String>) -> Option<bool> {
    fields::parse_flag(trimmed(value)?)
}

/// The first characters of a value, for error details (never a whole hostile field).
fn preview(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn raw() -> RawReview {
        RawReview {
            review_id: Some("R1".into()),
            product_id: Some("B00001".into()),
            product_title: Some("Kettle".into()),
            product_category: Some("Kitchen".into()),
            buyer_id: Some("C1".into()),
            rating: Some("4".into()),
            title: Some("Good".into()),
            text: Some("Boils fast and the handle stays cool.".into()),
            helpful_votes: Some("1".into()),
            total_votes: Some("2".into()),
            verified_purchase: Some("Y".into()),
            review_date: Some("2015-01-23".into()),
            ..Default::default()
        }
    }

    fn reason(r: RawReview) -> RejectReason {
        match Cleaner::new("t", now()).clean(&r) {
            CleanOutcome::Rejected(rej) => {
                assert_eq!(rej.raw, r, "rejects keep the original fields");
                rej.reason
            }
            CleanOutcome::Clean(c) => panic!("expected a reject, got {c:?}"),
        }
    }

    fn clean(r: RawReview) -> Review {
        match Cleaner::new("t", now()).clean(&r) {
            CleanOutcome::Clean(c) => *c,
            CleanOutcome::Rejected(rej) => panic!("unexpected reject {rej:?}"),
        }
    }

    #[test]
    fn valid_row_is_cleaned_with_metadata() {
        let c = clean(raw());
        assert_eq!(c.rating, 4);
        assert_eq!(c.verified_purchase, Some(true));
        assert_eq!(c.word_count, 7);
        assert_eq!(c.language_guess, "en");
        assert_eq!(c.run_id, "t");
        assert_eq!(c.review_date, NaiveDate::from_ymd_opt(2015, 1, 23).unwrap());
    }

    #[test]
    fn ratings() {
        for (v, want) in [
            ("0", RejectReason::RatingOutOfRange),
            ("6", RejectReason::RatingOutOfRange),
            ("-1", RejectReason::RatingOutOfRange),
            ("4.5", RejectReason::InvalidRating),
            ("five", RejectReason::InvalidRating),
            ("NaN", RejectReason::InvalidRating),
            ("inf", RejectReason::InvalidRating),
        ] {
            assert_eq!(
                reason(RawReview {
                    rating: Some(v.into()),
                    ..raw()
                }),
                want,
                "{v}"
            );
        }
        assert_eq!(
            reason(RawReview {
                rating: None,
                ..raw()
            }),
            RejectReason::MissingRating
        );
        assert_eq!(
            clean(RawReview {
                rating: Some(" 5.0 ".into()),
                ..raw()
            })
            .rating,
            5
        );
    }

    #[test]
    fn texts() {
        assert_eq!(
            reason(RawReview {
                text: None,
                ..raw()
            }),
            RejectReason::EmptyText
        );
        assert_eq!(
            reason(RawReview {
                text: Some(" <br /> &nbsp; ".into()),
                ..raw()
            }),
            RejectReason::EmptyText
        );
        let mega = "a".repeat(1 << 20);
        assert_eq!(
            reason(RawReview {
                text: Some(mega),
                ..raw()
            }),
            RejectReason::TextTooLong
        );
        let big = "word ".repeat(20_000);
        assert_eq!(
            reason(RawReview {
                text: Some(big),
                ..raw()
            }),
            RejectReason::TextTooLong
        );
        let c = clean(RawReview {
            text: Some("Nice<br />kettle &amp; cheap".into()),
            ..raw()
        });
        assert_eq!(c.text, "Nice\nkettle & cheap");
    }

    #[test]
    fn hostile_text_is_kept_as_text() {
        for t in [
            "=cmd|' /C calc'!A0",
            "+SUM(1,1)",
            "@HYPERLINK(\"x\")",
            "😀🔥 great",
            "ممتاز جدا",
        ] {
            let c = clean(RawReview {
                text: Some(t.into()),
                ..raw()
            });
            assert_eq!(c.text, t);
        }
        let c = clean(RawReview {
            text: Some("a\u{0}b".into()),
            ..raw()
        });
        assert_eq!(c.text, "ab");
    }

    #[test]
    fn dates() {
        for (v, want) in [
            ("2015-02-30", RejectReason::InvalidDate),
            ("yesterday", RejectReason::InvalidDate),
            ("1970-01-01", RejectReason::DateOutOfRange),
            ("2030-01-01", RejectReason::DateOutOfRange),
        ] {
            assert_eq!(
                reason(RawReview {
                    review_date: Some(v.into()),
                    ..raw()
                }),
                want,
                "{v}"
            );
        }
        assert_eq!(
            reason(RawReview {
                review_date: None,
                ..raw()
            }),
            RejectReason::MissingDate
        );
        assert_eq!(
            clean(RawReview {
                review_date: Some("2015-01-23T08:00:00Z".into()),
                ..raw()
            })
            .review_date,
            NaiveDate::from_ymd_opt(2015, 1, 23).unwrap()
        );
    }

    #[test]
    fn ids_and_votes() {
        assert_eq!(
            reason(RawReview {
                review_id: None,
                ..raw()
            }),
            RejectReason::MissingReviewId
        );
        assert_eq!(
            reason(RawReview {
                product_id: Some("../etc/passwd".into()),
                ..raw()
            }),
            RejectReason::InvalidProductId
        );
        assert_eq!(
            reason(RawReview {
                helpful_votes: Some("-3".into()),
                ..raw()
            }),
            RejectReason::InvalidVotes
        );
        assert_eq!(
            reason(RawReview {
                helpful_votes: Some("9".into()),
                ..raw()
            }),
            RejectReason::InconsistentVotes
        );
    }

    #[test]
    fn read_defects_are_rejects() {
        let r = RawReview {
            read_defect: Some("malformed_row: 9 of 15 columns".into()),
            ..raw()
        };
        assert_eq!(reason(r), RejectReason::MalformedRow);
        let r = RawReview {
            read_defect: Some("invalid_utf8".into()),
            ..raw()
        };
        assert_eq!(reason(r), RejectReason::InvalidUtf8);
    }

    #[test]
    fn duplicates_first_valid_wins() {
        let mut c = Cleaner::new("t", now());
        assert!(matches!(c.clean(&raw()), CleanOutcome::Clean(_)));
        let again = c.clean(&raw());
        assert!(
            matches!(again, CleanOutcome::Rejected(ref r) if r.reason == RejectReason::DuplicateReviewId)
        );
        let same_text = RawReview {
            review_id: Some("R2".into()),
            ..raw()
        };
        let out = c.clean(&same_text);
        assert!(
            matches!(out, CleanOutcome::Rejected(ref r) if r.reason == RejectReason::DuplicateContent)
        );
        // Same text by another buyer is a different review.
        let other = RawReview {
            review_id: Some("R3".into()),
            buyer_id: Some("C2".into()),
            ..raw()
        };
        assert!(matches!(c.clean(&other), CleanOutcome::Clean(_)));
        // An invalid first occurrence does not block a later valid one.
        let mut c = Cleaner::new("t", now());
        let bad = RawReview {
            rating: Some("9".into()),
            ..raw()
        };
        assert!(matches!(c.clean(&bad), CleanOutcome::Rejected(_)));
        assert!(matches!(c.clean(&raw()), CleanOutcome::Clean(_)));
    }

    /// The id set keeps digests: ids that differ by one character, by case, or are
    /// prefixes of each other stay apart across many ids, and a duplicate's detail still names
    /// the id.
    #[test]
    fn id_digests_tell_near_ids_apart() {
        let mut c = Cleaner::new("t", now());
        let ids: Vec<String> = (0..50_000)
            .flat_map(|i| [format!("R{i}"), format!("r{i}"), format!("R{i}x")])
            .collect();
        for id in &ids {
            assert_eq!(c.admit_id(IdKey::new(id), id, None), Ok(()), "{id}");
        }
        assert_eq!(IdKey::new("R7"), IdKey::new(&String::from("R7")));
        let (reason, detail) = c.admit_id(IdKey::new("r42"), "r42", None).unwrap_err();
        assert_eq!(reason, RejectReason::DuplicateReviewId);
        assert_eq!(detail, "review id r42 seen before");
    }

    #[test]
    fn erased_buyers_are_dropped() {
        let mut c = Cleaner::new("t", now()).with_erased_buyers(["C1".to_string()]);
        let CleanOutcome::Rejected(r) = c.clean(&raw()) else {
            panic!("an erased buyer's row is rejected")
        };
        assert_eq!(r.reason, RejectReason::ErasedBuyer);
        // The reject keeps the review id only, whatever else is wrong with the row.
        assert_eq!(r.raw, raw().redacted());
        assert!(r.raw.buyer_id.is_none() && r.raw.text.is_none() && r.detail.is_empty());
        let also_invalid = RawReview {
            rating: Some("9".into()),
            buyer_id: Some(" C1 ".into()),
            ..raw()
        };
        let CleanOutcome::Rejected(r) = c.clean(&also_invalid) else {
            panic!("rejected")
        };
        assert_eq!(r.reason, RejectReason::ErasedBuyer);
        // A row redacted in raw/ (by extract or an erasure) is an erased_buyer reject too.
        let mut plain = Cleaner::new("t", now());
        let CleanOutcome::Rejected(r) = plain.clean(&raw().redacted()) else {
            panic!("rejected")
        };
        assert_eq!(r.reason, RejectReason::ErasedBuyer);
    }

    #[test]
    fn reason_codes_round_trip() {
        for r in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(r.code()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.code())
            );
        }
    }

    #[test]
    fn product_stats() {
        let mut a = clean(raw());
        a.rating = 5;
        let mut b = a.clone();
        b.rating = 2;
        let mut v = vec![a, b];
        fill_product_stats(&mut v);
        assert_eq!(v[0].product_mean_rating, 3.5);
        assert_eq!(v[1].product_review_count, 2);
    }
}
