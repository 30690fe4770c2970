//! B1 Service Layer simulator: documents, business partners, payments, `$filter`, paging,
//! day-granular stamps, cancellation and business errors (sap-b1.md §4.3–§4.8), over real HTTP.

use chrono::{NaiveDate, NaiveDateTime};
use mlc_sandbox::b1::{B1Config, B1Sim, DocKind, DocLine, NewDocument, NewPartner, Protocol};
use serde_json::{Value, json};

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

struct Conn {
    sim: B1Sim,
    cookie: String,
    http: reqwest::Client,
}

impl Conn {
    async fn new(cfg: B1Config) -> Conn {
        let sim = B1Sim::start(cfg).await.unwrap();
        sim.set_now(Some(at("2026-07-01 09:00:00")));
        sim.add_partner(NewPartner::supplier("V10000", "Maxi-Teq"));
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{}/Login", sim.service_root(Protocol::V2)))
            .json(&json!({"CompanyDB": "SBODEMOUS", "UserName": "manager", "Password": "b1-password"}))
            .send()
            .await
            .unwrap();
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        Conn { sim, cookie, http }
    }

    fn po(&self, qty: &str) -> i64 {
        self.sim
            .add_document(
                DocKind::PurchaseOrders,
                NewDocument::for_supplier("V10000")
                    .line(DocLine::item("A100", "Paper", qty, "10.25", "1.50")),
            )
            .unwrap()
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = req.header("cookie", &self.cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        (status, resp.json().await.unwrap_or(Value::Null), h)
    }

    async fn get(
        &self,
        p: Protocol,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let url = format!("{}/{path}", self.sim.service_root(p));
        self.send(self.http.get(url), headers).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}/{path}", self.sim.service_root(Protocol::V2));
        let (s, v, _) = self.send(self.http.post(url).json(&body), &[]).await;
        (s, v)
    }
}

