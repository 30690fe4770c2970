//! What the simulated company database holds: marketing documents (purchase orders, A/P
//! invoices), business partners and outgoing payments, and how each renders (sap-b1.md §4.5,
//! §4.8).

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::errors::Protocol;
use super::filter::Lit;

/// The document types the simulator keeps (entity set names as in the URL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DocKind {
    PurchaseOrders,
    PurchaseInvoices,
}

impl DocKind {
    pub(crate) fn from_set(name: &str) -> Option<DocKind> {
        match name {
            "PurchaseOrders" => Some(DocKind::PurchaseOrders),
            "PurchaseInvoices" => Some(DocKind::PurchaseInvoices),
            _ => None,
        }
    }

    /// The object type code another document's `BaseType` names it by (§4.5): 22 = PO, 18 = A/P
    /// invoice.
    pub fn object_type(self) -> i32 {
        match self {
            DocKind::PurchaseOrders => 22,
            DocKind::PurchaseInvoices => 18,
        }
    }

    /// The database table a business error names (`[OPOR.CardCode]`).
    pub(crate) fn table(self) -> &'static str {
        match self {
            DocKind::PurchaseOrders => "OPOR",
            DocKind::PurchaseInvoices => "OPCH",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelStatus {
    /// A live document.
    No,
    /// The cancelled original.
    Yes,
    /// The cancellation document itself (§4.8.3).
    Cancellation,
}

impl CancelStatus {
    fn as_str(&self) -> &'static str {
        match self {
            CancelStatus::No => "csNo",
            CancelStatus::Yes => "csYes",
            CancelStatus::Cancellation => "csCancellation",
        }
    }
}

#[derive(Clone, Debug)]
pub struct DocLine {
    pub line_num: i64,
    pub item_code: Option<String>,
    pub description: String,
    pub quantity: Decimal,
    /// Unit price in the document currency.
    pub price: Decimal,
    pub tax_code: Option<String>,
    /// Tax of the line in the document currency.
    pub tax: Decimal,
    pub account_code: Option<String>,
    /// `CostingCode` … `CostingCode5` (§4.8.2).
    pub costing_codes: [Option<String>; 5],
    pub base_type: Option<i32>,
    pub base_entry: Option<i64>,
    pub base_line: Option<i64>,
    pub warehouse_code: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Document {
    pub doc_entry: i64,
    pub doc_num: i64,
    pub card_code: String,
    pub card_name: String,
    pub doc_date: NaiveDate,
    pub doc_due_date: NaiveDate,
    pub num_at_card: Option<String>,
    pub currency: String,
    /// Rate of the document currency to the local currency (1 for local documents).
    pub doc_rate: Decimal,
    pub comments: Option<String>,
    pub lines: Vec<DocLine>,
    pub open: bool,
    pub cancelled: bool,
    pub cancel_status: CancelStatus,
    pub creation_date: NaiveDate,
    pub update_date: NaiveDate,
    pub update_time: NaiveTime,
}

#[derive(Clone, Debug)]
pub struct BusinessPartner {
    pub card_code: String,
    pub card_name: String,
    /// `cSupplier`, `cCustomer` or `cLid`.
    pub card_type: String,
    pub federal_tax_id: Option<String>,
    pub currency: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub valid: bool,
    pub creation_date: NaiveDate,
    pub update_date: NaiveDate,
    pub update_time: NaiveTime,
}

#[derive(Clone, Debug)]
pub struct PaymentInvoice {
    /// The A/P invoice's DocEntry.
    pub doc_entry: i64,
    pub sum_applied: Decimal,
}

#[derive(Clone, Debug)]
pub struct VendorPayment {
    pub doc_entry: i64,
    pub doc_num: i64,
    pub card_code: String,
    pub card_name: String,
    pub doc_date: NaiveDate,
    pub currency: String,
    pub transfer_sum: Decimal,
    pub transfer_reference: Option<String>,
    pub invoices: Vec<PaymentInvoice>,
    pub cancelled: bool,
}

#[derive(Default)]
pub(crate) struct Data {
    pub next_doc_entry: BTreeMap<DocKind, i64>,
    pub documents: BTreeMap<(DocKind, i64), Document>,
    pub partners: BTreeMap<String, BusinessPartner>,
    pub payments: BTreeMap<i64, VendorPayment>,
    pub next_payment_entry: i64,
}

impl Data {
    pub(crate) fn next_entry(&mut self, kind: DocKind) -> i64 {
        let next = self.next_doc_entry.entry(kind).or_insert(1);
        let entry = *next;
        *next += 1;
        entry
    }
}

/// A money or quantity value as a JSON number (B1 sends numbers, §4.5), exact.
pub(crate) fn num(d: Decimal) -> Value {
    let text = d.normalize().to_string();
    Value::Number(text.parse().expect("a decimal is a JSON number"))
}

/// A date as the protocol renders it: `"2021-09-30"` in v1, `"2025-08-31T00:00:00Z"` in v2
/// (§4.4; the exact per-version rule is [U], this follows the samples).
pub(crate) fn date(p: Protocol, d: NaiveDate) -> Value {
    match p {
        Protocol::V1 => json!(d.format("%Y-%m-%d").to_string()),
        Protocol::V2 => json!(format!("{}T00:00:00Z", d.format("%Y-%m-%d"))),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "tYES" } else { "tNO" }
}

fn opt(s: &Option<String>) -> Value {
    s.as_ref().map_or(Value::Null, |s| json!(s))
}

/// The filterable fields of each entity set (what `field` answers for), `None` for an unknown set.
pub(crate) fn filterable(set: &str) -> Option<&'static [&'static str]> {
    Some(match set {
        "PurchaseOrders" | "PurchaseInvoices" => &[
            "DocEntry",
            "DocNum",
            "CardCode",
            "NumAtCard",
            "DocDate",
            "CreationDate",
            "UpdateDate",
            "UpdateTime",
            "DocumentStatus",
            "Cancelled",
        ],
        "BusinessPartners" => &[
            "CardCode",
            "CardName",
            "CardType",
            "CreationDate",
            "UpdateDate",
            "UpdateTime",
            "Valid",
        ],
        "VendorPayments" => &["DocEntry", "DocNum", "CardCode", "DocDate", "Cancelled"],
        _ => return None,
    })
}

impl Document {
    fn is_local(&self, local: &str) -> bool {
        self.currency == local
    }

