//! Canonical documents: what every source is converted to and every target is built from.
//! Money is `rust_decimal` plus an ISO 4217 currency, never floating point; ids are opaque
//! strings; amounts serialize as exact decimal strings. Fields added after messages were first
//! queued carry `#[serde(default)]`, so those messages still decode.

mod coding;
mod company;
mod confirmations;
mod documents;
mod expenses;
mod money;
mod parties;
mod sync;
mod tax;

pub use coding::{CodingRow, LineKind};
pub use company::Company;
pub use confirmations::{Confirmation, ConfirmationOutcome};
pub use documents::*;
pub use expenses::{ExpenseEntry, ExpenseReport, ExpenseType, JournalRow, PaidBy, PaymentType};
pub use money::{Currency, CurrencyError, Money};
pub use parties::{Address, BankAccount, Party, PartyRole, PaymentTerms};
pub use sync::*;
pub use tax::{TaxLine, tax_total};

#[cfg(test)]
mod tests;
