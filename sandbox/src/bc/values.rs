//! Value formats (business-central.md A7): dates `YYYY-MM-DD`, datetimes with `Z` and up
//! to 3 fractional digits, decimals as JSON NUMBERS, lowercase GUIDs, enum captions.

use std::cmp::Ordering;

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::errors::{ApiError, ApiResult};
use super::schema::Ty;

/// A decimal as an exact JSON number (serde_json's `arbitrary_precision` keeps the digits).
pub(crate) fn num(d: Decimal) -> Value {
    Value::Number(
        d.normalize()
            .to_string()
            .parse()
            .expect("decimal text is a JSON number"),
    )
}

/// BC renders 0–3 fractional digits, trailing zeros trimmed (A7: `.53Z`, `.15Z`, none).
pub(crate) fn datetime(t: DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let ms = t.timestamp_subsec_millis();
    if ms == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{ms:03}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

pub(crate) fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Weak ETag shaped like BC's (A3: `W/"JzQ0O0…MTswMDsn"` = base64 of `'44;<hash>1;00;'`),
/// different for every version of every record.
pub(crate) fn etag(id: Uuid, version: u64) -> String {
    let hash = Sha256::digest(format!("{id}:{version}"));
    let inner = format!(
        "'44;{}1;00;'",
        base64::engine::general_purpose::STANDARD.encode(&hash[..32])
    );
    format!(
        "W/\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(inner)
    )
}

/// Parses a JSON number exactly. A7: decimals are JSON numbers; a string is refused
/// (doubt: OData's IEEE754Compatible string form may be accepted by BC; we are stricter).
pub(crate) fn decimal_of(v: &Value) -> Option<Decimal> {
    let Value::Number(n) = v else { return None };
    let s = n.to_string();
    s.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&s).ok())
}

fn too_long(len: usize, max: usize, value: &str) -> ApiError {
    ApiError::bad(
        "Application_StringExceededLength",
        format!(
            "The length of the string is {len}, but it must be less than or equal to {max} characters. Value: {value}"
        ),
    )
}

/// Validates and normalises one body value for a writable field.
/// Null is refused: BC's API properties are not nullable.
pub(crate) fn coerce(ty: Ty, v: &Value) -> ApiResult<Value> {
    let bad = ApiError::invalid_body;
    match ty {
        Ty::Guid => {
            let s = v.as_str().ok_or_else(bad)?;
            let id = Uuid::parse_str(s).map_err(|_| bad())?;
            Ok(Value::String(id.to_string()))
        }
        Ty::Code(max) => {
            let s = v.as_str().ok_or_else(bad)?;
            let n = s.chars().count();
            if n > max {
                return Err(too_long(n, max, s));
            }
            Ok(Value::String(s.to_uppercase()))
        }
        Ty::Text(max) => {
            let s = v.as_str().ok_or_else(bad)?;
            let n = s.chars().count();
            if n > max {
                return Err(too_long(n, max, s));
            }
            Ok(Value::String(s.to_owned()))
        }
        Ty::Date => {
            let s = v.as_str().ok_or_else(bad)?;
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
            Ok(Value::String(s.to_owned()))
        }
        Ty::DateTime => {
            let s = v.as_str().ok_or_else(bad)?;
            DateTime::parse_from_rfc3339(s).map_err(|_| bad())?;
            Ok(Value::String(s.to_owned()))
        }
        Ty::Decimal => decimal_of(v).map(num).ok_or_else(bad),
        Ty::Int => v.as_i64().map(Value::from).ok_or_else(bad),
        Ty::Bool => v.as_bool().map(Value::Bool).ok_or_else(bad),
        Ty::Enum(options) => {
            let s = v.as_str().ok_or_else(bad)?;
            if !options.contains(&s) {
                return Err(ApiError::bad(
                    "BadRequest",
                    format!(
                        "'{s}' is not an option. The existing options are: {}",
                        options.join(",")
                    ),
                ));
            }
            Ok(Value::String(s.to_owned()))
        }
    }
}