    /// `DocTotal` in the document's currency: the lines' net plus their tax.
    pub fn total(&self) -> Decimal {
        let (net, tax) = self.fc_sums();
        net + tax
    }

    /// Sums in the document currency: (net, tax).
    fn fc_sums(&self) -> (Decimal, Decimal) {
        self.lines
            .iter()
            .fold((Decimal::ZERO, Decimal::ZERO), |(n, t), l| {
                (n + l.quantity * l.price, t + l.tax)
            })
    }

    pub(crate) fn field(&self, name: &str) -> Option<Lit> {
        Some(match name {
            "DocEntry" => Lit::Int(self.doc_entry),
            "DocNum" => Lit::Int(self.doc_num),
            "CardCode" => Lit::Str(self.card_code.clone()),
            "NumAtCard" => Lit::Str(self.num_at_card.clone().unwrap_or_default()),
            "DocDate" => Lit::Date(self.doc_date),
            "CreationDate" => Lit::Date(self.creation_date),
            "UpdateDate" => Lit::Date(self.update_date),
            "UpdateTime" => Lit::Time(self.update_time),
            "DocumentStatus" => Lit::Str(if self.open { "bost_Open" } else { "bost_Close" }.into()),
            "Cancelled" => Lit::Str(yes_no(self.cancelled).into()),
            _ => return None,
        })
    }

