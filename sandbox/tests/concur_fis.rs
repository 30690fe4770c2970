//! SAP Concur simulator: rotating refresh tokens and the geolocation (concur.md §2.2), the FIS
//! v4 list with HAL `next` links and both document representations (§2.3, §2.7.3), and the
//! per-item service codes of acknowledgements and posting confirmations (§2.3).

use mlc_sandbox::concur::{ConcurConfig, ConcurSim, NewInvoice};
use serde_json::{Value, json};

const FIS: &str = "financialintegration/fi/v4/companies/transactiontypes";

struct Session {
    geo: String,
    access: String,
}

async fn refresh(sim: &ConcurSim, url: &str, token: &str) -> reqwest::Response {
    let c = sim.config();
    reqwest::Client::new()
        .post(format!("{url}/oauth2/v0/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

async fn session(sim: &ConcurSim) -> Session {
    let body: Value = refresh(sim, &sim.app_url(), &sim.issue_refresh_token())
        .await
        .json()
        .await
        .unwrap();
    Session {
        geo: body["geolocation"].as_str().unwrap().to_string(),
        access: body["access_token"].as_str().unwrap().to_string(),
    }
}

fn invoice(n: &str) -> NewInvoice {
    NewInvoice::new(n, "V10000").line("Merchandise", "50.00", "MATER", None)
}

async fn get(s: &Session, path: &str, format: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/{FIS}/{path}", s.geo))
        .bearer_auth(&s.access)
        .header("documentFormatAs", format)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post(s: &Session, path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/{FIS}/{path}", s.geo))
        .bearer_auth(&s.access)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refresh_rotates_the_token_names_the_geolocation_and_refuses_the_old_one() {
    let sim = ConcurSim::start(ConcurConfig::default()).await.unwrap();
    let first = sim.issue_refresh_token();
    let resp = refresh(&sim, &sim.app_url(), &first).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], "3600", "a string (§2.6)");
    assert_eq!(body["geolocation"], sim.geolocation().as_str());
    assert_ne!(body["refresh_token"], first.as_str());
    let again = refresh(&sim, &sim.app_url(), &first).await;
    assert_eq!(again.status(), 400);
    let err: Value = again.json().await.unwrap();
    assert_eq!(
        (err["code"].as_u64(), err["error"].as_str()),
        (Some(108), Some("invalid_grant"))
    );
    // The new one works, at the geolocation.
    let next = body["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&sim, &sim.geolocation(), next).await.status(), 200);
}

#[tokio::test]
async fn the_api_answers_only_at_the_current_geolocation() {
    let sim = ConcurSim::start(ConcurConfig::default()).await.unwrap();
    let s = session(&sim).await;
    let at_app = reqwest::Client::new()
        .get(format!("{}/{FIS}/invoice/transactions", sim.app_url()))
        .bearer_auth(&s.access)
        .send()
        .await
        .unwrap();
    assert_eq!(at_app.status(), 401);
    assert!(get(&s, "invoice/transactions?limit=5", "json").await["content"].is_array());
    sim.move_geolocation("eu2");
    let moved = reqwest::Client::new()
        .get(format!("{}/{FIS}/invoice/transactions", s.geo))
        .bearer_auth(&s.access)
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 401);
    assert!(sim.geolocation().ends_with("/eu2"));
}

#[tokio::test]
async fn the_list_pages_by_a_next_link_on_an_internal_host_and_serves_both_representations() {
    let sim = ConcurSim::start(ConcurConfig::default()).await.unwrap();
    for n in 0..3 {
        sim.add_invoice(invoice(&format!("INV-{n}")));
    }
    let s = session(&sim).await;
    let page0 = get(&s, "invoice/transactions?page=0&limit=2", "json").await;
    assert_eq!(page0["content"].as_array().unwrap().len(), 2);
    let next = page0["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .unwrap()["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        next.starts_with("https://fiserviceurlhere/") && next.contains("page=1"),
        "{next}"
    );
    assert!(page0["content"][0]["document"].is_object());
    let page1 = get(&s, "invoice/transactions?page=1&limit=2", "text").await;
    assert_eq!(page1["content"].as_array().unwrap().len(), 1);
    assert!(
        page1["links"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["rel"] != "next")
    );
    let text = page1["content"][0]["document"].as_str().unwrap();
    // BigDecimal's zero (serde_json writes the exponent in lower case).
    assert!(
        text.to_ascii_uppercase()
            .contains("\"AMOUNTSHIPPINGTOTAL\":0E-8"),
        "{text}"
    );
    assert!(text.contains("\"expenseTypeCode\":\"2000   \""), "{text}");
}

#[tokio::test]
async fn acknowledgements_and_posting_confirmations_answer_the_service_codes() {
    let sim = ConcurSim::start(ConcurConfig::default()).await.unwrap();
    let id = sim.add_invoice(invoice("INV-A"));
    let recalled = sim.add_invoice(invoice("INV-R"));
    sim.recall(&recalled);
    let s = session(&sim).await;
    let confirmation = |doc: &str| {
        json!({"systemId": "", "postingConfirmations": [{
            "docId": doc, "overallPostingStatusCode": "success",
            "postingDocs": [{"companyId": "C", "documentNumber": "108001", "fiscalYear": "2026",
                             "paymentRelevantLineItems": [], "postingDate": "2026-11-20"}],
            "systemMessages": []}]})
    };
    let early = post(
        &s,
        "invoice/transactions/postingconfirmations",
        confirmation(&id),
    )
    .await;
    assert_eq!(early[0]["code"], 111);
    let ack = post(
        &s,
        "invoice/transactions/acknowledgements",
        json!({"ids": [id, recalled, "nope", id], "systemId": ""}),
    )
    .await;
    let codes: Vec<u64> = ack
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, vec![0, 102, 104, 101]);
    let wrong_type = post(
        &s,
        "expense/transactions/acknowledgements",
        json!({"ids": [id], "systemId": ""}),
    )
    .await;
    assert_eq!(wrong_type[0]["code"], 105);
    let wrong_system = post(
        &s,
        "invoice/transactions/acknowledgements",
        json!({"ids": [id], "systemId": "OTHER"}),
    )
    .await;
    assert_eq!(wrong_system[0]["code"], 99);
    // Not listed once acknowledged; read by id only with ignoreDocumentStatus=yes (§2.7.3).
    assert!(
        get(&s, "invoice/transactions?limit=10", "json").await["content"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let by_id =
        |ignore: &str| format!("invoice/transactions?docId={id}&ignoreDocumentStatus={ignore}");
    assert!(
        get(&s, &by_id("no"), "json").await["content"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        get(&s, &by_id("yes"), "json").await["content"][0]["docStatus"],
        "ACKNOWLEDGED"
    );
    let first = post(
        &s,
        "invoice/transactions/postingconfirmations",
        confirmation(&id),
    )
    .await;
    assert_eq!(first[0]["code"], 0);
    let repeat = post(
        &s,
        "invoice/transactions/postingconfirmations",
        confirmation(&id),
    )
    .await;
    assert_eq!(repeat[0]["code"], 113);
    let gone = post(
        &s,
        "invoice/transactions/postingconfirmations",
        confirmation("nope"),
    )
    .await;
    assert_eq!(gone[0]["code"], 116);
    let was_recalled = post(
        &s,
        "invoice/transactions/postingconfirmations",
        confirmation(&recalled),
    )
    .await;
    assert_eq!(was_recalled[0]["postingConfirmationResult"], "WAS_RECALLED");
    assert_eq!(
        sim.document(&id).unwrap().status,
        "POSTING_CONFIRMED_SUCCESS"
    );
}

#[tokio::test]
async fn payment_confirmations_follow_the_posting_and_answer_noop_on_a_repeat() {
    use mlc_sandbox::concur::{NewAllocation, NewEntry, NewExpense, NewJournal};
    let sim = ConcurSim::start(ConcurConfig::default()).await.unwrap();
    let id = sim.add_expense(NewExpense::new("RPT-1", "E1").entry(
        NewEntry::new("LODNG", "Hotel", "CASH", "10").allocation(
            NewAllocation::new("100").journal(NewJournal::new("COMP", "EMPL", "T", "10")),
        ),
    ));
    let s = session(&sim).await;
    let payment = |pay_ref: &str| {
        json!({"systemId": "", "processingConfirmation": [{
            "docId": id, "processingStatusCode": "CP",
            "clearingDetails": [{"clearingDate": "2026-12-01T12:00:00Z", "clearingAmount": 10,
                "clearingCurrency": "USD",
                "receiver": {"receiverId": "E1", "receiverName": "", "receiverType": "EMPLOYEE"},
                "clearingReference": {"companyCode": "C", "financialDocumentId": "108001",
                    "fiscalYear": "2026", "paymentRef": pay_ref, "paymentMethod": "E"}}]}]})
    };
    let early = post(
        &s,
        "expense/transactions/paymentconfirmations",
        payment("R1"),
    )
    .await;
    assert_eq!(
        early[0]["paymentConfirmationResult"],
        "NOT_POSTING_CONFIRMED"
    );
    let not_expense = post(
        &s,
        "invoice/transactions/paymentconfirmations",
        payment("R1"),
    )
    .await;
    assert_eq!(not_expense[0]["code"], 298);
    post(
        &s,
        "expense/transactions/acknowledgements",
        json!({"ids": [id], "systemId": ""}),
    )
    .await;
    let posting = json!({"systemId": "", "postingConfirmations": [{
        "docId": id, "overallPostingStatusCode": "success", "postingDocs": [], "systemMessages": []}]});
    assert_eq!(
        post(&s, "expense/transactions/postingconfirmations", posting).await[0]["code"],
        0
    );
    let paid = post(
        &s,
        "expense/transactions/paymentconfirmations",
        payment("R1"),
    )
    .await;
    assert_eq!(
        (
            paid[0]["code"].as_u64(),
            paid[0]["paymentConfirmationResult"].as_str()
        ),
        (Some(0), Some("SUCCESS"))
    );
    let repeat = post(
        &s,
        "expense/transactions/paymentconfirmations",
        payment("R1"),
    )
    .await;
    assert_eq!(
        (
            repeat[0]["code"].as_u64(),
            repeat[0]["paymentConfirmationResult"].as_str()
        ),
        (Some(298), Some("NOOP"))
    );
    let second_cp = post(
        &s,
        "expense/transactions/paymentconfirmations",
        payment("R2"),
    )
    .await;
    assert_eq!(second_cp[0]["code"], 213);
    let doc = sim.document(&id).unwrap();
    assert_eq!(
        (doc.status.as_str(), doc.payment_confirmations.len()),
        ("PAYMENT_CONFIRMED_SUCCESS", 1)
    );
}

#[tokio::test]
async fn the_vendor_api_never_upserts_and_answers_each_record() {
    let sim = ConcurSim::start(ConcurConfig::default()).await.unwrap();
    let s = session(&sim).await;
    let send = |method: reqwest::Method, vendor: Value| {
        let s = &s;
        async move {
            reqwest::Client::new()
                .request(method, format!("{}/api/v3.1/invoice/vendors", s.geo))
                .bearer_auth(&s.access)
                .json(&json!({ "Vendor": [vendor] }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let v = json!({"VendorCode": "V1", "AddressCode": "MAIN", "VendorName": "One",
                   "CountryCode": "US", "CurrencyCode": "USD"});
    let put_unknown = send(reqwest::Method::PUT, v.clone()).await;
    assert_eq!(put_unknown["Vendor"][0]["StatusList"][0]["Type"], "ERROR");
    let created = send(reqwest::Method::POST, v.clone()).await;
    assert_eq!(created["Vendor"][0]["StatusList"][0]["Type"], "SUCCESS");
    let again = send(reqwest::Method::POST, v.clone()).await;
    assert_eq!(again["Vendor"][0]["StatusList"][0]["Type"], "ERROR");
    let mut lower = v.clone();
    lower["CountryCode"] = json!("us");
    let bad = send(reqwest::Method::PUT, lower).await;
    assert_eq!(bad["Vendor"][0]["StatusList"][0]["Type"], "ERROR");
    let mut renamed = v.clone();
    renamed["VendorName"] = json!("One Inc.");
    let updated = send(reqwest::Method::PUT, renamed).await;
    assert_eq!(updated["Vendor"][0]["StatusList"][0]["Type"], "SUCCESS");
    assert_eq!(sim.invoice_vendors()[0]["VendorName"], "One Inc.");
}
