//! How a review field written as text is read: the one set of rules that cleaning
//! ([`crate::clean`]) and the source database loader (`reviews db setup --load`) share, so that
//! a file accepted by one is read the same way by the other.

use chrono::{DateTime, NaiveDate};

/// An integer, also written as a float with no fraction (`"4.0"`, as spreadsheet exports write
/// counts), within the target type's range. Surrounding whitespace is not accepted here: callers
/// trim first.
pub fn parse_integer<T: TryFrom<i64>>(s: &str) -> Option<T> {
    let n = match s.parse::<i64>() {
        Ok(n) => n,
        Err(_) => {
            let f: f64 = s.parse().ok()?;
            // 2^53: beyond it a float no longer holds every integer exactly.
            if !f.is_finite() || f.fract() != 0.0 || f.abs() > 9_007_199_254_740_992.0 {
                return None;
            }
            f as i64
        }
    };
    T::try_from(n).ok()
}

/// A yes/no flag: `y`/`yes`/`true`/`t`/`1` or `n`/`no`/`false`/`f`/`0`, any case (`t`/`f` is
/// how PostgreSQL writes a boolean as text). Anything else is unknown.
pub fn parse_flag(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "y" | "yes" | "true" | "t" | "1" => Some(true),
        "n" | "no" | "false" | "f" | "0" => Some(false),
        _ => None,
    }
}

/// Dates as sources write them: `2015-01-23`, `2015/01/23`, or an RFC 3339 timestamp.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y/%m/%d"))
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|d| d.date_naive()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_integral_floats() {
        assert_eq!(parse_integer::<u32>("4"), Some(4));
        assert_eq!(parse_integer::<u32>("4.0"), Some(4));
        assert_eq!(parse_integer::<u32>("4.5"), None);
        assert_eq!(parse_integer::<u32>("-1"), None);
        assert_eq!(parse_integer::<i16>("70000"), None);
        assert_eq!(parse_integer::<u32>("NaN"), None);
        assert_eq!(parse_integer::<u32>("1e3"), Some(1000));
        assert_eq!(parse_integer::<i64>("1e300"), None);
        assert_eq!(parse_integer::<u32>(""), None);
    }

    #[test]
    fn flags() {
        for s in ["Y", "yes", "TRUE", "t", "1"] {
            assert_eq!(parse_flag(s), Some(true), "{s}");
        }
        for s in ["n", "No", "false", "F", "0"] {
            assert_eq!(parse_flag(s), Some(false), "{s}");
        }
        assert_eq!(parse_flag("maybe"), None);
    }

    #[test]
    fn dates() {
        let d = NaiveDate::from_ymd_opt(2015, 1, 23).unwrap();
        assert_eq!(parse_date("2015-01-23"), Some(d));
        assert_eq!(parse_date("2015/01/23"), Some(d));
        assert_eq!(parse_date("2015-01-23T10:00:00Z"), Some(d));
        assert_eq!(parse_date("23/01/2015"), None);
    }
}
