//! Builders of the financial documents the simulator serves, in the vendor samples' shape
//! (§2.3, S-CN13/S-CN14): US dates in the request header, `0E-8` zeros, right-padded expense
//! type codes, allocation custom codes, one journal object per invoice allocation and a
//! journal array per expense allocation.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn number(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn zero() -> Value {
    number("0E-8")
}

/// An invoice payment request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewInvoice {
    pub number: String,
    pub vendor_code: String,
    pub vendor_name: String,
    pub currency: String,
    /// `MM/DD/YYYY` is written from this `YYYY-MM-DD`.
    pub date: String,
    pub lines: Vec<NewLine>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewLine {
    pub description: String,
    pub expense_type: String,
    pub allocations: Vec<NewAllocation>,
}

/// An allocation: percentage, custom codes (1-based position → code), and its journal rows
/// (one on an invoice; any number on an expense entry).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewAllocation {
    pub percent: String,
    pub custom: Vec<(usize, String)>,
    pub journal: Vec<NewJournal>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewJournal {
    pub payer: String,
    pub payee: String,
    pub account: String,
    pub amount: String,
    pub card_amount: Option<String>,
}

impl NewJournal {
    pub fn new(payer: &str, payee: &str, account: &str, amount: &str) -> Self {
        NewJournal {
            payer: payer.into(),
            payee: payee.into(),
            account: account.into(),
            amount: amount.into(),
            card_amount: None,
        }
    }
}

impl NewAllocation {
    pub fn new(percent: &str) -> Self {
        NewAllocation {
            percent: percent.into(),
            ..Default::default()
        }
    }

    /// `allocationCustom{n}Code`.
    pub fn custom(mut self, n: usize, code: &str) -> Self {
        self.custom.push((n, code.into()));
        self
    }

    pub fn journal(mut self, j: NewJournal) -> Self {
        self.journal.push(j);
        self
    }

    fn fields(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        for n in 1..=20 {
            let code = self
                .custom
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, c)| c.clone());
            m.insert(
                format!("allocationCustom{n}Code"),
                code.map(Value::String)
                    .unwrap_or(if n <= 3 { json!("") } else { Value::Null }),
            );
            m.insert(format!("allocationCustom{n}Value"), Value::Null);
        }
        m.insert("allocationPercentage".into(), number(&self.percent));
        m
    }
}

fn us_date(iso: &str) -> String {
    match chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d") {
        Ok(d) => d.format("%m/%d/%Y").to_string(),
        Err(_) => iso.to_string(),
    }
}

impl NewInvoice {
    pub fn new(number: &str, vendor_code: &str) -> Self {
        NewInvoice {
            number: number.into(),
            vendor_code: vendor_code.into(),
            vendor_name: format!("Vendor {vendor_code}"),
            currency: "USD".into(),
            date: "2026-11-20".into(),
            lines: Vec::new(),
        }
    }

    /// A line with one allocation of 100 % on `account`, optionally coded to `custom1`.
    pub fn line(
        mut self,
        description: &str,
        amount: &str,
        account: &str,
        custom1: Option<&str>,
    ) -> Self {
        let mut a = NewAllocation::new("100.00000000")
            .journal(NewJournal::new("COMP", "VEND", account, amount));
        if let Some(c) = custom1 {
            a = a.custom(1, c);
        }
        self.lines.push(NewLine {
            description: description.into(),
            expense_type: "2000".into(),
            allocations: vec![a],
        });
        self
    }

    pub fn to_document(&self) -> Value {
        let mut total = rust_decimal::Decimal::ZERO;
        let lines: Vec<Value> = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut line_total = rust_decimal::Decimal::ZERO;
                let allocations: Vec<Value> = l
                    .allocations
                    .iter()
                    .enumerate()
                    .map(|(k, a)| {
                        let j = a.journal.first().cloned().unwrap_or_else(|| NewJournal::new("COMP", "VEND", "", "0"));
                        line_total += j.amount.parse::<rust_decimal::Decimal>().unwrap_or_default();
                        let mut m = a.fields();
                        m.insert("allocationKey".into(), json!(158 + k));
                        m.insert("allocationAccountCode".into(), json!(j.account));
                        m.insert(
                            "journal".into(),
                            json!({"accountCode": j.account, "amountShipping": 0,
                                   "amountNet": number(&j.amount), "amountGross": number(&j.amount), "tax": null}),
                        );
                        Value::Object(m)
                    })
                    .collect();
                total += line_total;
                json!({
                    "lineItemSequenceOrder": i + 1,
                    "lineItemDescription": l.description,
                    "lineItemQuantity": number("1.00000000"),
                    "lineItemUnitPrice": number(&line_total.to_string()),
                    // Right-padded, as in the sample.
                    "expenseTypeCode": format!("{:<7}", l.expense_type),
                    "expenseTypeName": "Material",
                    "lineItemPurchaseOrderNumber": null, "poLineNumber": null,
                    "allocation": allocations,
                })
            })
            .collect();
        json!({
            "requestHeader": {
                "requestId": format!("REQ{}", self.number), "reqKey": 35,
                "vendorInvoiceNumber": self.number,
                "invoiceDate": us_date(&self.date), "paymentDueDate": us_date(&self.date),
                "currencyAlphaCode": self.currency,
                "requestTotal": number(&total.to_string()),
                "amountNetInvoice": number(&total.to_string()),
                "amountShippingTotal": zero(),
                "poNumber": null, "ledgerCode": "DEFAULT", "payMethodType": "CLIENT", "isTest": "N",
                "submitDate": "2026-11-20T03:37:42.923Z", "netPaymentTermDays": "30",
                "requestTitle": format!("Invoice {}", self.number),
            },
            "vendor": {"vendorName": self.vendor_name, "vendorCode": self.vendor_code,
                       "vendorRemitToAddressCode": "333", "vendorShipFromAddressCode": null},
            "lineItem": lines,
        })
    }
}