/// A comparable value extracted from an entity field or a `$filter` literal.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Str(String),
    Guid(Uuid),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Num(Decimal),
    Bool(bool),
}

impl Scalar {
    pub(crate) fn edm(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Str(_) => "Edm.String",
            Scalar::Guid(_) => "Edm.Guid",
            Scalar::Date(_) => "Edm.Date",
            Scalar::DateTime(_) => "Edm.DateTimeOffset",
            Scalar::Num(_) => "Edm.Decimal",
            Scalar::Bool(_) => "Edm.Boolean",
        }
    }

    /// Reads a rendered JSON field as the field's type; Code values compare upper-cased.
    pub(crate) fn of_field(ty: Ty, v: &Value) -> Scalar {
        match (ty, v) {
            (_, Value::Null) => Scalar::Null,
            (Ty::Code(_), Value::String(s)) => Scalar::Str(s.to_uppercase()),
            (Ty::Text(_) | Ty::Enum(_), Value::String(s)) => Scalar::Str(s.clone()),
            (Ty::Guid, Value::String(s)) => {
                Uuid::parse_str(s).map(Scalar::Guid).unwrap_or(Scalar::Null)
            }
            (Ty::Date, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Scalar::Date)
                .unwrap_or(Scalar::Null),
            (Ty::DateTime, Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .map(|t| Scalar::DateTime(t.to_utc()))
                .unwrap_or(Scalar::Null),
            (Ty::Decimal | Ty::Int, v) => decimal_of(v).map(Scalar::Num).unwrap_or(Scalar::Null),
            (Ty::Bool, Value::Bool(b)) => Scalar::Bool(*b),
            _ => Scalar::Null,
        }
    }

    /// Ordering of two values of the same type (None when types differ).
    pub(crate) fn compare(&self, other: &Scalar) -> Option<Ordering> {
        match (self, other) {
            (Scalar::Null, Scalar::Null) => Some(Ordering::Equal),
            (Scalar::Str(a), Scalar::Str(b)) => Some(a.cmp(b)),
            (Scalar::Guid(a), Scalar::Guid(b)) => Some(a.cmp(b)),
            (Scalar::Date(a), Scalar::Date(b)) => Some(a.cmp(b)),
            (Scalar::DateTime(a), Scalar::DateTime(b)) => Some(a.cmp(b)),
            (Scalar::Num(a), Scalar::Num(b)) => Some(a.cmp(b)),
            (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Total order for sorting: nulls first, then by value.
    pub(crate) fn sort_cmp(&self, other: &Scalar) -> Ordering {
        match (self, other) {
            (Scalar::Null, Scalar::Null) => Ordering::Equal,
            (Scalar::Null, _) => Ordering::Less,
            (_, Scalar::Null) => Ordering::Greater,
            _ => self.compare(other).unwrap_or(Ordering::Equal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_trim_trailing_zero_milliseconds() {
        let t = DateTime::parse_from_rfc3339("2020-08-21T07:38:46.530Z")
            .unwrap()
            .to_utc();
        assert_eq!(datetime(t), "2020-08-21T07:38:46.53Z");
        let t = DateTime::parse_from_rfc3339("2020-08-21T07:38:46Z")
            .unwrap()
            .to_utc();
        assert_eq!(datetime(t), "2020-08-21T07:38:46Z");
    }

    #[test]
    fn decimals_render_as_exact_json_numbers() {
        let v = num("3310.170".parse().unwrap());
        assert_eq!(serde_json::to_string(&v).unwrap(), "3310.17");
        assert_eq!(
            decimal_of(&serde_json::from_str("6.00006").unwrap()),
            Some("6.00006".parse().unwrap())
        );
    }

    #[test]
    fn etag_changes_with_every_version() {
        let id = Uuid::new_v4();
        assert_ne!(etag(id, 1), etag(id, 2));
        assert!(etag(id, 1).starts_with("W/\"JzQ0O"));
    }
}
