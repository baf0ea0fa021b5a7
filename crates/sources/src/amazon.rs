//! Readers for the Amazon Customer Reviews formats: the original tab-separated export (15
//! columns, no quoting) and CSV forms with a header (quoted fields). Columns are found by
//! header name, so either layout, or a CSV with the same names in another order, reads alike.
//!
//! A row that does not fit (wrong column count, invalid UTF-8) is still returned, with a
//! `read_defect`, so that cleaning rejects it with a reason instead of it vanishing.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use reviews_domain::RawReview;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: no header line")]
    NoHeader(String),
    #[error("{path}: header has no {missing} column (found: {found})")]
    MissingColumn {
        path: String,
        missing: String,
        found: String,
    },
    #[error("{path}: read error near record {record}: {source}")]
    Read {
        path: String,
        record: u64,
        source: csv::Error,
    },
}

/// Which [`RawReview`] field a header name feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    ReviewId,
    ProductId,
    ProductTitle,
    ProductCategory,
    BuyerId,
    Rating,
    Title,
    Text,
    HelpfulVotes,
    TotalVotes,
    Verified,
    Date,
    Language,
    Marketplace,
}

fn target_of(header: &str) -> Option<Target> {
    use Target::*;
    Some(
        match header
            .trim()
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase()
            .as_str()
        {
            "review_id" => ReviewId,
            "product_id" => ProductId,
            "product_title" | "product_name" => ProductTitle,
            "product_category" => ProductCategory,
            "customer_id" | "buyer_id" => BuyerId,
            "star_rating" | "rating" => Rating,
            "review_headline" | "title" => Title,
            "review_body" | "text" => Text,
            "helpful_votes" => HelpfulVotes,
            "total_votes" => TotalVotes,
            "verified_purchase" => Verified,
            "review_date" => Date,
            "language" => Language,
            "marketplace" => Marketplace,
            _ => return None,
        },
    )
}

/// Streams [`RawReview`]s from an Amazon TSV or CSV file, one record at a time.
pub struct AmazonReader<R: Read> {
    path: String,
    reader: csv::Reader<R>,
    columns: Vec<Option<Target>>,
    record: csv::ByteRecord,
    index: u64,
}

impl AmazonReader<BufReader<File>> {
    /// Open a file; `.tsv` (or a header with tabs) reads as the unquoted tab-separated export.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let name = path.display().to_string();
        let open = || {
            File::open(path).map_err(|source| SourceError::Open {
                path: name.clone(),
                source,
            })
        };
        let mut first = [0u8; 4096];
        let n = open()?.read(&mut first).unwrap_or(0);
        let header_line = first[..n].split(|&b| b == b'\n').next().unwrap_or(&[]);
        let tsv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tsv"))
            || header_line.contains(&b'\t');
        Self::from_reader(BufReader::with_capacity(1 << 20, open()?), &name, tsv)
    }
}

impl<R: Read> AmazonReader<R> {
    /// Read from any byte stream. `tsv` selects the tab-separated, unquoted dialect.
    pub fn from_reader(input: R, name: &str, tsv: bool) -> Result<Self, SourceError> {
        let mut builder = csv::ReaderBuilder::new();
        builder.flexible(true).has_headers(true);
        if tsv {
            builder.delimiter(b'\t').quoting(false);
        }
        let mut reader = builder.from_reader(input);
        let headers = reader
            .byte_headers()
            .map_err(|source| SourceError::Read {
                path: name.to_owned(),
                record: 0,
                source,
            })?
            .clone();
        if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
            return Err(SourceError::NoHeader(name.to_owned()));
        }
        let columns: Vec<Option<Target>> = headers
            .iter()
            .map(|h| target_of(&String::from_utf8_lossy(h)))
            .collect();
        for (needed, label) in [
            (Target::ReviewId, "review_id"),
            (Target::ProductId, "product_id"),
            (Target::Rating, "star_rating/rating"),
            (Target::Text, "review_body/text"),
        ] {
            if !columns.contains(&Some(needed)) {
                return Err(SourceError::MissingColumn {
                    path: name.to_owned(),
                    missing: label.to_owned(),
                    found: headers
                        .iter()
                        .map(|h| String::from_utf8_lossy(h).into_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                });
            }
        }
        Ok(Self {
            path: name.to_owned(),
            reader,
            columns,
            record: csv::ByteRecord::new(),
            index: 0,
        })
    }

