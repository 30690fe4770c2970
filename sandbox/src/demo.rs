//! Seeded data for `mlc demo`, the tests and the benchmark: matching master data in both
//! systems (suppliers ↔ vendors, G/L accounts, dimensions) and a deterministic set of
//! Coupa invoices.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Days, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use crate::bc::BcSim;
use crate::coupa::{
    CoupaSim, NewInvoice, NewInvoiceLine, NewOrderLine, NewPurchaseOrder, NewSupplier,
};

/// Coupa supplier number, name, and the BC vendor number it corresponds to
/// (`None`: the supplier has NO BC vendor, so its invoices must be refused/parked).
pub const SUPPLIERS: &[(&str, &str, Option<&str>)] = &[
    ("SUP-001", "Fabrikam, Inc.", Some("V10000")),
    ("SUP-002", "First Up Consultants", Some("V20000")),
    ("SUP-003", "Litware Ltd.", Some("V30000")),
    ("SUP-004", "Contoso Supplies", Some("V40000")),
    ("SUP-009", "Northwind Traders", None),
];

/// G/L accounts in BC, also used as segment-1 of Coupa account codes.
pub const GL_ACCOUNTS: &[(&str, &str)] = &[
    ("6100", "Office Supplies"),
    ("6200", "IT Services"),
    ("6300", "Travel"),
    ("6400", "Consulting"),
];

/// Dimensions in BC; segment-2 (DEPARTMENT) and segment-3 (PROJECT) of Coupa account codes.
pub const DIMENSIONS: &[(&str, &[&str])] = &[
    ("DEPARTMENT", &["ADM", "SALES", "PROD"]),
    ("PROJECT", &["P-100", "P-200", "P-300"]),
];

/// The BC vendor number for a Coupa supplier number, per the demo mapping.
pub fn vendor_for_supplier(supplier_number: &str) -> Option<&'static str> {
    SUPPLIERS
        .iter()
        .find(|s| s.0 == supplier_number)
        .and_then(|s| s.2)
}

/// What `seed_coupa` created (Coupa ids).
#[derive(Clone, Debug, Default)]
pub struct DemoSeed {
    /// Every invoice created, in creation order.
    pub coupa_invoices: Vec<i64>,
    /// Approved "Invoice" documents, including those from SUP-009.
    pub approved: Vec<i64>,
    /// Approved invoices from SUP-009, which has no BC vendor.
    pub unknown_supplier: Vec<i64>,
    /// Invoices in "pending_approval", "draft" or "on_hold".
    pub not_approved: Vec<i64>,
    /// The approved "Credit Note".
    pub credit_note: i64,
    /// (supplier number, Coupa supplier id)
    pub suppliers: Vec<(String, i64)>,
}

pub fn seed_bc(bc: &BcSim) {
    for (_, name, vendor) in SUPPLIERS {
        if let Some(v) = vendor {
            bc.add_vendor(v, name);
        }
    }
    for (no, name) in GL_ACCOUNTS {
        bc.add_account(no, name);
    }
    for (code, values) in DIMENSIONS {
        bc.add_dimension(code, values);
    }
}

/// Creates the demo suppliers that don't exist yet; returns (number, id) of all five.
fn ensure_suppliers(coupa: &CoupaSim) -> Vec<(String, i64)> {
    SUPPLIERS
        .iter()
        .map(|(no, name, _)| {
            let id = coupa
                .supplier_id_by_number(no)
                .unwrap_or_else(|| coupa.add_supplier(NewSupplier::new(name, no)));
            ((*no).to_owned(), id)
        })
        .collect()
}

const DESCRIPTIONS: &[(&str, &[&str])] = &[
    (
        "6100",
        &[
            "Printer paper A4, 5 reams",
            "Toner cartridges",
            "Desk organisers",
        ],
    ),
    (
        "6200",
        &[
            "Cloud hosting, monthly",
            "Laptop support hours",
            "Software licences",
        ],
    ),
    ("6300", &["Flight ORD-SEA", "Hotel, 2 nights", "Rental car"]),
    (
        "6400",
        &[
            "Advisory services",
            "Workshop facilitation",
            "Process review",
        ],
    ),
];

