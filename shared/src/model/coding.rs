//! What a line buys (its kind) and how its cost is split over accounts (coding rows).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{AccountCoding, TaxLine};

/// What a document line is, which decides how a target books it: straight to a G/L account,
/// as an item (stock or service item with a unit of measure), or under a procurement category.
/// Coupa and Concur lines are account lines; SAP B1 `ItemCode` lines and F&O `ItemNumber`
/// lines are items; F&O `ProcurementCategoryName` lines (non-stock) are category lines;
/// Basware invoice lines are items when they carry a `productCode`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LineKind {
    /// Booked to the G/L account (and dimensions) of the line's coding.
    #[default]
    Account,
    /// An item the target knows by number.
    Item {
        /// The item / product number (B1 `ItemCode`, F&O `ItemNumber`, BC item `number`).
        item_number: String,
        /// Unit of measure code ("EA", "HR", "PCS"), when the source gives one.
        #[serde(default)]
        unit_of_measure: Option<String>,
    },
    /// A non-stock purchase classified by procurement category (F&O
    /// `ProcurementCategoryName`, a Coupa commodity); the target derives the account.
    Category {
        category: String,
        /// The category hierarchy, when the target needs it (F&O
        /// `ProcurementCategoryHierarchyName`).
        #[serde(default)]
        hierarchy: Option<String>,
    },
}

/// One share of a line's (or a document's) cost, coded to its own account and dimensions: a
/// Basware coding row, a Concur allocation, an SAP B1 distribution. A line with no coding
/// rows is coded wholly by its own account; a line with several is split over them. Each row
/// gives an amount, a percentage, or both (Concur gives the percentage and the journal
/// amounts); the flow decides what it posts and checks that the shares add up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodingRow {
    /// The source's id of the row (Basware `externalCode`, Concur `allocationKey`), when it
    /// has one.
    #[serde(default)]
    pub source_id: Option<String>,
    /// The G/L account as the source codes it (Basware `accountCode`, Concur
    /// `allocationAccountCode` / `journalAccountCode`, a Coupa account with segments).
    pub account: AccountCoding,
    /// (dimension name as the source names it, value code) in the source's order: Basware
    /// `costCenterCode`, `projectCode`, `dimCode1..10`; Concur `allocationCustomNCode`.
    #[serde(default)]
    pub dimensions: Vec<(String, String)>,
    /// The row's amount in the document's currency, net of tax unless the document says its
    /// amounts include tax.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    /// The row's share of the line in percent (`25` is a quarter).
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub percent: Option<Decimal>,
    /// Tax on this row, when the source states tax per row (Basware, Concur).
    #[serde(default)]
    pub tax: Vec<TaxLine>,
}
