//! Parties: vendors (suppliers), business partners and employees, with the master data a
//! target needs to create or check one.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Company, Currency, Supplier};

/// Which kind of party a record is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    /// A supplier / vendor the company buys from (Coupa supplier, BC / F&O vendor, Basware
    /// supplier, Concur invoice vendor).
    #[default]
    Vendor,
    /// An SAP Business One business partner (`CardType` supplier, customer or lead).
    BusinessPartner,
    /// An employee paid back for expenses (Concur `employee`; often also the AP vendor).
    Employee,
}

/// A party's master data as a source or target knows it: enough to create a vendor, align a
/// business partner with a supplier, or pay an employee. Coupa suppliers, BC vendors, F&O
/// `VendorsV2`, SAP B1 `BusinessPartners`, Basware supplier imports, Concur employees and
/// invoice vendors fill it. Documents keep naming their supplier with [`Supplier`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// The source's id of the party (opaque).
    pub source_id: String,
    pub role: PartyRole,
    /// The number users know the party by (vendor no., `CardCode`, supplier code, employee id).
    #[serde(default)]
    pub number: Option<String>,
    pub name: String,
    /// The company / legal entity the record belongs to, for systems with per-company masters.
    #[serde(default)]
    pub company: Option<Company>,
    /// VAT / tax registration number (Coupa `tax-id`, B1 `FederalTaxID`, F&O
    /// `TaxExemptNumber`, BC `taxRegistrationNumber`).
    #[serde(default)]
    pub tax_registration: Option<String>,
    /// The party's default currency, when it has one.
    #[serde(default)]
    pub currency: Option<Currency>,
    #[serde(default)]
    pub address: Option<Address>,
    #[serde(default)]
    pub payment_terms: Option<PaymentTerms>,
    /// Bank accounts to pay the party into; the first is the default.
    #[serde(default)]
    pub bank_accounts: Vec<BankAccount>,
    #[serde(default)]
    pub email: Option<String>,
    /// Blocked / on hold / inactive in the system that gave it (F&O `OnHoldStatus`, B1
    /// `Valid = tNO`, BC `blocked`, a Coupa supplier not active).
    #[serde(default)]
    pub blocked: bool,
}

impl From<Supplier> for Party {
    fn from(s: Supplier) -> Self {
        Party {
            source_id: s.source_id,
            role: PartyRole::Vendor,
            number: s.number,
            name: s.name,
            tax_registration: s.tax_id,
            ..Party::default()
        }
    }
}

/// A postal address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Street lines in order (street, building, PO box).
    #[serde(default)]
    pub lines: Vec<String>,
    #[serde(default)]
    pub city: Option<String>,
    /// State, province or county code.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code as the source gives it ("US", "DE").
    #[serde(default)]
    pub country: Option<String>,
}

/// Payment terms: when an invoice falls due and what early payment earns. Basware
/// `paymentTermCode` + `cashPercent`, Concur `netPaymentTermDays`, F&O `TermsOfPayment`, BC
/// `paymentTermsId`, SAP B1 payment group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentTerms {
    /// The terms' code in the system that gave them ("NET30", "7D2-NT30"), opaque.
    #[serde(default)]
    pub code: Option<String>,
    /// Days from the invoice (or baseline) date to the net due date.
    #[serde(default)]
    pub net_days: Option<u32>,
    /// Cash discount in percent for paying within `discount_days`.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub discount_percent: Option<Decimal>,
    #[serde(default)]
    pub discount_days: Option<u32>,
}

/// A bank account to pay a party into (Basware `supplierBankIBAN` / `BBAN` / `BIC`, F&O
/// vendor bank accounts, SAP B1 `BPBankAccounts`, BC vendor bank accounts). The account
/// numbers are personal / payment data: `Debug` shows only their last four characters, so a
/// logged document never carries one. (They are serialized in full: queues and targets need
/// them.)
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccount {
    #[serde(default)]
    pub iban: Option<String>,
    /// The domestic account number (BBAN, US account number).
    #[serde(default)]
    pub account_number: Option<String>,
    /// BIC / SWIFT code of the bank.
    #[serde(default)]
    pub bic: Option<String>,
    /// Domestic bank code (routing / sort code / BLZ).
    #[serde(default)]
    pub bank_code: Option<String>,
    #[serde(default)]
    pub bank_name: Option<String>,
    /// The account holder's name, when it differs from the party's.
    #[serde(default)]
    pub holder: Option<String>,
    /// ISO 3166-1 alpha-2 country of the bank.
    #[serde(default)]
    pub country: Option<String>,
}

/// `…1234` for an account number: only the last four characters, and nothing at all for a
/// number of eight characters or fewer (four would then be half of it).
fn masked(number: &str) -> String {
    let chars: Vec<char> = number.chars().filter(|c| !c.is_whitespace()).collect();
    if chars.len() <= 8 {
        "****".to_string()
    } else {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("****{tail}")
    }
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankAccount")
            .field("iban", &self.iban.as_deref().map(masked))
            .field(
                "account_number",
                &self.account_number.as_deref().map(masked),
            )
            .field("bic", &self.bic)
            .field("bank_code", &self.bank_code)
            .field("bank_name", &self.bank_name)
            .field("holder", &self.holder)
            .field("country", &self.country)
            .finish()
    }
}
