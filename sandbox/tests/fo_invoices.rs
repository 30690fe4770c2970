//! F&O simulator: pending vendor invoices (d365-fo.md B4.1, B4.2, B5, B9): headers before
//! lines, legal entities, dimension display strings, posting and payment.

#[path = "fo_common/mod.rs"]
mod fo_common;

use fo_common::*;
use rust_decimal::Decimal;
use serde_json::json;

#[tokio::test]
async fn a_line_whose_header_is_missing_is_refused() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, body) = api
        .post(
            "VendorInvoiceLines",
            line("usmf", "NOPE", 1, "USD", "600100"),
        )
        .await;
    assert_eq!(status, 500);
    assert!(inner(&body).contains("'NOPE'"), "{body}");
    assert!(sim.pending_invoices().is_empty());
}

#[tokio::test]
async fn a_header_without_header_reference_is_refused() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let mut h = header("usmf", "", "INV-1");
    h.as_object_mut().unwrap().remove("HeaderReference");
    let (status, body) = api.post("VendorInvoiceHeaders", h).await;
    assert_eq!(status, 500);
    assert!(inner(&body).contains("HeaderReference"), "{body}");
}

#[tokio::test]
async fn a_vendor_present_in_one_legal_entity_only_is_refused_in_the_other() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let mut h = header("usmf", "H1", "INV-1");
    h["VendorAccount"] = json!("DE-001");
    let (status, body) = api.post("VendorInvoiceHeaders", h.clone()).await;
    assert_eq!(status, 500);
    assert!(
        inner(&body).contains("The value 'DE-001' in field 'Vendor account' is not found"),
        "{body}"
    );
    h["dataAreaId"] = json!("demf");
    assert_eq!(api.post("VendorInvoiceHeaders", h).await.0, 201);
}

#[tokio::test]
async fn the_same_invoice_number_is_accepted_once_per_legal_entity() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    assert_eq!(
        api.post("VendorInvoiceHeaders", header("usmf", "A1", "INV-7"))
            .await
            .0,
        201
    );
    assert_eq!(
        api.post("VendorInvoiceHeaders", header("demf", "A1", "INV-7"))
            .await
            .0,
        201
    );
    let (status, body) = api
        .post("VendorInvoiceHeaders", header("usmf", "A2", "INV-7"))
        .await;
    assert_eq!(status, 500);
    assert!(inner(&body).contains("'INV-7' is already used"), "{body}");
    let companies: Vec<String> = sim
        .pending_invoices()
        .iter()
        .map(|i| i.company.clone())
        .collect();
    assert_eq!(companies, vec!["demf", "usmf"]);
}

#[tokio::test]
async fn header_currency_defaults_to_the_vendors_and_a_line_in_another_is_refused() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (_, h) = api
        .post("VendorInvoiceHeaders", header("demf", "H1", "INV-1"))
        .await;
    assert_eq!(h["Currency"], "EUR");
    let (status, body) = api
        .post("VendorInvoiceLines", line("demf", "H1", 1, "USD", "600100"))
        .await;
    assert_eq!(status, 500);
    assert!(inner(&body).contains("Currency 'USD'"), "{body}");
    assert_eq!(
        api.post("VendorInvoiceLines", line("demf", "H1", 1, "EUR", "600100"))
            .await
            .0,
        201
    );
}

#[tokio::test]
async fn an_invoice_number_over_20_characters_is_refused() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, body) = api
        .post(
            "VendorInvoiceHeaders",
            header("usmf", "H1", "INV-123456789012345678"),
        )
        .await;
    assert_eq!(status, 500);
    assert!(inner(&body).contains("too long"), "{body}");
}

#[tokio::test]
async fn a_dimension_value_the_legal_entity_lacks_is_refused_naming_it() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    api.post("VendorInvoiceHeaders", header("demf", "H1", "INV-1"))
        .await;
    // OU_2 belongs to usmf only.
    let (status, body) = api
        .post(
            "VendorInvoiceLines",
            line("demf", "H1", 1, "EUR", "600100-001-OU_2-D10"),
        )
        .await;
    assert_eq!(status, 500);
    let msg = inner(&body);
    assert!(
        msg.contains("Value 'OU_2' for dimension 'CostCenter' does not exist"),
        "{msg}"
    );
    let (status, _) = api
        .post(
            "VendorInvoiceLines",
            line("demf", "H1", 1, "EUR", "600100-001-OU_1-D10"),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn an_unknown_main_account_is_refused_naming_it() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    api.post("VendorInvoiceHeaders", header("usmf", "H1", "INV-1"))
        .await;
    let (status, body) = api
        .post(
            "VendorInvoiceLines",
            line("usmf", "H1", 1, "USD", "999999-001"),
        )
        .await;
    assert_eq!(status, 500);
    assert!(inner(&body).contains("Main account '999999'"), "{body}");
}

