use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An ISO 4217 alphabetic currency code ("USD", "EUR"). Validated on construction so a
/// mangled code cannot travel to an ERP.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not an ISO 4217 currency code (three letters A-Z)")]
pub struct CurrencyError(pub String);

impl Currency {
    pub fn new(code: &str) -> Result<Self, CurrencyError> {
        let upper = code.trim().to_ascii_uppercase();
        if upper.len() == 3 && upper.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(upper))
        } else {
            Err(CurrencyError(code.to_string()))
        }
    }

    pub fn code(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount in a currency. Amounts keep the scale they arrived with (unit prices keep 4+
/// decimals); rounding is the ERP's business, not ours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_is_normalised_to_upper_case() {
        assert_eq!(Currency::new("eur").unwrap().code(), "EUR");
    }

    #[test]
    fn currency_rejects_anything_but_three_letters() {
        for bad in ["", "US", "USDX", "U$D", "12E"] {
            assert!(Currency::new(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn money_serialises_amount_as_exact_string() {
        let m = Money {
            amount: "12.3456".parse().unwrap(),
            currency: Currency::new("USD").unwrap(),
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"12.3456","currency":"USD"}"#);
        let back: Money = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }
}