fn entries(v: &Value) -> Vec<i64> {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["DocEntry"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn next_link_is_relative_and_pages_by_b1s_pagesize_header() {
    let c = Conn::new(B1Config::default()).await;
    for _ in 0..5 {
        c.po("1");
    }
    let (_, first, _) = c
        .get(Protocol::V1, "PurchaseOrders", &[("B1S-PageSize", "2")])
        .await;
    assert_eq!(entries(&first), [1, 2]);
    let link = first["odata.nextLink"].as_str().unwrap();
    assert_eq!(link, "PurchaseOrders?$skip=2");
    let (_, second, _) = c.get(Protocol::V1, link, &[("B1S-PageSize", "2")]).await;
    assert_eq!(entries(&second), [3, 4]);
    let (_, last, _) = c
        .get(
            Protocol::V1,
            second["odata.nextLink"].as_str().unwrap(),
            &[("B1S-PageSize", "2")],
        )
        .await;
    assert_eq!(entries(&last), [5]);
    assert!(last.get("odata.nextLink").is_none());
}

#[tokio::test]
async fn v2_pages_by_prefer_maxpagesize_with_at_odata_next_link_keeping_the_filter() {
    let c = Conn::new(B1Config::default()).await;
    for _ in 0..3 {
        c.po("1");
    }
    let (_, page, headers) = c
        .get(
            Protocol::V2,
            "PurchaseOrders?$filter=UpdateDate ge '2026-07-01'",
            &[("Prefer", "odata.maxpagesize=2")],
        )
        .await;
    assert_eq!(entries(&page), [1, 2]);
    assert_eq!(headers["preference-applied"], "odata.maxpagesize=2");
    assert_eq!(
        page["@odata.nextLink"],
        "PurchaseOrders?$filter=UpdateDate ge '2026-07-01'&$skip=2"
    );
    assert!(page.get("odata.nextLink").is_none());
    assert_eq!(page["value"][0]["UpdateDate"], "2026-07-01T00:00:00Z");
}

#[tokio::test]
async fn the_default_page_is_twenty_documents() {
    let c = Conn::new(B1Config::default()).await;
    for _ in 0..21 {
        c.po("1");
    }
    let (_, page, _) = c.get(Protocol::V1, "PurchaseOrders", &[]).await;
    assert_eq!(entries(&page).len(), 20);
    assert_eq!(page["odata.nextLink"], "PurchaseOrders?$skip=20");
}

#[tokio::test]
async fn update_date_ge_filter_is_day_granular() {
    let c = Conn::new(B1Config::default()).await;
    let old = c.po("1");
    c.sim.set_now(Some(at("2026-07-02 23:59:59")));
    let new = c.po("1");
    let (_, page, _) = c
        .get(
            Protocol::V1,
            "PurchaseOrders?$filter=UpdateDate ge '2026-07-02'",
            &[],
        )
        .await;
    assert_eq!(entries(&page), [new]);
    assert_eq!(page["value"][0]["UpdateDate"], "2026-07-02");
    assert_eq!(page["value"][0]["UpdateTime"], "23:59:59");
    let (_, all, _) = c
        .get(
            Protocol::V1,
            "PurchaseOrders?$filter=UpdateDate ge '2026-07-01'",
            &[],
        )
        .await;
    assert_eq!(entries(&all), [old, new]);
}

#[tokio::test]
async fn a_second_change_on_the_same_day_keeps_update_date_and_update_time() {
    let c = Conn::new(B1Config::default()).await;
    let po = c.po("1");
    c.sim.set_now(Some(at("2026-07-01 10:00:00")));
    c.sim.change_document(DocKind::PurchaseOrders, po, |d| {
        d.lines[0].quantity = "2".parse().unwrap()
    });
    let (_, first, _) = c
        .get(Protocol::V1, &format!("PurchaseOrders({po})"), &[])
        .await;
    c.sim.set_now(Some(at("2026-07-01 11:00:00")));
    c.sim.change_document(DocKind::PurchaseOrders, po, |d| {
        d.lines[0].quantity = "3".parse().unwrap()
    });
    let (_, second, _) = c
        .get(Protocol::V1, &format!("PurchaseOrders({po})"), &[])
        .await;
    assert_eq!(first["UpdateDate"], second["UpdateDate"]);
    assert_eq!(first["UpdateTime"], second["UpdateTime"]);
    assert_ne!(
        first["DocumentLines"][0]["Quantity"],
        second["DocumentLines"][0]["Quantity"]
    );
}

#[tokio::test]
async fn update_time_moves_on_every_change_when_configured_reliable() {
    let c = Conn::new(B1Config {
        update_time_reliable: true,
        ..B1Config::default()
    })
    .await;
    let po = c.po("1");
    c.sim.set_now(Some(at("2026-07-01 10:00:00")));
    c.sim.change_document(DocKind::PurchaseOrders, po, |d| {
        d.comments = Some("x".into())
    });
    let (_, doc, _) = c
        .get(Protocol::V1, &format!("PurchaseOrders({po})"), &[])
        .await;
    assert_eq!(doc["UpdateTime"], "10:00:00");
}

#[tokio::test]
async fn combined_update_date_and_update_time_filter_of_v4() {
    let c = Conn::new(B1Config::default()).await;
    c.sim.set_now(Some(at("2026-07-01 10:15:30")));
    let same_second = c.po("1");
    c.sim.set_now(Some(at("2026-07-01 10:15:31")));
    let later = c.po("1");
    let f = "$filter=(UpdateDate gt 2026-07-01 or (UpdateDate eq 2026-07-01 and UpdateTime ge 10:15:30))";
    let (_, page, _) = c
        .get(Protocol::V2, &format!("PurchaseOrders?{f}"), &[])
        .await;
    assert_eq!(entries(&page), [same_second, later]);
}

#[tokio::test]
async fn an_unknown_filter_field_is_a_400_in_the_protocols_error_shape() {
    let c = Conn::new(B1Config::default()).await;
    let (status, body, _) = c
        .get(Protocol::V1, "PurchaseOrders?$filter=Nonsense eq 1", &[])
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]["value"]
            .as_str()
            .unwrap()
            .contains("Nonsense")
    );
}

