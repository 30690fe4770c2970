//! Tax (VAT, GST, sales tax) as the source states it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One tax amount the source states on an invoice, a line, a coding row or an expense entry:
/// VAT / GST / sales tax under one tax code. Coupa `tax-code` + `tax-amount`, Basware
/// `taxCode` / `taxPercent1` / `taxSum1` (and the second pair), SAP B1 `TaxCode` / `TaxTotal`,
/// Concur journal `tax`, F&O sales tax group. Whether the amounts it is charged on include it
/// is said by the document (`amounts_include_tax`), not here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxLine {
    /// The source's tax code (Basware `T16`, B1 `V10`, a Coupa tax code), opaque; `None` when
    /// the source gives only a rate and an amount.
    #[serde(default)]
    pub code: Option<String>,
    /// The rate in percent (`16` is 16 %), with the scale the source sent.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub rate: Option<Decimal>,
    /// The tax amount in the document's currency, with the sign of the document (negative on a
    /// credit note that the source shows negative).
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// The amount the tax is computed on, when the source states it.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub base: Option<Decimal>,
}

/// The sum of some tax lines' amounts; `None` when it would overflow a `Decimal`.
pub fn tax_total(lines: &[TaxLine]) -> Option<Decimal> {
    lines
        .iter()
        .try_fold(Decimal::ZERO, |sum, t| sum.checked_add(t.amount))
}