    fn to_raw(&self) -> RawReview {
        let mut raw = RawReview {
            source_position: Some(self.record.position().map_or(self.index, |p| p.line())),
            ..Default::default()
        };
        let mut invalid_utf8 = false;
        for (field, target) in self.record.iter().zip(&self.columns) {
            let Some(target) = target else { continue };
            let value = match std::str::from_utf8(field) {
                Ok(s) => s.to_owned(),
                Err(_) => {
                    invalid_utf8 = true;
                    String::from_utf8_lossy(field).into_owned()
                }
            };
            let slot = match target {
                Target::ReviewId => &mut raw.review_id,
                Target::ProductId => &mut raw.product_id,
                Target::ProductTitle => &mut raw.product_title,
                Target::ProductCategory => &mut raw.product_category,
                Target::BuyerId => &mut raw.buyer_id,
                Target::Rating => &mut raw.rating,
                Target::Title => &mut raw.title,
                Target::Text => &mut raw.text,
                Target::HelpfulVotes => &mut raw.helpful_votes,
                Target::TotalVotes => &mut raw.total_votes,
                Target::Verified => &mut raw.verified_purchase,
                Target::Date => &mut raw.review_date,
                Target::Language => &mut raw.language,
                Target::Marketplace => &mut raw.marketplace,
            };
            *slot = Some(value);
        }
        if self.record.len() != self.columns.len() {
            raw.read_defect = Some(format!(
                "malformed_row: {} of {} columns",
                self.record.len(),
                self.columns.len()
            ));
        } else if invalid_utf8 {
            raw.read_defect = Some("invalid_utf8: bytes replaced by U+FFFD".into());
        }
        raw
    }
}

impl<R: Read> Iterator for AmazonReader<R> {
    type Item = Result<RawReview, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                self.index += 1;
                Some(Ok(self.to_raw()))
            }
            Err(source) => {
                self.index += 1;
                Some(Err(SourceError::Read {
                    path: self.path.clone(),
                    record: self.index,
                    source,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "marketplace\tcustomer_id\treview_id\tproduct_id\tproduct_parent\tproduct_title\tproduct_category\tstar_rating\thelpful_votes\ttotal_votes\tvine\tverified_purchase\treview_headline\treview_body\treview_date\n\
FR\t14952\tR1\t0552774294\t362925721\tThe \"God\" Delusion\tBooks\t5\t0\t0\tN\tY\ta propos\tje conseille<br />fortement\t2013-02-13\n\
FR\t1\tR2\tB1\n";

    #[test]
    fn reads_tsv_without_quoting_and_flags_short_rows() {
        let rows: Vec<_> = AmazonReader::from_reader(TSV.as_bytes(), "t.tsv", true)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].product_title.as_deref(),
            Some("The \"God\" Delusion")
        );
        assert_eq!(rows[0].buyer_id.as_deref(), Some("14952"));
        assert_eq!(rows[0].verified_purchase.as_deref(), Some("Y"));
        assert_eq!(rows[0].text.as_deref(), Some("je conseille<br />fortement"));
        assert_eq!(rows[0].read_defect, None);
        assert!(
            rows[1]
                .read_defect
                .as_deref()
                .unwrap()
                .starts_with("malformed_row")
        );
        assert_eq!(rows[1].review_id.as_deref(), Some("R2"));
    }

    #[test]
    fn reads_quoted_csv_by_header_names() {
        let csv = "review_id,type,marketplace,star_rating,helpful_votes,total_votes,review_headline,review_body,review_date,product_id,product_type,product_name,product_category\n\
R3,x,UK,4,1,2,Four Stars,\"its good, really\nsecond line\",2015-01-23,B00005RY7X,p,I Get Wet,Music\n";
        let rows: Vec<_> = AmazonReader::from_reader(csv.as_bytes(), "u.csv", false)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].text.as_deref(),
            Some("its good, really\nsecond line")
        );
        assert_eq!(rows[0].product_title.as_deref(), Some("I Get Wet"));
        assert_eq!(rows[0].buyer_id, None);
        assert_eq!(rows[0].marketplace.as_deref(), Some("UK"));
    }

    #[test]
    fn invalid_utf8_is_flagged_not_dropped() {
        let mut bytes = b"review_id,product_id,star_rating,review_body\nR1,P1,5,caf".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\n");
        let rows: Vec<_> = AmazonReader::from_reader(&bytes[..], "b.csv", false)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0]
                .read_defect
                .as_deref()
                .unwrap()
                .starts_with("invalid_utf8")
        );
    }

    #[test]
    fn missing_required_column_is_a_clear_error() {
        let err = AmazonReader::from_reader(&b"a,b\n1,2\n"[..], "x.csv", false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("review_id"), "{err}");
    }
}