fn random_line(rng: &mut StdRng) -> NewInvoiceLine {
    let (gl, texts) = DESCRIPTIONS[rng.random_range(0..DESCRIPTIONS.len())];
    let dept = DIMENSIONS[0].1[rng.random_range(0..3)];
    let project = DIMENSIONS[1].1[rng.random_range(0..3)];
    // Mostly 2-decimal prices, some with 4 decimals ("12.3456") as Coupa allows.
    let price = if rng.random_bool(0.25) {
        Decimal::new(rng.random_range(10_000..50_000_000), 4)
    } else {
        Decimal::new(rng.random_range(100..500_000), 2)
    };
    // One line in ten is an amount line (no quantity), as in coupa.md §1.6 example A.
    let quantity = (!rng.random_bool(0.1)).then(|| Decimal::from(rng.random_range(1..=10)));
    NewInvoiceLine {
        description: texts[rng.random_range(0..texts.len())].to_owned(),
        quantity,
        price,
        account_segments: vec![gl.into(), dept.into(), project.into()],
        po_number: None,
        order_line_num: None,
    }
}

fn invoice_date(i: usize) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 6).expect("valid") + Days::new((i % 60) as u64)
}

/// Seeds the five suppliers and `approved` approved invoices (deterministic from `seed`),
/// a couple of them from SUP-009, plus 5 not-approved invoices and one approved credit note.
/// One approved invoice number contains `/`, `#`, `&` and `'` to exercise filter escaping.
pub fn seed_coupa(coupa: &CoupaSim, approved: usize, seed: u64) -> DemoSeed {
    let mut rng = StdRng::seed_from_u64(seed);
    let suppliers = ensure_suppliers(coupa);
    let known: Vec<i64> = suppliers.iter().take(4).map(|s| s.1).collect();
    let sup009 = suppliers[4].1;
    let unknown_slots: Vec<usize> = match approved {
        0..=2 => vec![],
        3..=5 => vec![2],
        _ => vec![2, 5],
    };
    let tag = seed % 10_000;
    let mut out = DemoSeed {
        suppliers: suppliers.clone(),
        ..DemoSeed::default()
    };
    for i in 0..approved {
        let from_unknown = unknown_slots.contains(&i);
        let supplier_id = if from_unknown {
            sup009
        } else {
            known[rng.random_range(0..known.len())]
        };
        let number = if i == 1 {
            format!("FAB/{tag}#1&O'NEIL")
        } else {
            format!("INV-{tag:04}-{i:05}")
        };
        let mut inv = NewInvoice::approved(supplier_id, &number);
        inv.invoice_date = invoice_date(i);
        inv.currency = if rng.random_bool(0.2) {
            "EUR".into()
        } else {
            "USD".into()
        };
        for _ in 0..rng.random_range(1..=3) {
            inv.lines.push(random_line(&mut rng));
        }
        let id = coupa.add_invoice(inv);
        out.coupa_invoices.push(id);
        out.approved.push(id);
        if from_unknown {
            out.unknown_supplier.push(id);
        }
    }
    for (i, status) in [
        "pending_approval",
        "draft",
        "on_hold",
        "pending_approval",
        "draft",
    ]
    .iter()
    .enumerate()
    {
        let mut inv = NewInvoice::approved(known[i % known.len()], &format!("NA-{tag:04}-{i:03}"));
        inv.status = (*status).into();
        inv.invoice_date = invoice_date(i);
        inv.lines.push(random_line(&mut rng));
        let id = coupa.add_invoice(inv);
        out.coupa_invoices.push(id);
        out.not_approved.push(id);
    }
    let mut credit = NewInvoice::approved(known[0], &format!("CN-{tag:04}-001"));
    credit.document_type = "Credit Note".into();
    credit.invoice_date = invoice_date(0);
    credit.lines.push(NewInvoiceLine::qty(
        "Returned toner cartridges",
        "2",
        "45.50",
        &["6100", "ADM", "P-100"],
    ));
    out.credit_note = coupa.add_invoice(credit);
    out.coupa_invoices.push(out.credit_note);
    out
}

/// A department code that Coupa account codes may carry but BC's DEPARTMENT dimension lacks.
pub const UNKNOWN_DEPARTMENT: &str = "MARKETING";

/// What [`seed_sync`] created: Coupa documents for the purchase-order, master-data and
/// paid-status flows of `mlc demo`.
#[derive(Clone, Debug, Default)]
pub struct SyncSeed {
    /// (PO number, Coupa id), issued, with lines.
    pub purchase_orders: Vec<(String, i64)>,
    /// The PO the matched invoice bills.
    pub billed_po: String,
    /// (invoice number, Coupa id): approved, its lines bill lines 1 and 2 of `billed_po`
    /// (their own coding says G/L 6100; the order's lines say 6200).
    pub po_invoice: (String, i64),
    /// (invoice number, Coupa id): approved, line 2 coded to department [`UNKNOWN_DEPARTMENT`].
    pub unknown_dimension_invoice: (String, i64),
}

