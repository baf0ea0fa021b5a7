//! The rejects file: one CSV row per rejected row, with the original fields, the reason code
//! and a short detail.
//!
//! Cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR)
//! are prefixed with `'` (the OWASP advice against CSV injection): this file is made for
//! people to open. The exact original bytes stay in raw/.

use std::collections::BTreeMap;

use reviews_domain::record::RAW_FIELDS;
use reviews_domain::{RejectReason, Rejected};

/// Header of rejects.csv.
pub fn header() -> Vec<&'static str> {
    let mut h: Vec<&str> = RAW_FIELDS.to_vec();
    h.push("reason");
    h.push("detail");
    h
}

fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Write rejected rows as CSV.
pub fn to_csv(rows: &[Rejected]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(header())?;
    for r in rows {
        // An erased buyer's reject keeps the review id and the reason, nothing else (the
        // cleaner already redacts it; this holds for any caller).
        let values = if r.reason == RejectReason::ErasedBuyer {
            r.raw.redacted().field_values()
        } else {
            r.raw.field_values()
        };
        let mut record: Vec<std::borrow::Cow<'_, str>> =
            values.iter().map(|v| neutralise(v)).collect();
        record.push(r.reason.code().into());
        record.push(if r.reason == RejectReason::ErasedBuyer {
            "".into()
        } else {
            neutralise(&r.detail)
        });
        w.write_record(record.iter().map(|c| c.as_bytes()))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Count rejects by reason code.
pub fn count_by_reason(rows: &[Rejected]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r.reason.code().to_owned()).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use reviews_domain::RawReview;

    #[test]
    fn csv_keeps_fields_and_defuses_formulas() {
        let r = Rejected {
            raw: RawReview {
                review_id: Some("R1".into()),
                text: Some("=cmd|' /C calc'!A0".into()),
                title: Some("a,b \"quoted\"\nline".into()),
                ..Default::default()
            },
            reason: RejectReason::MissingRating,
            detail: String::new(),
        };
        let bytes = to_csv(std::slice::from_ref(&r)).unwrap();
        let mut rd = csv::Reader::from_reader(&bytes[..]);
        let rec = rd.records().next().unwrap().unwrap();
        assert_eq!(&rec[0], "R1");
        assert_eq!(&rec[6], "a,b \"quoted\"\nline");
        assert_eq!(&rec[7], "'=cmd|' /C calc'!A0");
        assert_eq!(&rec[16], "missing_rating");
        assert_eq!(count_by_reason(&[r])["missing_rating"], 1);
    }

    #[test]
    fn an_erased_buyers_reject_keeps_the_id_and_the_reason_only() {
        let r = Rejected {
            raw: RawReview {
                review_id: Some("R9".into()),
                buyer_id: Some("GONE".into()),
                text: Some("my words".into()),
                product_id: Some("P1".into()),
                ..Default::default()
            },
            reason: RejectReason::ErasedBuyer,
            detail: "GONE".into(),
        };
        let bytes = to_csv(std::slice::from_ref(&r)).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("GONE") && !text.contains("my words") && !text.contains("P1"));
        let mut rd = csv::Reader::from_reader(&bytes[..]);
        let rec = rd.records().next().unwrap().unwrap();
        assert_eq!(&rec[0], "R9");
        assert_eq!(&rec[16], "erased_buyer");
        assert!((1..14).all(|i| rec[i].is_empty()), "{rec:?}");
    }
}