    pub(crate) fn render(&self, p: Protocol, local_currency: &str) -> Value {
        let local = self.is_local(local_currency);
        // §4.8.2 strict assumption: DocTotal is local; DocTotalFc is the document currency's and
        // 0 on local-currency documents. The system currency is the local one here.
        let to_local = |v: Decimal| {
            if local {
                v
            } else {
                (v * self.doc_rate).round_dp(2)
            }
        };
        let (net_fc, tax_fc) = self.fc_sums();
        let total_fc = net_fc + tax_fc;
        let fc = |v: Decimal| if local { Decimal::ZERO } else { v };
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                let row_fc = l.quantity * l.price;
                let mut m = Map::new();
                m.insert("LineNum".into(), json!(l.line_num));
                m.insert("ItemCode".into(), opt(&l.item_code));
                m.insert("ItemDescription".into(), json!(l.description));
                m.insert("Quantity".into(), num(l.quantity));
                m.insert("Price".into(), num(l.price));
                m.insert("UnitPrice".into(), num(l.price));
                m.insert("Currency".into(), json!(self.currency));
                m.insert(
                    "Rate".into(),
                    num(if local { Decimal::ZERO } else { self.doc_rate }),
                );
                m.insert("LineTotal".into(), num(to_local(row_fc)));
                m.insert("RowTotalFC".into(), num(fc(row_fc)));
                m.insert("RowTotalSC".into(), num(to_local(row_fc)));
                m.insert("TaxCode".into(), opt(&l.tax_code));
                m.insert("TaxTotal".into(), num(to_local(l.tax)));
                m.insert("NetTaxAmount".into(), num(to_local(l.tax)));
                m.insert("NetTaxAmountFC".into(), num(fc(l.tax)));
                m.insert("AccountCode".into(), opt(&l.account_code));
                for (i, c) in l.costing_codes.iter().enumerate() {
                    let key = if i == 0 {
                        "CostingCode".to_string()
                    } else {
                        format!("CostingCode{}", i + 1)
                    };
                    m.insert(key, opt(c));
                }
                m.insert("WarehouseCode".into(), opt(&l.warehouse_code));
                // B1 answers -1 for "no base document" on lines; null is the stricter reading
                // of "not copied" for a client (it must treat both as absent). Doubt: we send -1
                // as public samples of copied-from-nothing lines do.
                m.insert("BaseType".into(), json!(l.base_type.unwrap_or(-1)));
                m.insert(
                    "BaseEntry".into(),
                    l.base_entry.map_or(Value::Null, |e| json!(e)),
                );
                m.insert(
                    "BaseLine".into(),
                    l.base_line.map_or(Value::Null, |e| json!(e)),
                );
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        if p == Protocol::V1 {
            m.insert(
                "odata.metadata".into(),
                json!("$metadata#Documents/@Element"),
            );
        }
        m.insert("DocEntry".into(), json!(self.doc_entry));
        m.insert("DocNum".into(), json!(self.doc_num));
        m.insert("DocType".into(), json!("dDocument_Items"));
        m.insert("CardCode".into(), json!(self.card_code));
        m.insert("CardName".into(), json!(self.card_name));
        m.insert("DocDate".into(), date(p, self.doc_date));
        m.insert("DocDueDate".into(), date(p, self.doc_due_date));
        m.insert("TaxDate".into(), date(p, self.doc_date));
        m.insert("NumAtCard".into(), opt(&self.num_at_card));
        m.insert("DocCurrency".into(), json!(self.currency));
        m.insert("DocRate".into(), num(self.doc_rate));
        m.insert("DocTotal".into(), num(to_local(total_fc)));
        m.insert("DocTotalFc".into(), num(fc(total_fc)));
        m.insert("DocTotalSys".into(), num(to_local(total_fc)));
        m.insert("VatSum".into(), num(to_local(tax_fc)));
        m.insert("VatSumFc".into(), num(fc(tax_fc)));
        m.insert("VatSumSys".into(), num(to_local(tax_fc)));
        m.insert("Comments".into(), opt(&self.comments));
        m.insert(
            "DocumentStatus".into(),
            json!(if self.open { "bost_Open" } else { "bost_Close" }),
        );
        m.insert("Cancelled".into(), json!(yes_no(self.cancelled)));
        m.insert("CancelStatus".into(), json!(self.cancel_status.as_str()));
        m.insert("CreationDate".into(), date(p, self.creation_date));
        m.insert("UpdateDate".into(), date(p, self.update_date));
        m.insert(
            "UpdateTime".into(),
            json!(self.update_time.format("%H:%M:%S").to_string()),
        );
        m.insert("DocumentLines".into(), Value::Array(lines));
        Value::Object(m)
    }
}

impl BusinessPartner {
    pub(crate) fn field(&self, name: &str) -> Option<Lit> {
        Some(match name {
            "CardCode" => Lit::Str(self.card_code.clone()),
            "CardName" => Lit::Str(self.card_name.clone()),
            "CardType" => Lit::Str(self.card_type.clone()),
            "CreationDate" => Lit::Date(self.creation_date),
            "UpdateDate" => Lit::Date(self.update_date),
            "UpdateTime" => Lit::Time(self.update_time),
            "Valid" => Lit::Str(yes_no(self.valid).into()),
            _ => return None,
        })
    }

