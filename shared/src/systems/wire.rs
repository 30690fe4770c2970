//! Serde helpers the systems' wire types share.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// A decimal sent as a string (Coupa: "100.00") or as a JSON number (BC: 3310.17), read exactly:
/// serde_json's `arbitrary_precision` keeps the number's digits, so no float is ever involved.
pub fn decimal_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => parse(&s).map(Some).map_err(serde::de::Error::custom),
        Some(serde_json::Value::Number(n)) => parse(&n.to_string())
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a decimal, found {other}"
        ))),
    }
}

fn parse(s: &str) -> Result<Decimal, String> {
    let s = s.trim();
    // `from_str_exact`, not `parse`: `parse` silently rounds digits past the 28th.
    match Decimal::from_str_exact(s) {
        Ok(d) => Ok(d),
        Err(rust_decimal::Error::Underflow) => Err(format!(
            "'{s}' is not a decimal number that can be kept exactly (more than 28 decimal places)"
        )),
        Err(_) => Decimal::from_scientific(s).map_err(|_| format!("'{s}' is not a decimal number")),
    }
}

/// Serialises a decimal as a JSON number with its exact digits (BC wants numbers, A7).
pub fn decimal_number<S: serde::Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    rust_decimal::serde::arbitrary_precision::serialize(&v.normalize(), s)
}

/// A decimal as a `serde_json::Value` number with its exact digits, for bodies built as JSON.
pub fn decimal_json(v: Decimal) -> serde_json::Value {
    serde_json::to_value(Exact(v)).expect("a decimal is a JSON number")
}

#[derive(serde::Serialize)]
struct Exact(#[serde(serialize_with = "decimal_number")] Decimal);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, serde::Serialize)]
    struct T {
        #[serde(default, deserialize_with = "decimal_opt")]
        v: Option<Decimal>,
    }

    #[test]
    fn decimal_json_keeps_every_digit() {
        let v = decimal_json("1234567.8912".parse().unwrap());
        assert_eq!(v.to_string(), "1234567.8912");
    }

    #[test]
    fn strings_and_numbers_are_read_exactly() {
        let a: T = serde_json::from_str(r#"{"v":"12.3456"}"#).unwrap();
        let b: T = serde_json::from_str(r#"{"v":3310.17}"#).unwrap();
        let c: T = serde_json::from_str(r#"{"v":0.1}"#).unwrap();
        assert_eq!(a.v.unwrap().to_string(), "12.3456");
        assert_eq!(b.v.unwrap().to_string(), "3310.17");
        assert_eq!(c.v.unwrap().to_string(), "0.1");
    }

    #[test]
    fn missing_null_and_empty_are_none() {
        for json in [r#"{}"#, r#"{"v":null}"#, r#"{"v":""}"#] {
            let t: T = serde_json::from_str(json).unwrap();
            assert!(t.v.is_none(), "{json}");
        }
    }

    #[test]
    fn digits_a_decimal_cannot_hold_are_refused_not_rounded() {
        for json in [
            r#"{"v":"100.000000000000000000000000001"}"#,
            r#"{"v":100.000000000000000000000000001}"#,
        ] {
            let e = serde_json::from_str::<T>(json).err().unwrap().to_string();
            assert!(
                e.contains("cannot be kept exactly") || e.contains("is not a decimal"),
                "{e}"
            );
        }
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let e = serde_json::from_str::<T>(r#"{"v":"12,00"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("'12,00' is not a decimal"), "{e}");
    }
}
