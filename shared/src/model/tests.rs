//! Serde round trips of the canonical model (exact decimals), the masked `Debug` of bank
//! details, and decoding of shapes written before the model grew.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn usd(amount: &str) -> Money {
    Money {
        amount: dec(amount),
        currency: Currency::new("USD").unwrap(),
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Serializes, decodes, and checks the value (and so every decimal's scale) came back equal.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) -> String {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value, "{json}");
    json
}

fn tax16() -> TaxLine {
    TaxLine {
        code: Some("T16".into()),
        rate: Some(dec("16.000")),
        amount: dec("160.00"),
        base: Some(dec("1000.00")),
    }
}

fn bank() -> BankAccount {
    BankAccount {
        iban: Some("DE89 3704 0044 0532 0130 00".into()),
        account_number: Some("0532013000".into()),
        bic: Some("COBADEFFXXX".into()),
        bank_code: Some("37040044".into()),
        bank_name: Some("Commerzbank".into()),
        holder: None,
        country: Some("DE".into()),
    }
}

fn coding_rows() -> Vec<CodingRow> {
    vec![
        CodingRow {
            source_id: Some("d5dc444e".into()),
            account: AccountCoding {
                code: Some("18620".into()),
                segments: vec![],
            },
            dimensions: vec![("costCenterCode".into(), "61300".into())],
            amount: Some(dec("750.0000")),
            percent: None,
            tax: vec![tax16()],
        },
        CodingRow {
            source_id: None,
            account: AccountCoding {
                code: Some("18630".into()),
                segments: vec![Some("18630".into()), None],
            },
            dimensions: vec![],
            amount: None,
            percent: Some(dec("25.00000000")),
            tax: vec![],
        },
    ]
}

fn invoice() -> Invoice {
    Invoice {
        source_id: "138e7d94997847aebe7432e521b3dac9".into(),
        version: "2024-03-31T23:19:09Z".parse().unwrap(),
        kind: InvoiceKind::Invoice,
        status: "WaitingForTransfer".into(),
        number: "80000330200233".into(),
        supplier: Supplier {
            source_id: "430022".into(),
            number: Some("430022".into()),
            name: "Easy Office Supplies Inc.".into(),
            tax_id: None,
        },
        invoice_date: date(2024, 4, 1),
        total: usd("1160.00"),
        lines: vec![
            InvoiceLine {
                line_num: 1,
                description: "Office expenses".into(),
                quantity: None,
                unit_price: dec("1000.00"),
                amount: dec("1000.00"),
                account: AccountCoding::default(),
                po_number: Some("PO612298".into()),
                po_line_num: Some(1),
                kind: LineKind::Account,
                tax: vec![tax16()],
                coding: coding_rows(),
            },
            InvoiceLine {
                line_num: 2,
                description: "Toner".into(),
                quantity: Some(dec("3")),
                unit_price: dec("12.3456"),
                amount: dec("37.04"),
                account: AccountCoding::default(),
                po_number: None,
                po_line_num: None,
                kind: LineKind::Item {
                    item_number: "A0001".into(),
                    unit_of_measure: Some("EA".into()),
                },
                tax: vec![],
                coding: vec![],
            },
            InvoiceLine {
                line_num: 3,
                description: "Consulting".into(),
                quantity: Some(dec("1")),
                unit_price: dec("0.0001"),
                amount: dec("0.0001"),
                account: AccountCoding::default(),
                po_number: None,
                po_line_num: None,
                kind: LineKind::Category {
                    category: "Services".into(),
                    hierarchy: None,
                },
                tax: vec![],
                coding: vec![],
            },
        ],
        readiness: Readiness::Ready,
        company: Some(Company::new("BW00")),
        amounts_include_tax: false,
        tax: vec![tax16()],
        due_date: Some(date(2024, 5, 1)),
        payment_terms: Some(PaymentTerms {
            code: Some("7D2-NT30".into()),
            net_days: Some(30),
            discount_percent: Some(dec("2.00")),
            discount_days: Some(7),
        }),
        bank_account: Some(Box::new(bank())),
    }
}

#[test]
fn invoice_round_trips_with_exact_decimals() {
    let json = round_trip(&invoice());
    for exact in [
        r#""rate":"16.000""#,
        r#""amount":"160.00""#,
        r#""percent":"25.00000000""#,
        r#""unit_price":"12.3456""#,
        r#""discount_percent":"2.00""#,
        r#""total":{"amount":"1160.00","currency":"USD"}"#,
        r#""readiness":"ready""#,
        r#""company":"BW00""#,
        r#""kind":{"type":"item","item_number":"A0001","unit_of_measure":"EA"}"#,
    ] {
        assert!(json.contains(exact), "{exact} not in {json}");
    }
    let mut not_ready = invoice();
    not_ready.readiness = Readiness::NotReady("status is 'pending_approval'".into());
    let json = round_trip(&not_ready);
    assert!(
        json.contains(r#""readiness":{"not_ready":"status is 'pending_approval'"}"#),
        "{json}"
    );
}

#[test]
fn purchase_order_round_trips() {
    let po = PurchaseOrder {
        source_id: "12".into(),
        version: "2025-02-01T16:00:05Z".parse().unwrap(),
        revision: Some(3),
        number: "PO-1001".into(),
        status: "bost_Open".into(),
        supplier: Supplier {
            source_id: "V10000".into(),
            number: Some("V10000".into()),
            name: "Maxi-Teq".into(),
            tax_id: Some("US123".into()),
        },
        order_date: Some(date(2025, 1, 31)),
        currency: Currency::new("USD").unwrap(),
        lines: vec![PurchaseOrderLine {
            line_num: 0,
            description: "Paper".into(),
            quantity: dec("5.000"),
            unit_price: dec("12.3456"),
            amount: dec("61.73"),
            uom: Some("EA".into()),
            account: AccountCoding::default(),
            kind: LineKind::Item {
                item_number: "02.00.0174".into(),
                unit_of_measure: Some("EA".into()),
            },
            tax: vec![TaxLine {
                code: Some("V10".into()),
                rate: None,
                amount: dec("6.17"),
                base: None,
            }],
            coding: coding_rows(),
        }],
        company: Some(Company::new("SBODEMOUS")),
        amounts_include_tax: true,
        payment_terms: None,
    };
    let json = round_trip(&po);
    assert!(json.contains(r#""quantity":"5.000""#), "{json}");
}

#[test]
fn party_round_trips_and_a_supplier_becomes_a_vendor() {
    let party = Party {
        source_id: "V10000".into(),
        role: PartyRole::BusinessPartner,
        number: Some("V10000".into()),
        name: "Maxi-Teq".into(),
        company: Some(Company::new("usmf")),
        tax_registration: Some("DE123456789".into()),
        currency: Some(Currency::new("EUR").unwrap()),
        address: Some(Address {
            lines: vec!["110 Main St".into()],
            city: Some("San Jose".into()),
            region: Some("CA".into()),
            postal_code: Some("95101".into()),
            country: Some("US".into()),
        }),
        payment_terms: Some(PaymentTerms {
            code: Some("NET30".into()),
            net_days: Some(30),
            discount_percent: None,
            discount_days: None,
        }),
        bank_accounts: vec![bank()],
        email: Some("orders@maxiteq.com".into()),
        blocked: false,
    };
    let json = round_trip(&party);
    // Serialized in full: queues and targets need the number; only Debug masks it.
    assert!(json.contains("DE89 3704 0044 0532 0130 00"), "{json}");
    assert!(json.contains(r#""role":"business_partner""#), "{json}");

    let vendor = Party::from(Supplier {
        source_id: "8819".into(),
        number: Some("SUP-1".into()),
        name: "Acme".into(),
        tax_id: Some("US-99".into()),
    });
    assert_eq!(vendor.role, PartyRole::Vendor);
    assert_eq!(vendor.tax_registration.as_deref(), Some("US-99"));
    assert!(vendor.bank_accounts.is_empty());
    // The smallest party decodes from its required fields alone.
    let minimal: Party =
        serde_json::from_str(r#"{"source_id":"1","role":"employee","name":"Chris"}"#).unwrap();
    assert_eq!(minimal.role, PartyRole::Employee);
}

#[test]
fn bank_details_are_masked_in_debug() {
    let b = bank();
    let shown = format!("{b:?}");
    assert!(!shown.contains("0532"), "{shown}");
    assert!(!shown.contains("DE89"), "{shown}");
    assert!(shown.contains(r#"iban: Some("****3000")"#), "{shown}");
    assert!(
        shown.contains(r#"account_number: Some("****3000")"#),
        "{shown}"
    );
    assert!(shown.contains("COBADEFFXXX"), "{shown}");

    // Short numbers show nothing at all.
    let short = BankAccount {
        account_number: Some("12345678".into()),
        ..BankAccount::default()
    };
    let shown = format!("{short:?}");
    assert!(!shown.contains("5678"), "{shown}");
    assert!(shown.contains(r#"account_number: Some("****")"#), "{shown}");

    // And masked wherever they are nested: a party, an invoice, pretty-printed too.
    let shown = format!("{:#?}", invoice());
    assert!(!shown.contains("0532013000"), "{shown}");
    assert!(!shown.contains("DE89 3704"), "{shown}");
}

#[test]
fn expense_report_round_trips() {
    let report = ExpenseReport {
        source_id: "e7f810cabc8348cdb051dd9431c8cfbb".into(),
        version: None,
        report_id: "A1B2C3".into(),
        name: Some("Berlin trip".into()),
        company: Some(Company::new("COMPANY_ID_HERE")),
        employee: Party {
            source_id: "22344".into(),
            role: PartyRole::Employee,
            number: Some("22344".into()),
            name: "Charles".into(),
            ..Party::default()
        },
        readiness: Readiness::Ready,
        status: "READY".into(),
        report_date: Some(date(2019, 2, 1)),
        total: usd("220.00"),
        entries: vec![
            ExpenseEntry {
                source_id: Some("1001".into()),
                date: date(2019, 1, 28),
                expense_type: ExpenseType {
                    code: "LODNG".into(),
                    name: Some("Hotel".into()),
                },
                description: None,
                merchant: Some("Hotel Adlon".into()),
                amount: usd("171.00"),
                transaction_amount: Some(Money {
                    amount: dec("150.00"),
                    currency: Currency::new("EUR").unwrap(),
                }),
                amounts_include_tax: true,
                tax: vec![TaxLine {
                    code: Some("DE7".into()),
                    rate: Some(dec("7")),
                    amount: dec("11.19"),
                    base: None,
                }],
                allocations: coding_rows(),
                payment_type: PaymentType {
                    code: "CASH".into(),
                    paid_by: PaidBy::Employee,
                },
                personal: false,
                journal: vec![],
            },
            ExpenseEntry {
                source_id: None,
                date: date(2019, 1, 29),
                expense_type: ExpenseType {
                    code: "TAXI".into(),
                    name: None,
                },
                description: Some("Airport".into()),
                merchant: None,
                amount: usd("49.00"),
                transaction_amount: None,
                amounts_include_tax: false,
                tax: vec![],
                allocations: vec![],
                payment_type: PaymentType {
                    code: "CBCP".into(),
                    paid_by: PaidBy::CompanyCard,
                },
                personal: true,
                journal: vec![],
            },
        ],
    };
    let json = round_trip(&report);
    assert!(
        json.contains(r#""payment_type":{"code":"CBCP","paid_by":"company_card"}"#),
        "{json}"
    );
    assert!(json.contains(r#""amount":"11.19""#), "{json}");
}

#[test]
fn confirmations_round_trip() {
    for outcome in [
        ConfirmationOutcome::Posted {
            target_number: "108001".into(),
            target_id: Some("5d115c9c-44e3-ea11-bb43-000d3a2feca1".into()),
            posting_date: Some(date(2024, 4, 2)),
        },
        ConfirmationOutcome::Failed {
            reason: "Vendor V10000 is blocked".into(),
        },
        ConfirmationOutcome::Paid {
            amount: usd("1136.80"),
            date: date(2024, 5, 3),
            reference: "US01/667799/2019/2".into(),
        },
    ] {
        let c = Confirmation {
            source_id: "0c06ab044834454d91f83cbd7b6431d2".into(),
            source_document_number: Some("A1B2C3".into()),
            company: Some(Company::new("US01")),
            outcome,
        };
        round_trip(&c);
    }
    let paid: Confirmation = serde_json::from_str(
        r#"{"source_id":"1","outcome":{"outcome":"paid","amount":{"amount":"1136.80","currency":"USD"},"date":"2024-05-03","reference":"P-1"}}"#,
    )
    .unwrap();
    match paid.outcome {
        ConfirmationOutcome::Paid { amount, .. } => {
            assert_eq!(amount.amount.to_string(), "1136.80")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tax_total_adds_exactly_and_reports_overflow() {
    let lines = [
        tax16(),
        TaxLine {
            amount: dec("0.005"),
            ..TaxLine::default()
        },
    ];
    assert_eq!(tax_total(&lines).unwrap().to_string(), "160.005");
    let huge = TaxLine {
        amount: Decimal::MAX,
        ..TaxLine::default()
    };
    assert_eq!(tax_total(&[huge.clone(), huge]), None);
}

/// An `Invoice` as the model serialized it before readiness, tax, coding rows, line kinds and
/// terms existed (every field of that shape, as `serde_json` wrote it).
const INVOICE_BEFORE: &str = r#"{"source_id":"92010","version":"2024-03-31T23:19:09Z","kind":"invoice","status":"approved","number":"Test 10","supplier":{"source_id":"8819","number":null,"name":"SAP Test Case - Leases","tax_id":null},"invoice_date":"2024-04-01","total":{"amount":"100.00","currency":"USD"},"lines":[{"line_num":1,"description":"Test","quantity":null,"unit_price":"100.00","amount":"100.00","account":{"code":"3004-T006493004-1072033010-1","segments":["3004","T006493004",null,"1"]},"po_number":null,"po_line_num":null}]}"#;

/// A post message body as the map step writes it today (`events/sqs-post-batch.json`).
const RESOLVED_BEFORE: &str = r#"{"source_id":"92011","version":"2024-03-31T23:24:41Z","kind":"invoice","vendor_number":"V20000","vendor_invoice_number":"INV-2024-0415","supplier_name":"Northwind Supplies","invoice_date":"2024-03-29","total":{"amount":"200.00","currency":"USD"},"lines":[{"description":"Toner cartridges","gl_account":"6420","quantity":"12","unit_cost":"10.1250","dimensions":[["DEPARTMENT","ADM"],["PROJECT","P100"]]},{"description":"Delivery","gl_account":"6430","quantity":"1","unit_cost":"78.50","dimensions":[["DEPARTMENT","OPS"]]}]}"#;

#[test]
fn an_invoice_in_the_earlier_shape_still_decodes() {
    let inv: Invoice = serde_json::from_str(INVOICE_BEFORE).unwrap();
    assert_eq!(inv.number, "Test 10");
    assert_eq!(inv.status, "approved");
    assert_eq!(inv.total.amount.to_string(), "100.00");
    assert_eq!(inv.lines[0].unit_price.to_string(), "100.00");
    assert_eq!(inv.lines[0].account.segment(4), Some("1"));
    // The new fields take their defaults; a readiness never recorded is not ready.
    assert!(!inv.readiness.is_ready());
    assert_eq!(inv.lines[0].kind, LineKind::Account);
    assert!(inv.lines[0].tax.is_empty() && inv.lines[0].coding.is_empty());
    assert!(inv.tax.is_empty() && !inv.amounts_include_tax);
    assert_eq!(
        (
            inv.company,
            inv.due_date,
            inv.payment_terms,
            inv.bank_account
        ),
        (None, None, None, None)
    );
}

#[test]
fn a_resolved_invoice_in_the_earlier_shape_still_decodes_and_reserializes_identically() {
    let r: ResolvedInvoice = serde_json::from_str(RESOLVED_BEFORE).unwrap();
    assert_eq!(r.vendor_number, "V20000");
    assert_eq!(r.lines[0].unit_cost.to_string(), "10.1250");
    assert_eq!(
        r.lines[1].dimensions,
        vec![("DEPARTMENT".into(), "OPS".into())]
    );
    assert_eq!(serde_json::to_string(&r).unwrap(), RESOLVED_BEFORE);
}

#[test]
fn a_purchase_order_in_the_earlier_shape_still_decodes() {
    let po: PurchaseOrder = serde_json::from_str(
        r#"{"source_id":"12","version":"2025-02-01T16:00:05Z","revision":3,"number":"PO-1001","status":"issued","supplier":{"source_id":"4","number":"SUP-001","name":"Fabrikam, Inc.","tax_id":null},"order_date":"2025-01-31","currency":"USD","lines":[{"line_num":1,"description":"Paper","quantity":"5","unit_price":"12.3456","amount":"61.73","uom":"EA","account":{"code":"6100-ADM","segments":["6100","ADM"]}}]}"#,
    )
    .unwrap();
    assert_eq!(po.lines[0].unit_price.to_string(), "12.3456");
    assert_eq!(po.lines[0].kind, LineKind::Account);
    assert_eq!(po.company, None);
}