#[tokio::test]
async fn a_refused_combination_names_its_values_and_passes_once_allowed() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    api.post("VendorInvoiceHeaders", header("usmf", "H1", "INV-1"))
        .await;
    let combo = [("MainAccount", "600200"), ("CostCenter", "OU_2")];
    sim.refuse_combination(&combo);
    let (status, body) = api
        .post(
            "VendorInvoiceLines",
            line("usmf", "H1", 1, "USD", "600200-001-OU_2"),
        )
        .await;
    assert_eq!(status, 500);
    let msg = inner(&body);
    assert!(
        msg.contains("MainAccount '600200'") && msg.contains("CostCenter 'OU_2'"),
        "{msg}"
    );
    sim.allow_combination(&combo);
    let (status, _) = api
        .post(
            "VendorInvoiceLines",
            line("usmf", "H1", 1, "USD", "600200-001-OU_2"),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn extra_display_segments_are_dropped_and_missing_ones_blank() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    api.post("VendorInvoiceHeaders", header("usmf", "H1", "INV-1"))
        .await;
    api.post(
        "VendorInvoiceLines",
        line("usmf", "H1", 1, "USD", "600100-001-OU_1-D10-EXTRA"),
    )
    .await;
    api.post(
        "VendorInvoiceLines",
        line("usmf", "H1", 2, "USD", "600100-002"),
    )
    .await;
    let inv = &sim.pending_invoices()[0];
    let shown: Vec<&str> = inv
        .lines
        .iter()
        .map(|l| l.main_account_display.as_str())
        .collect();
    assert_eq!(shown, vec!["600100-001-OU_1-D10", "600100-002--"]);
}

#[tokio::test]
async fn a_posted_invoice_leaves_the_pending_entities_and_refuses_edits() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    api.post("VendorInvoiceHeaders", header("usmf", "H1", "INV-1"))
        .await;
    api.post("VendorInvoiceLines", line("usmf", "H1", 1, "USD", "600100"))
        .await;
    let voucher = sim.post_invoice("usmf", "H1").unwrap();
    let key = "VendorInvoiceHeaders(dataAreaId='usmf',HeaderReference='H1')";
    assert_eq!(
        api.patch(key, json!({"InvoiceDescription":"x"}), None)
            .await
            .0,
        404
    );
    assert_eq!(
        api.post("VendorInvoiceLines", line("usmf", "H1", 2, "USD", "600100"))
            .await
            .0,
        500
    );
    let (_, posted) = api
        .get(
            "VendInvoiceJourBiEntities?$filter=InvoiceId eq 'INV-1' and InvoiceAccount eq 'US-101'",
        )
        .await;
    let rows = posted["value"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["LedgerVoucher"], voucher.as_str());
    assert_eq!(rows[0]["InvoiceAmount"].to_string(), "100.25");
    // And the number stays used: the same vendor invoice number cannot come in again.
    assert_eq!(
        api.post("VendorInvoiceHeaders", header("usmf", "H2", "INV-1"))
            .await
            .0,
        500
    );
}

#[tokio::test]
async fn an_invoice_without_lines_cannot_be_posted() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    api.post("VendorInvoiceHeaders", header("usmf", "H1", "INV-1"))
        .await;
    assert!(sim.post_invoice("usmf", "H1").is_err());
    assert_eq!(sim.pending_invoices().len(), 1);
}

#[tokio::test]
async fn payment_closes_the_vendor_transaction() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    api.post("VendorInvoiceHeaders", header("usmf", "H1", "INV-1"))
        .await;
    api.post("VendorInvoiceLines", line("usmf", "H1", 1, "USD", "600100"))
        .await;
    sim.post_invoice("usmf", "H1").unwrap();
    let open_filter =
        "VendTransBiEntities?$filter=Invoice eq 'INV-1' and Closed eq 1900-01-01T00:00:00Z";
    assert_eq!(
        api.get(open_filter).await.1["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sim.pay_invoice("usmf", "US-101", "INV-1", Some(Decimal::new(25, 0)))
        .unwrap();
    let (_, partly) = api.get(open_filter).await;
    assert_eq!(partly["value"][0]["SettleAmountCur"].to_string(), "-25");
    sim.pay_invoice("usmf", "US-101", "INV-1", None).unwrap();
    assert_eq!(
        api.get(open_filter).await.1["value"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let paid = &sim.posted_invoices()[0];
    assert!(paid.paid);
    assert_eq!(paid.settled, Decimal::new(10025, 2));
}

#[tokio::test]
async fn an_amount_sent_as_a_string_is_refused() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    api.post("VendorInvoiceHeaders", header("usmf", "H1", "INV-1"))
        .await;
    let mut l = line("usmf", "H1", 1, "USD", "600100");
    l["NetAmount"] = json!("100.25");
    assert_eq!(api.post("VendorInvoiceLines", l).await.0, 400);
}
