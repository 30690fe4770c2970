//! Accounting documents as the simulator keeps and renders them (§3.5, §3.6, §3.11.8).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// A JSON number holding exactly this decimal (§3.5: amounts are JSON numbers; the workspace's
/// `arbitrary_precision` keeps the digits).
pub(crate) fn num(d: Decimal) -> Value {
    Value::Number(
        d.normalize()
            .to_string()
            .parse()
            .expect("a decimal is a JSON number"),
    )
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn date(d: NaiveDate) -> String {
    format!("{d}T00:00:00.000Z")
}

fn code() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A coding row to seed (StandardCodingEntity). Amounts are given positive; a credit note
/// renders them negative.
#[derive(Clone, Debug)]
pub struct NewCodingRow {
    pub account_code: String,
    pub cost_center_code: Option<String>,
    pub project_code: Option<String>,
    /// `dimCode1..10`: (n, value).
    pub dim_codes: Vec<(u8, String)>,
    pub net_total: Decimal,
    pub tax_code: Option<String>,
    pub tax_percent: Decimal,
    pub order_number: Option<String>,
    pub order_line_number: Option<String>,
}

impl NewCodingRow {
    /// A row on `account_code` for `net_total` (a decimal string), no tax.
    pub fn new(account_code: &str, net_total: &str) -> Self {
        NewCodingRow {
            account_code: account_code.into(),
            cost_center_code: None,
            project_code: None,
            dim_codes: Vec::new(),
            net_total: net_total.parse().expect("decimal net total"),
            tax_code: None,
            tax_percent: Decimal::ZERO,
            order_number: None,
            order_line_number: None,
        }
    }

    pub fn cost_center(mut self, code: &str) -> Self {
        self.cost_center_code = Some(code.into());
        self
    }

    pub fn project(mut self, code: &str) -> Self {
        self.project_code = Some(code.into());
        self
    }

    pub fn dim(mut self, n: u8, value: &str) -> Self {
        self.dim_codes.push((n, value.into()));
        self
    }

    /// Tax on the row: `taxSum = netTotal × percent / 100`, rounded to cents.
    pub fn tax(mut self, code: &str, percent: &str) -> Self {
        self.tax_code = Some(code.into());
        self.tax_percent = percent.parse().expect("decimal percent");
        self
    }

    /// The purchase-order line this row is matched to (§3.5 order-matching fields).
    pub fn order_line(mut self, order: &str, line: &str) -> Self {
        self.order_number = Some(order.into());
        self.order_line_number = Some(line.into());
        self
    }

    fn tax_sum(&self) -> Decimal {
        (self.net_total * self.tax_percent / Decimal::from(100)).round_dp(2)
    }
}

/// An invoice line to seed (the newer spec's `invoiceLines[]`, sent only when the tenant
/// enabled it).
#[derive(Clone, Debug)]
pub struct NewInvoiceLine {
    pub product_name: String,
    pub quantity: Decimal,
    pub net_price: Decimal,
}

impl NewInvoiceLine {
    pub fn new(product_name: &str, quantity: &str, net_price: &str) -> Self {
        NewInvoiceLine {
            product_name: product_name.into(),
            quantity: quantity.parse().expect("decimal quantity"),
            net_price: net_price.parse().expect("decimal price"),
        }
    }
}

/// An accounting document to seed, waiting for transfer.
#[derive(Clone, Debug)]
pub struct NewDocument {
    pub invoice_number: String,
    pub company_code: String,
    pub supplier_code: String,
    pub supplier_name: String,
    pub currency_code: String,
    pub invoice_date: NaiveDate,
    pub due_date: Option<NaiveDate>,
    pub description: Option<String>,
    /// Rendered with negative amounts and the configured credit-note `invoiceTypeCode`.
    pub credit_note: bool,
    pub coding_rows: Vec<NewCodingRow>,
    pub lines: Vec<NewInvoiceLine>,
}

impl NewDocument {
    /// An EUR invoice of company BW00 dated today, without coding rows.
    pub fn invoice(invoice_number: &str, supplier_code: &str) -> Self {
        NewDocument {
            invoice_number: invoice_number.into(),
            company_code: "BW00".into(),
            supplier_code: supplier_code.into(),
            supplier_name: format!("Supplier {supplier_code}"),
            currency_code: "EUR".into(),
            invoice_date: Utc::now().date_naive(),
            due_date: None,
            description: None,
            credit_note: false,
            coding_rows: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// A credit note (§3.11.8: no flag on the wire; negative amounts and a type code).
    pub fn credit_note(invoice_number: &str, supplier_code: &str) -> Self {
        NewDocument {
            credit_note: true,
            ..Self::invoice(invoice_number, supplier_code)
        }
    }

    pub fn coding_row(mut self, row: NewCodingRow) -> Self {
        self.coding_rows.push(row);
        self
    }

    pub fn line(mut self, line: NewInvoiceLine) -> Self {
        self.lines.push(line);
        self
    }

    pub fn company(mut self, code: &str) -> Self {
        self.company_code = code.into();
        self
    }

    pub fn currency(mut self, code: &str) -> Self {
        self.currency_code = code.into();
        self
    }
}

/// What the simulator holds of one accounting document, for tests to read.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DocumentView {
    pub invoice_id: String,
    pub invoice_number: String,
    pub processing_status: String,
    /// Successful acknowledges (a refused repeat is not counted).
    pub acknowledges: u32,
    /// Every transfer response accepted, as posted.
    pub transfer_responses: Vec<Value>,
    /// Every payment response accepted, as posted.
    pub payment_responses: Vec<Value>,
}

pub(crate) struct Doc {
    /// Insertion order: what a continuation token resumes after.
    pub seq: u64,
    pub new: NewDocument,
    pub invoice_id: String,
    pub bumid: String,
    pub row_codes: Vec<String>,
    pub line_codes: Vec<String>,
    pub status: String,
    pub acknowledges: u32,
    pub transfer_responses: Vec<Value>,
    pub payment_responses: Vec<Value>,
    pub voucher_number: Option<String>,
    pub last_updated: DateTime<Utc>,
}

impl Doc {
    pub(crate) fn view(&self) -> DocumentView {
        DocumentView {
            invoice_id: self.invoice_id.clone(),
            invoice_number: self.new.invoice_number.clone(),
            processing_status: self.status.clone(),
            acknowledges: self.acknowledges,
            transfer_responses: self.transfer_responses.clone(),
            payment_responses: self.payment_responses.clone(),
        }
    }

    /// AccountingDocumentEntity as `GET` returns it: flat header fields, `codingRows[]`,
    /// `invoiceLines[]` only when enabled, the responses stored so far (at most 100 each, §3.5).
    /// `negative_credits`: a credit note's amounts are negative.
    pub(crate) fn render_signed(
        &self,
        credit_type_code: &str,
        with_lines: bool,
        negative_credits: bool,
    ) -> Value {
        let n = &self.new;
        let sign = if n.credit_note && negative_credits {
            Decimal::NEGATIVE_ONE
        } else {
            Decimal::ONE
        };
        let net: Decimal = n.coding_rows.iter().map(|r| r.net_total).sum();
        let tax: Decimal = n.coding_rows.iter().map(|r| r.tax_sum()).sum();
        let rows: Vec<Value> = n
            .coding_rows
            .iter()
            .zip(&self.row_codes)
            .enumerate()
            .map(|(i, (r, code))| {
                let mut m = Map::new();
                m.insert("externalCode".into(), json!(code));
                m.insert("rowIndex".into(), json!(i + 1));
                m.insert("accountCode".into(), json!(r.account_code));
                m.insert(
                    "accountName".into(),
                    json!(format!("Account {}", r.account_code)),
                );
                m.insert(
                    "costCenterCode".into(),
                    json!(r.cost_center_code.clone().unwrap_or_default()),
                );
                m.insert(
                    "projectCode".into(),
                    json!(r.project_code.clone().unwrap_or_default()),
                );
                for d in 1..=10u8 {
                    let v = r
                        .dim_codes
                        .iter()
                        .find(|(k, _)| *k == d)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    m.insert(format!("dimCode{d}"), json!(v));
                    m.insert(format!("dimName{d}"), json!(""));
                }
                m.insert("netTotal".into(), num(sign * r.net_total));
                m.insert("grossTotal".into(), num(sign * (r.net_total + r.tax_sum())));
                m.insert(
                    "taxCode".into(),
                    json!(r.tax_code.clone().unwrap_or_default()),
                );
                m.insert("taxPercent".into(), num(r.tax_percent));
                m.insert("taxSum".into(), num(sign * r.tax_sum()));
                if let Some(o) = &r.order_number {
                    m.insert("orderNumber".into(), json!(o));
                }
                if let Some(l) = &r.order_line_number {
                    m.insert("orderLineNumber".into(), json!(l));
                }
                Value::Object(m)
            })
            .collect();
        let mut doc = json!({
            "invoiceId": self.invoice_id,
            "bumid": self.bumid,
            "p2pProcessingMode": "Standard",
            "processingStatus": self.status,
            "invoiceNumber": n.invoice_number,
            "companyCode": n.company_code,
            "companyName": format!("Company {}", n.company_code),
            "supplierCode": n.supplier_code,
            "supplierName": n.supplier_name,
            "currencyCode": n.currency_code,
            "netSum": num(sign * net),
            "grossSum": num(sign * (net + tax)),
            "taxSum1": num(sign * tax),
            "invoiceDate": date(n.invoice_date),
            "paymentBlock": false,
            "lastUpdated": ts(self.last_updated),
            "codingRows": rows,
            "transferResponses": last_100(&self.transfer_responses),
            "paymentResponses": last_100(&self.payment_responses),
            // Fields the connector does not read, as a tenant sends them: a client must
            // tolerate what it does not know (§3.3).
            "text1": "",
            "numeric1": null,
            "transferParameters": [],
        });
        let m = doc.as_object_mut().expect("object");
        if let Some(d) = n.due_date {
            m.insert("dueDate".into(), json!(date(d)));
        }
        if let Some(d) = &n.description {
            m.insert("description".into(), json!(d));
        }
        if let Some(v) = &self.voucher_number {
            m.insert("voucherNumber1".into(), json!(v));
        }
        if n.credit_note {
            m.insert("invoiceTypeCode".into(), json!(credit_type_code));
            m.insert("invoiceTypeName".into(), json!("Credit note"));
        } else {
            m.insert("invoiceTypeCode".into(), json!("RE"));
            m.insert("invoiceTypeName".into(), json!("Invoice"));
        }
        if with_lines {
            let lines: Vec<Value> = n
                .lines
                .iter()
                .zip(&self.line_codes)
                .enumerate()
                .map(|(i, (l, code))| {
                    json!({
                        "externalCode": code,
                        "rowIndex": i + 1,
                        "productName": l.product_name,
                        "quantity": num(sign * l.quantity),
                        "netPrice": num(l.net_price),
                        "netSum": num(sign * (l.quantity * l.net_price)),
                    })
                })
                .collect();
            m.insert("invoiceLines".into(), Value::Array(lines));
        }
        doc
    }
}

fn last_100(v: &[Value]) -> Vec<Value> {
    v[v.len().saturating_sub(100)..].to_vec()
}

/// A page being read: the query it was asked with and the last document it served.
pub(crate) struct Cursor {
    pub query: Vec<(String, String)>,
    pub after_seq: u64,
}

/// A list page stored behind the redirect.
pub(crate) struct Object {
    pub body: Vec<u8>,
    pub continuation: Option<String>,
}

#[derive(Default)]
pub(crate) struct Data {
    pub next_seq: u64,
    pub docs: Vec<Doc>,
    pub cursors: HashMap<String, Cursor>,
    pub objects: HashMap<String, Object>,
}

impl Data {
    pub(crate) fn add(&mut self, new: NewDocument) -> String {
        self.next_seq += 1;
        let invoice_id = code();
        self.docs.push(Doc {
            seq: self.next_seq,
            invoice_id: invoice_id.clone(),
            bumid: uuid::Uuid::new_v4().to_string(),
            row_codes: new.coding_rows.iter().map(|_| code()).collect(),
            line_codes: new.lines.iter().map(|_| code()).collect(),
            new,
            status: "WaitingForTransfer".into(),
            acknowledges: 0,
            transfer_responses: Vec::new(),
            payment_responses: Vec::new(),
            voucher_number: None,
            last_updated: Utc::now(),
        });
        invoice_id
    }

    pub(crate) fn doc_mut(&mut self, invoice_id: &str) -> Option<&mut Doc> {
        self.docs.iter_mut().find(|d| d.invoice_id == invoice_id)
    }

    pub(crate) fn doc(&self, invoice_id: &str) -> Option<&Doc> {
        self.docs.iter().find(|d| d.invoice_id == invoice_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credit_note_renders_negative_amounts_and_its_type_code() {
        let mut d = Data::default();
        let id = d.add(
            NewDocument::credit_note("CN-1", "V1")
                .coding_row(NewCodingRow::new("6100", "100.10").tax("T24", "24")),
        );
        let v = d.doc(&id).unwrap().render_signed("CREDIT", false, true);
        assert_eq!(v["netSum"].to_string(), "-100.1");
        assert_eq!(v["taxSum1"].to_string(), "-24.02");
        assert_eq!(v["grossSum"].to_string(), "-124.12");
        assert_eq!(v["codingRows"][0]["netTotal"].to_string(), "-100.1");
        assert_eq!(v["invoiceTypeCode"], "CREDIT");
        assert!(v.get("invoiceLines").is_none());
    }
}
