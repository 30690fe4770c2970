//! Expense reports: what an employee spent and claims back (SAP Concur expense documents).
//! Which G/L account an expense type books to is the flow's mapping, not the model's.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{CodingRow, Company, Money, Party, Readiness, TaxLine};

/// An approved expense report as the source hands it over for accounting: one employee, one
/// report, its entries. Concur Financial Integration `expense` documents fill it (`report`,
/// `employee`, `expenseEntry[]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpenseReport {
    /// The source's document id (Concur FIS `docId` / `id`), used for acknowledgements and
    /// confirmations.
    pub source_id: String,
    /// Source version (an instant), when the source has one; part of the dedup id.
    #[serde(default)]
    pub version: Option<DateTime<Utc>>,
    /// The report's own id users see (Concur `reportId`).
    pub report_id: String,
    /// The report's name / purpose.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub company: Option<Company>,
    /// The employee who claims (role [`super::PartyRole::Employee`]); Concur's `employeeId`
    /// often doubles as the employee's AP vendor number.
    pub employee: Party,
    /// Whether the source releases the report for posting.
    #[serde(default)]
    pub readiness: Readiness,
    /// The source's status as given, for display (Concur `docStatus`).
    #[serde(default)]
    pub status: String,
    /// Submission (or approval) date.
    #[serde(default)]
    pub report_date: Option<NaiveDate>,
    /// The approved total in the reimbursement currency (Concur `totalApprovedAmount`).
    pub total: Money,
    pub entries: Vec<ExpenseEntry>,
}

/// One expense on a report: a hotel night, a taxi, a mileage claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpenseEntry {
    /// The source's id of the entry (Concur `reportEntryKey`), when it has one.
    #[serde(default)]
    pub source_id: Option<String>,
    /// The transaction date.
    pub date: NaiveDate,
    pub expense_type: ExpenseType,
    #[serde(default)]
    pub description: Option<String>,
    /// The merchant / vendor the employee paid, as written on the report.
    #[serde(default)]
    pub merchant: Option<String>,
    /// The amount in the report's (reimbursement) currency.
    pub amount: Money,
    /// The amount in the currency spent, when it differs from the report's.
    #[serde(default)]
    pub transaction_amount: Option<Money>,
    /// Whether the amounts include the tax below (they usually do on receipts).
    #[serde(default)]
    pub amounts_include_tax: bool,
    #[serde(default)]
    pub tax: Vec<TaxLine>,
    /// How the cost is split over accounts / cost centres (Concur `allocation[]`); empty means
    /// the whole entry goes to the expense type's account.
    #[serde(default)]
    pub allocations: Vec<CodingRow>,
    pub payment_type: PaymentType,
    /// A personal (non-business) expense, owed back by the employee (Concur `entryIsPersonal`).
    #[serde(default)]
    pub personal: bool,
    /// Who owes whom for this entry, row by row, where the source says so (Concur journal rows
    /// `expenseEntry[].allocation[].journal[]`, concur.md §2.7.1); empty when it does not.
    #[serde(default)]
    pub journal: Vec<JournalRow>,
}

/// One accounting row of an expense entry: who pays (`payer`) whom (`payee`), on which
/// account and dimensions, how much. Codes are the source's own, trimmed (Concur: `COMP`,
/// `EMPL`, `IBCP`, `CBCP`, `COPD`); which of them a target bills to whom is the flow's rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRow {
    pub payer: String,
    pub payee: String,
    /// The account (the journal's own account code) and dimensions (from the allocation),
    /// with the row's amount (signed: a credit is negative).
    pub coding: CodingRow,
    /// The amount owed to a company card for this row, when the source gives it (Concur
    /// `amountGrossCard`).
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub card_amount: Option<rust_decimal::Decimal>,
}

/// The kind of expense as the source classifies it (Concur `expenseTypeCode` /
/// `expenseTypeName`). Codes are trimmed (Concur pads them with spaces).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExpenseType {
    pub code: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// How an expense was paid, which decides who is owed for it: Concur's payment type
/// (`reportEntryPatKey`: `CASH`, `IBCP`, `CBCP`, `COPD`, customer keys).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PaymentType {
    /// The source's code, as given (trimmed).
    pub code: String,
    pub paid_by: PaidBy,
}

/// Who paid an expense, hence who the company owes for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidBy {
    /// Out of the employee's pocket (cash, own card, mileage): owed to the employee.
    Employee,
    /// On a corporate card the company settles with the issuer (Concur IBCP, CBCP): owed to
    /// the card issuer, not the employee.
    CompanyCard,
    /// Paid by the company directly (Concur COPD): nothing is owed for it.
    Company,
    /// A code the source conversion does not know: the flow decides (and never pays it to the
    /// employee by default).
    #[default]
    Unknown,
}
