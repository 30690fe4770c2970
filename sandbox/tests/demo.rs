//! Demo seed data.

mod common;

use common::*;
use mlc_sandbox::demo::{bulk_invoices, seed_coupa, vendor_for_supplier};
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn seed_coupa_creates_the_documented_mix_deterministically() {
    let a = coupa().await;
    let b = coupa().await;
    let seed = seed_coupa(&a, 12, 42);
    seed_coupa(&b, 12, 42);
    assert_eq!(seed.approved.len(), 12);
    assert_eq!(seed.unknown_supplier.len(), 2);
    assert_eq!(seed.not_approved.len(), 5);
    assert_eq!(seed.coupa_invoices.len(), 12 + 5 + 1);
    let cn = a.invoice_json(seed.credit_note).unwrap();
    assert_eq!(cn["document-type"], "Credit Note");
    assert_eq!(cn["status"], "approved");
    for id in &seed.coupa_invoices {
        let (mut x, mut y) = (a.invoice_json(*id).unwrap(), b.invoice_json(*id).unwrap());
        for v in [&mut x, &mut y] {
            let o = v.as_object_mut().unwrap();
            o.remove("created-at");
            o.remove("updated-at");
        }
        assert_eq!(x, y, "same seed, same invoice");
    }
    let unknown = a.invoice_json(seed.unknown_supplier[0]).unwrap();
    assert_eq!(unknown["supplier"]["number"], "SUP-009");
    assert_eq!(vendor_for_supplier("SUP-009"), None);
    assert_eq!(vendor_for_supplier("SUP-002"), Some("V20000"));
}

#[tokio::test]
async fn seed_bc_has_vendors_accounts_and_dimensions() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let get =
        |set: &str| bc_req(Method::GET, &format!("{}/{set}", company_url(&sim)), &token).send();
    let vendors: Value = get("vendors").await.unwrap().json().await.unwrap();
    assert_eq!(vendors["value"].as_array().unwrap().len(), 4);
    assert_eq!(vendors["value"][0]["blocked"], " ");
    let accounts: Value = get("accounts").await.unwrap().json().await.unwrap();
    assert_eq!(accounts["value"].as_array().unwrap().len(), 4);
    let dims: Value = get("dimensions?$expand=dimensionValues")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dims["value"][0]["code"], "DEPARTMENT");
    assert_eq!(
        dims["value"][0]["dimensionValues"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn bulk_invoices_are_approved_and_never_from_sup_009() {
    let sim = coupa().await;
    let ids = bulk_invoices(&sim, 30, 3);
    assert_eq!(ids.len(), 30);
    for id in ids {
        let v = sim.invoice_json(id).unwrap();
        assert_eq!(v["status"], "approved");
        assert_ne!(v["supplier"]["number"], "SUP-009");
        assert_eq!(v["invoice-lines"].as_array().unwrap().len(), 3);
    }
}
