//! Figures for the sync flows (never assertions): requests and time per purchase order
//! created, per order updated, per vendor created and per payment returned to Coupa, on the
//! embedded runtime against the simulators (no rate limits).
//!
//! `cargo bench -p mlc-e2e --bench sync` (BENCH_ORDERS, default 200, 5 lines each;
//! BENCH_PAYMENTS, default 200).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::Harness;
use mlc_sandbox::coupa::{NewOrderLine, NewPurchaseOrder, NewSupplier};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (Coupa requests, BC round trips, BC budget units: each operation of a `$batch` counts).
fn requests(h: &Harness) -> (usize, usize, u64) {
    (
        h.coupa.requests().len(),
        h.bc.requests().len(),
        h.bc.budget_spent(),
    )
}

fn report(
    what: &str,
    n: usize,
    secs: f64,
    before: (usize, usize, u64),
    after: (usize, usize, u64),
) {
    println!(
        "{what}: {n} in {secs:.2} s = {:.1}/s; {:.2} BC round trips ({:.2} budget units) and {:.2} Coupa requests each",
        n as f64 / secs,
        (after.1 - before.1) as f64 / n as f64,
        (after.2 - before.2) as f64 / n as f64,
        (after.0 - before.0) as f64 / n as f64,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let orders = env_num("BENCH_ORDERS", 200);
    let payments = env_num("BENCH_PAYMENTS", 200);
    let h =
        Harness::with_sync("purchase_orders = true\nsuppliers = \"create\"\npayments = true").await;
    // The harness's poll also reads suppliers; count from a settled start.
    h.run_once().await;

    let sup = h.supplier_id("SUP-001");
    let ids: Vec<i64> = (0..orders)
        .map(|i| {
            let mut po = NewPurchaseOrder::issued(sup, &format!("PO-B{i:05}"));
            for l in 0..5 {
                po = po.line(NewOrderLine::qty(
                    &format!("item {l}"),
                    "3",
                    "12.50",
                    &["6100", "ADM", "P-100"],
                ));
            }
            h.coupa.add_purchase_order(po)
        })
        .collect();
    let before = requests(&h);
    let t = Instant::now();
    h.run_once().await;
    report(
        "purchase orders created (5 lines, 2 dimensions each)",
        orders,
        t.elapsed().as_secs_f64(),
        before,
        requests(&h),
    );

    for id in &ids {
        h.coupa.set_purchase_order_line_quantity(*id, 2, "7");
    }
    let before = requests(&h);
    let t = Instant::now();
    h.run_once().await;
    report(
        "purchase orders updated (one line's quantity)",
        orders,
        t.elapsed().as_secs_f64(),
        before,
        requests(&h),
    );

    let new_suppliers = 50;
    for i in 0..new_suppliers {
        h.coupa.add_supplier(NewSupplier::new(
            &format!("New {i}"),
            &format!("NEW-{i:04}"),
        ));
    }
    let before = requests(&h);
    let t = Instant::now();
    h.run_once().await;
    report(
        "suppliers created as vendors",
        new_suppliers,
        t.elapsed().as_secs_f64(),
        before,
        requests(&h),
    );

    for i in 0..payments {
        h.simple_invoice("SUP-002", &format!("PAY-{i:05}"));
    }
    h.run_once().await;
    for inv in h.bc_invoices() {
        if inv.vendor_invoice_number.starts_with("PAY-") {
            h.bc.mark_paid(inv.id);
        }
    }
    let before = requests(&h);
    let t = Instant::now();
    h.run_once().await;
    report(
        "payments returned to Coupa",
        payments,
        t.elapsed().as_secs_f64(),
        before,
        requests(&h),
    );
}