    pub(crate) fn render(&self, p: Protocol) -> Value {
        json!({
            "CardCode": self.card_code,
            "CardName": self.card_name,
            "CardType": self.card_type,
            "FederalTaxID": self.federal_tax_id,
            "Currency": self.currency,
            "EmailAddress": self.email,
            "Phone1": self.phone,
            "Valid": yes_no(self.valid),
            "CreationDate": date(p, self.creation_date),
            "UpdateDate": date(p, self.update_date),
            "UpdateTime": self.update_time.format("%H:%M:%S").to_string(),
        })
    }
}

impl VendorPayment {
    /// §4.8.6: the Payment entity has no UpdateDate/UpdateTime; polled by DocEntry or DocDate.
    pub(crate) fn field(&self, name: &str) -> Option<Lit> {
        Some(match name {
            "DocEntry" => Lit::Int(self.doc_entry),
            "DocNum" => Lit::Int(self.doc_num),
            "CardCode" => Lit::Str(self.card_code.clone()),
            "DocDate" => Lit::Date(self.doc_date),
            "Cancelled" => Lit::Str(yes_no(self.cancelled).into()),
            _ => return None,
        })
    }

    pub(crate) fn render(
        &self,
        p: Protocol,
        invoices: &BTreeMap<(DocKind, i64), Document>,
    ) -> Value {
        let lines: Vec<Value> = self
            .invoices
            .iter()
            .enumerate()
            .map(|(i, pi)| {
                let doc_num = invoices
                    .get(&(DocKind::PurchaseInvoices, pi.doc_entry))
                    .map(|d| d.doc_num);
                json!({
                    "LineNum": i,
                    "DocEntry": pi.doc_entry,
                    "DocNum": doc_num,
                    "SumApplied": num(pi.sum_applied),
                    "AppliedFC": num(Decimal::ZERO),
                    "InvoiceType": "it_PurchaseInvoice",
                    "InstallmentId": 1,
                })
            })
            .collect();
        json!({
            "DocEntry": self.doc_entry,
            "DocNum": self.doc_num,
            "DocType": "rSupplier",
            // §4.5: real metadata quirk, echoed beside DocType; clients must tolerate it.
            "DocTypte": "rSupplier",
            "DocObjectCode": "bopot_OutgoingPayments",
            "CardCode": self.card_code,
            "CardName": self.card_name,
            "DocDate": date(p, self.doc_date),
            "DocCurrency": self.currency,
            "TransferSum": num(self.transfer_sum),
            "TransferReference": self.transfer_reference,
            "Cancelled": yes_no(self.cancelled),
            "CancelStatus": if self.cancelled { "csYes" } else { "csNo" },
            "PaymentInvoices": lines,
        })
    }
}

/// Splits a timestamp into B1's day-granular date and its time-of-day field.
pub(crate) fn stamp(at: NaiveDateTime) -> (NaiveDate, NaiveTime) {
    let t = at.time();
    (
        at.date(),
        NaiveTime::from_hms_opt(
            chrono::Timelike::hour(&t),
            chrono::Timelike::minute(&t),
            chrono::Timelike::second(&t),
        )
        .expect("valid time"),
    )
}