/// An expense report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewExpense {
    pub report_id: String,
    pub name: String,
    pub employee_id: String,
    pub first_name: String,
    pub last_name: String,
    pub currency: String,
    pub entries: Vec<NewEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewEntry {
    pub expense_type: String,
    pub expense_type_name: String,
    pub date: String,
    /// `reportEntryPatKey`: CASH, IBCP, CBCP, COPD…
    pub pat_key: String,
    pub personal: bool,
    pub amount: String,
    pub merchant: String,
    pub allocations: Vec<NewAllocation>,
}

impl NewEntry {
    pub fn new(expense_type: &str, name: &str, pat_key: &str, amount: &str) -> Self {
        NewEntry {
            expense_type: expense_type.into(),
            expense_type_name: name.into(),
            date: "2026-11-17".into(),
            pat_key: pat_key.into(),
            personal: false,
            amount: amount.into(),
            merchant: "Astron Hotels".into(),
            allocations: Vec::new(),
        }
    }

    pub fn personal(mut self) -> Self {
        self.personal = true;
        self
    }

    pub fn allocation(mut self, a: NewAllocation) -> Self {
        self.allocations.push(a);
        self
    }
}

impl NewExpense {
    pub fn new(report_id: &str, employee_id: &str) -> Self {
        NewExpense {
            report_id: report_id.into(),
            name: "Trip to Minneapolis".into(),
            employee_id: employee_id.into(),
            first_name: "Charles".into(),
            last_name: "Doe".into(),
            currency: "USD".into(),
            entries: Vec::new(),
        }
    }

    pub fn entry(mut self, e: NewEntry) -> Self {
        self.entries.push(e);
        self
    }

    pub fn to_document(&self) -> Value {
        let mut total = rust_decimal::Decimal::ZERO;
        let entries: Vec<Value> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if !e.personal {
                    total += e
                        .amount
                        .parse::<rust_decimal::Decimal>()
                        .unwrap_or_default();
                }
                let allocations: Vec<Value> = e
                    .allocations
                    .iter()
                    .enumerate()
                    .map(|(k, a)| {
                        let mut m = a.fields();
                        m.insert("allocationId".into(), json!(format!("ALLOC{i}{k}")));
                        m.insert(
                            "journal".into(),
                            Value::Array(
                                a.journal
                                    .iter()
                                    .map(|j| {
                                        json!({
                                            "amountGrossCard": j.card_amount.as_deref().map(number),
                                            "journalAccountCode": j.account,
                                            "journalPayee": j.payee, "journalPayer": j.payer,
                                            "cardTransactionReferenceNumber": null,
                                            "amountNetOfReclaim": number(&j.amount),
                                            "amountNetOfTax": number(&j.amount),
                                            "amountGross": number(&j.amount),
                                            "taxGuid": [], "accountingTransactionType": null
                                        })
                                    })
                                    .collect(),
                            ),
                        );
                        m.insert("tax".into(), json!([]));
                        Value::Object(m)
                    })
                    .collect();
                json!({
                    "entryId": format!("ENTRY{i}"),
                    "expenseTypeCode": format!("{:<7}", e.expense_type),
                    "expenseTypeName": e.expense_type_name,
                    "entryDate": format!("{}T00:00:00.000Z", e.date),
                    "entryCurrAlphaCode": self.currency,
                    "entryApprovedAmount": number(&e.amount),
                    "entryIsPersonal": if e.personal { "Y" } else { "N" },
                    "reportEntryPatKey": e.pat_key,
                    "offsetPayType": "N",
                    "entryDescription": "",
                    "entryVendorDescription": e.merchant,
                    "allocation": allocations,
                })
            })
            .collect();
        json!({
            "employee": {
                "employeeFirstName": self.first_name, "employeeLastName": self.last_name,
                "employeeId": self.employee_id, "employeeMI": null,
                // Never a source of cost centres (§2.7.2): set to something a wrong reader
                // would pick up.
                "employeeCustom6Code": "EMPLOYEE-SECTION",
            },
            "report": {
                "reportKey": 345, "ledgerCode": "DEFAULT", "reportId": self.report_id,
                "totalApprovedAmount": number(&total.to_string()),
                "reportName": self.name, "isTest": "N",
                "employeeCurrencyAlphaCode": self.currency,
                "cashAdvanceReturnsAmount": zero(),
                "reportSubmitDate": "2026-11-18T18:12:03.050Z",
            },
            "expenseEntry": entries,
            "cashAdvanceApplication": [],
        })
    }
}