#[tokio::test]
async fn an_unknown_key_is_404_no_matching_records() {
    let c = Conn::new(B1Config::default()).await;
    let (status, body, _) = c.get(Protocol::V1, "PurchaseOrders(99)", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], -2028);
}

#[tokio::test]
async fn cancelling_a_po_marks_it_cancelled_closed_and_restamped() {
    let c = Conn::new(B1Config::default()).await;
    let po = c.po("1");
    c.sim.set_now(Some(at("2026-07-03 08:00:00")));
    let (status, _) = c
        .post(&format!("PurchaseOrders({po})/Cancel"), Value::Null)
        .await;
    assert_eq!(status, 204);
    let (_, doc, _) = c
        .get(Protocol::V1, &format!("PurchaseOrders({po})"), &[])
        .await;
    assert_eq!(doc["Cancelled"], "tYES");
    assert_eq!(doc["CancelStatus"], "csYes");
    assert_eq!(doc["DocumentStatus"], "bost_Close");
    assert_eq!(doc["UpdateDate"], "2026-07-03");
    let (again, _) = c
        .post(&format!("PurchaseOrders({po})/Cancel"), Value::Null)
        .await;
    assert_eq!(again, 400);
}

#[tokio::test]
async fn an_invoice_is_reversed_only_by_a_new_cancellation_document() {
    let c = Conn::new(B1Config::default()).await;
    let inv = c
        .sim
        .add_document(
            DocKind::PurchaseInvoices,
            NewDocument::for_supplier("V10000")
                .num_at_card("INV-1")
                .line(DocLine::item("A", "x", "1", "5", "0")),
        )
        .unwrap();
    let (status, _) = c
        .post(&format!("PurchaseInvoices({inv})/Cancel"), Value::Null)
        .await;
    assert_eq!(status, 400);
    let (status, _) = c
        .post(
            &format!("PurchaseInvoices({inv})/CreateCancellationDocument"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    let (_, page, _) = c.get(Protocol::V1, "PurchaseInvoices", &[]).await;
    let docs = page["value"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(
        (
            docs[0]["Cancelled"].as_str(),
            docs[0]["CancelStatus"].as_str()
        ),
        (Some("tYES"), Some("csYes"))
    );
    assert_eq!(docs[1]["CancelStatus"], "csCancellation");
    assert_ne!(docs[1]["DocEntry"], docs[0]["DocEntry"]);
}

#[tokio::test]
async fn a_document_for_an_unknown_bp_is_a_business_error() {
    let c = Conn::new(B1Config::default()).await;
    let (status, body) = c
        .post("PurchaseOrders", json!({"CardCode": "P2060", "DocumentLines": [{"ItemCode": "A", "Quantity": "1.0000", "UnitPrice": 10}]}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Invalid BP code [OPOR.CardCode] , 'P2060'"
    );
}

#[tokio::test]
async fn an_invoice_copied_from_another_suppliers_po_is_refused() {
    let c = Conn::new(B1Config::default()).await;
    c.sim.add_partner(NewPartner::supplier("V20000", "Other"));
    let po = c.po("1");
    let err = c
        .sim
        .add_document(
            DocKind::PurchaseInvoices,
            NewDocument::for_supplier("V20000")
                .line(DocLine::item("A", "x", "1", "5", "0").from_po(po, 0)),
        )
        .unwrap_err();
    assert_eq!(
        err,
        "Base document card and target document card do not match."
    );
}

#[tokio::test]
async fn foreign_currency_totals_are_local_in_doc_total_and_foreign_in_doc_total_fc() {
    let c = Conn::new(B1Config::default()).await;
    let inv = c
        .sim
        .add_document(
            DocKind::PurchaseInvoices,
            NewDocument::for_supplier("V10000")
                .currency("EUR", "1.10")
                .line(DocLine::item("A", "x", "2", "50.00", "19.00")),
        )
        .unwrap();
    let (_, doc, _) = c
        .get(Protocol::V1, &format!("PurchaseInvoices({inv})"), &[])
        .await;
    assert_eq!(doc["DocTotalFc"].to_string(), "119");
    assert_eq!(doc["DocTotal"].to_string(), "130.9");
    assert_eq!(doc["VatSumFc"].to_string(), "19");
    let local = c.po("2");
    let (_, doc, _) = c
        .get(Protocol::V1, &format!("PurchaseOrders({local})"), &[])
        .await;
    assert_eq!(doc["DocTotalFc"].to_string(), "0");
    assert_eq!(doc["DocTotal"].to_string(), "22");
}

#[tokio::test]
async fn a_duplicate_card_code_is_refused_with_the_already_assigned_message() {
    let c = Conn::new(B1Config::default()).await;
    let (status, body) = c
        .post(
            "BusinessPartners",
            json!({"CardCode": "V30000", "CardName": "New", "CardType": "cSupplier"}),
        )
        .await;
    assert_eq!(
        (status, body["CardType"].as_str()),
        (201, Some("cSupplier"))
    );
    let (status, body) = c
        .post(
            "BusinessPartners",
            json!({"CardCode": "V10000", "CardName": "Dup", "CardType": "S"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already assigned")
    );
    assert_eq!(body["error"]["code"], "-10");
}

#[tokio::test]
async fn a_partner_write_naming_a_property_b1_does_not_have_is_refused_whole() {
    let c = Conn::new(B1Config::default()).await;
    let (status, body) = c
        .post(
            "BusinessPartners",
            json!({"CardCode": "V40000", "CardName": "New", "CardType": "cSupplier", "U_COUPA_ID": "7"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("U_COUPA_ID")
    );
    assert!(c.sim.partner("V40000").is_none(), "nothing of it created");
    let url = format!(
        "{}/BusinessPartners('V10000')",
        c.sim.service_root(Protocol::V2)
    );
    let (status, _, _) = c
        .send(
            c.http
                .patch(url)
                .json(&json!({"CardName": "Renamed", "Street": "Main St"})),
            &[],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        c.sim.partner("V10000").unwrap().card_name,
        "Maxi-Teq",
        "nothing applied"
    );
}

#[tokio::test]
async fn a_card_code_longer_than_15_characters_is_refused_and_a_patch_cannot_change_it() {
    let c = Conn::new(B1Config::default()).await;
    let (status, body) = c
        .post(
            "BusinessPartners",
            json!({"CardCode": "SUPPLIER-0000001", "CardName": "Long", "CardType": "cSupplier"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let url = format!(
        "{}/BusinessPartners('V10000')",
        c.sim.service_root(Protocol::V2)
    );
    let (status, _, _) = c
        .send(c.http.patch(url).json(&json!({"CardCode": "V99999"})), &[])
        .await;
    assert_eq!(status, 400);
    assert!(c.sim.partner("V10000").is_some() && c.sim.partner("V99999").is_none());
}

#[tokio::test]
async fn a_partner_is_deleted_unless_documents_name_it() {
    let c = Conn::new(B1Config::default()).await;
    c.post(
        "BusinessPartners",
        json!({"CardCode": "V50000", "CardName": "Spare", "CardType": "cSupplier"}),
    )
    .await;
    c.po("1");
    let url = |code: &str| {
        format!(
            "{}/BusinessPartners('{code}')",
            c.sim.service_root(Protocol::V2)
        )
    };
    let (status, body, _) = c.send(c.http.delete(url("V10000")), &[]).await;
    assert_eq!(status, 400, "V10000 has a purchase order: {body}");
    assert!(c.sim.partner("V10000").is_some());
    let (status, _, _) = c.send(c.http.delete(url("V50000")), &[]).await;
    assert_eq!(status, 204);
    assert!(c.sim.partner("V50000").is_none());
    let (status, _, _) = c.send(c.http.delete(url("V50000")), &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn business_partners_filter_by_qualified_card_type_and_patch_restamps() {
    let c = Conn::new(B1Config::default()).await;
    c.post(
        "BusinessPartners",
        json!({"CardCode": "C1", "CardName": "Cust", "CardType": "C"}),
    )
    .await;
    let (_, page, _) = c
        .get(
            Protocol::V2,
            "BusinessPartners?$filter=CardType eq SAPB1.BoCardTypes'cSupplier'",
            &[],
        )
        .await;
    let codes: Vec<&str> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["CardCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["V10000"]);
    c.sim.set_now(Some(at("2026-07-05 12:00:00")));
    let url = format!(
        "{}/BusinessPartners('V10000')",
        c.sim.service_root(Protocol::V2)
    );
    let (status, _, _) = c
        .send(
            c.http.patch(url).json(&json!({"CardName": "Maxi-Teq Ltd"})),
            &[],
        )
        .await;
    assert_eq!(status, 204);
    let bp = c.sim.partner("V10000").unwrap();
    assert_eq!(
        (bp.card_name.as_str(), bp.update_date),
        ("Maxi-Teq Ltd", NaiveDate::from_ymd_opt(2026, 7, 5).unwrap())
    );
}

#[tokio::test]
async fn vendor_payments_list_their_invoices_and_echo_doctypte() {
    let c = Conn::new(B1Config::default()).await;
    let inv = c
        .sim
        .add_document(
            DocKind::PurchaseInvoices,
            NewDocument::for_supplier("V10000").line(DocLine::item("A", "x", "1", "100", "0")),
        )
        .unwrap();
    let pay = c
        .sim
        .add_payment("V10000", "WIRE-123", &[(inv, "100.00")])
        .unwrap();
    let (_, page, _) = c
        .get(
            Protocol::V1,
            &format!("VendorPayments?$filter=DocEntry ge {pay}"),
            &[],
        )
        .await;
    let p = &page["value"][0];
    assert_eq!(p["DocTypte"], "rSupplier");
    assert_eq!(p["PaymentInvoices"][0]["DocEntry"], inv);
    assert_eq!(p["PaymentInvoices"][0]["SumApplied"].to_string(), "100");
    let (status, _, _) = c
        .get(
            Protocol::V1,
            "VendorPayments?$filter=UpdateDate ge '2026-07-01'",
            &[],
        )
        .await;
    assert_eq!(status, 400, "payments have no UpdateDate (§4.8.6)");
}

#[tokio::test]
async fn the_control_routes_seed_a_document_cancel_it_and_expire_sessions_over_http() {
    let c = Conn::new(B1Config::default()).await;
    let http = reqwest::Client::new();
    let base = c.sim.base_url();
    let resp = http
        .post(format!("{base}/_sandbox/PurchaseOrders"))
        .json(&json!({"card_code": "V10000", "lines": [{"item_code": "A", "description": "x", "quantity": "1", "price": "2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let entry = resp.json::<Value>().await.unwrap()["DocEntry"]
        .as_i64()
        .unwrap();
    let cancel = http
        .post(format!("{base}/_sandbox/PurchaseOrders/{entry}/Cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 204);
    assert!(
        c.sim
            .document(DocKind::PurchaseOrders, entry)
            .unwrap()
            .cancelled
    );
    let unknown = http
        .post(format!("{base}/_sandbox/PurchaseOrders"))
        .json(&json!({"card_code": "NOPE", "lines": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    http.post(format!("{base}/_sandbox/expire-sessions"))
        .send()
        .await
        .unwrap();
    let (status, _, _) = c.get(Protocol::V1, "PurchaseOrders", &[]).await;
    assert_eq!(status, 401);
    assert!(
        c.sim
            .requests()
            .iter()
            .all(|r| !r.path.starts_with("/_sandbox"))
    );
}