/// Seeds, beside [`seed_coupa`]'s invoices (call it first or not: the suppliers are shared),
/// three issued purchase orders from SUP-001, SUP-003 and SUP-004, an approved SUP-001
/// invoice against the first order's lines, and an approved SUP-002 invoice one of whose
/// lines is coded to a department BC does not have.
pub fn seed_sync(coupa: &CoupaSim) -> SyncSeed {
    let suppliers = ensure_suppliers(coupa);
    let id = |no: &str| {
        suppliers
            .iter()
            .find(|s| s.0 == no)
            .map(|s| s.1)
            .expect("demo supplier")
    };
    let orders = [
        NewPurchaseOrder::issued(id("SUP-001"), "PO-1001")
            .line(NewOrderLine::qty(
                "Laptops",
                "4",
                "1050.00",
                &["6200", "SALES", "P-100"],
            ))
            .line(NewOrderLine::qty(
                "Docking stations",
                "4",
                "189.00",
                &["6200", "SALES", "P-100"],
            )),
        NewPurchaseOrder::issued(id("SUP-003"), "PO-1002").line(NewOrderLine::qty(
            "Workshop facilitation",
            "2",
            "1800.00",
            &["6400", "ADM", "P-200"],
        )),
        NewPurchaseOrder::issued(id("SUP-004"), "PO-1003")
            .line(NewOrderLine::qty(
                "Printer paper A4, 5 reams",
                "20",
                "24.90",
                &["6100", "PROD", "P-300"],
            ))
            .line(NewOrderLine::qty(
                "Toner cartridges",
                "6",
                "45.50",
                &["6100", "PROD", "P-300"],
            )),
    ];
    let purchase_orders = orders
        .into_iter()
        .map(|po| {
            let number = po.po_number.clone();
            (number, coupa.add_purchase_order(po))
        })
        .collect();

    let po_invoice = NewInvoice::approved(id("SUP-001"), "INV-8001")
        .line(
            NewInvoiceLine::qty("Laptops", "4", "1050.00", &["6100", "SALES", "P-100"])
                .against_po("PO-1001", 1),
        )
        .line(
            NewInvoiceLine::qty(
                "Docking stations",
                "4",
                "189.00",
                &["6100", "SALES", "P-100"],
            )
            .against_po("PO-1001", 2),
        );
    let unknown = NewInvoice::approved(id("SUP-002"), "INV-8002")
        .line(NewInvoiceLine::qty(
            "Conference travel",
            "1",
            "640.00",
            &["6300", "SALES", "P-200"],
        ))
        .line(NewInvoiceLine::qty(
            "Trade fair booth",
            "1",
            "2400.00",
            &["6400", UNKNOWN_DEPARTMENT, "P-200"],
        ));
    SyncSeed {
        purchase_orders,
        billed_po: "PO-1001".into(),
        po_invoice: ("INV-8001".into(), coupa.add_invoice(po_invoice)),
        unknown_dimension_invoice: ("INV-8002".into(), coupa.add_invoice(unknown)),
    }
}

static BULK_BATCH: AtomicU64 = AtomicU64::new(1);

/// For the benchmark: `count` approved invoices from SUP-001..SUP-004 (never SUP-009),
/// `lines_per_invoice` lines each (at least 1). Returns their Coupa ids.
pub fn bulk_invoices(coupa: &CoupaSim, count: usize, lines_per_invoice: usize) -> Vec<i64> {
    let batch = BULK_BATCH.fetch_add(1, Ordering::SeqCst);
    let mut rng = StdRng::seed_from_u64(batch);
    let known: Vec<i64> = ensure_suppliers(coupa)
        .into_iter()
        .take(4)
        .map(|s| s.1)
        .collect();
    (0..count)
        .map(|i| {
            let mut inv =
                NewInvoice::approved(known[i % known.len()], &format!("BULK-{batch}-{i:06}"));
            inv.invoice_date = invoice_date(i);
            for _ in 0..lines_per_invoice.max(1) {
                let mut line = random_line(&mut rng);
                // Benchmark lines always carry a quantity, so every invoice posts cleanly.
                line.quantity.get_or_insert(Decimal::ONE);
                inv.lines.push(line);
            }
            coupa.add_invoice(inv)
        })
        .collect()
}
