//! The review record, as read (every field a string, exactly as the source had it) and as
//! cleaned (typed, normalised, with metadata).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A review exactly as a source produced it. Every field is optional text so that nothing a
/// source gives us is lost before cleaning decides what to do with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawReview {
    pub review_id: Option<String>,
    pub product_id: Option<String>,
    pub product_title: Option<String>,
    pub product_category: Option<String>,
    pub buyer_id: Option<String>,
    pub rating: Option<String>,
    pub title: Option<String>,
    pub text: Option<String>,
    pub helpful_votes: Option<String>,
    pub total_votes: Option<String>,
    pub verified_purchase: Option<String>,
    pub review_date: Option<String>,
    pub language: Option<String>,
    pub marketplace: Option<String>,
    /// Where the row came from (line or record number in the source), for rejects.
    pub source_position: Option<u64>,
    /// A defect the reader already saw (missing columns, invalid UTF-8), as a reason code.
    pub read_defect: Option<String>,
}

/// The names of [`RawReview`]'s fields in order, as used in raw/ and rejects/.
pub const RAW_FIELDS: [&str; 16] = [
    "review_id",
    "product_id",
    "product_title",
    "product_category",
    "buyer_id",
    "rating",
    "title",
    "text",
    "helpful_votes",
    "total_votes",
    "verified_purchase",
    "review_date",
    "language",
    "marketplace",
    "source_position",
    "read_defect",
];

/// The `read_defect` of a raw row whose buyer asked for erasure: the row keeps its review id
/// (and source position) only, so that every count of the run still adds up, and cleaning
/// rejects it with reason `erased_buyer`.
pub const ERASED_DEFECT: &str = "erased_buyer";

impl RawReview {
    /// The buyer id as cleaning compares it (trimmed), if any.
    pub fn buyer_key(&self) -> Option<&str> {
        self.buyer_id
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
    }

    /// This row with everything but the review id and the source position removed, marked
    /// [`ERASED_DEFECT`]: what the lake keeps of a row of an erased buyer.
    pub fn redacted(&self) -> RawReview {
        RawReview {
            review_id: self.review_id.clone(),
            source_position: self.source_position,
            read_defect: Some(ERASED_DEFECT.to_owned()),
            ..Default::default()
        }
    }

    /// Whether this row is a redacted row of an erased buyer.
    pub fn is_redacted(&self) -> bool {
        self.read_defect.as_deref() == Some(ERASED_DEFECT)
    }

    /// The field values in [`RAW_FIELDS`] order (missing values as empty strings).
    pub fn field_values(&self) -> [String; 16] {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            s(&self.review_id),
            s(&self.product_id),
            s(&self.product_title),
            s(&self.product_category),
            s(&self.buyer_id),
            s(&self.rating),
            s(&self.title),
            s(&self.text),
            s(&self.helpful_votes),
            s(&self.total_votes),
            s(&self.verified_purchase),
            s(&self.review_date),
            s(&self.language),
            s(&self.marketplace),
            self.source_position
                .map(|p| p.to_string())
                .unwrap_or_default(),
            s(&self.read_defect),
        ]
    }
}

/// A cleaned, valid review with the metadata columns the cleaned dataset carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub review_id: String,
    pub product_id: String,
    pub product_title: String,
    pub product_category: String,
    pub buyer_id: Option<String>,
    pub rating: u8,
    pub title: String,
    pub text: String,
    pub helpful_votes: u32,
    pub total_votes: u32,
    pub verified_purchase: Option<bool>,
    pub review_date: NaiveDate,
    /// The language the source declared, if any.
    pub language: Option<String>,
    /// Our own guess from the text: "en", "fr" or "und".
    pub language_guess: String,
    pub word_count: u32,
    pub char_count: u32,
    pub run_id: String,
    pub processed_at: DateTime<Utc>,
    /// Mean rating of the product over this run's cleaned reviews (for the deviation signal).
    pub product_mean_rating: f32,
    pub product_review_count: u32,
}

impl Review {
    /// The language to use downstream: the declared one when present, else our guess.
    pub fn effective_language(&self) -> &str {
        self.language.as_deref().unwrap_or(&self.language_guess)
    }
}
