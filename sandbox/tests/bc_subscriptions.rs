//! Business Central webhook subscriptions and notifications over real HTTP
//! (business-central.md A8, gotchas 8 and 10).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{Method as AxMethod, StatusCode};
use chrono::{TimeDelta, Utc};
use common::*;
use mlc_sandbox::bc::{BcConfig, BcSim};
use reqwest::Method;
use serde_json::{Value, json};

/// (method, validationToken, body) of one request the receiver got.
type Got = (String, Option<String>, String);

/// A tiny webhook receiver: answers the handshake (echoing the token unless told not to)
/// and notifications (with a settable status); records what it got.
#[derive(Clone)]
struct Receiver {
    url: String,
    echo: Arc<AtomicBool>,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Got>>>,
}

async fn receive(
    State(r): State<Receiver>,
    method: AxMethod,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> (StatusCode, String) {
    let token = q.get("validationToken").cloned();
    r.got
        .lock()
        .unwrap()
        .push((method.to_string(), token.clone(), body));
    match token {
        Some(t) if r.echo.load(Ordering::SeqCst) => (StatusCode::OK, t),
        Some(_) => (StatusCode::OK, "not the token".into()),
        None => (
            StatusCode::from_u16(r.status.load(Ordering::SeqCst)).unwrap(),
            String::new(),
        ),
    }
}

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = Receiver {
        url: format!("http://{}/hook", listener.local_addr().unwrap()),
        echo: Arc::new(AtomicBool::new(true)),
        status: Arc::new(AtomicU16::new(202)),
        got: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::any(receive))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    r
}

async fn sim() -> BcSim {
    bc_with(BcConfig {
        notification_delay: Duration::from_millis(50),
        ..BcConfig::default()
    })
    .await
}

fn subs_url(sim: &BcSim) -> String {
    format!("{}/subscriptions", sim.api_root())
}

fn resource(sim: &BcSim, set: &str) -> String {
    format!("/api/v2.0/companies({})/{set}", sim.company_id())
}

async fn subscribe(sim: &BcSim, token: &str, url: &str, set: &str) -> reqwest::Response {
    bc_req(Method::POST, &subs_url(sim), token)
        .json(&json!({
            "notificationUrl": url,
            "resource": resource(sim, set),
            "clientState": "secret-state",
        }))
        .send()
        .await
        .unwrap()
}

/// Waits until `cond` holds on the sim (or 10 s pass).
async fn wait_for(sim: &BcSim, cond: impl Fn(&BcSim) -> bool) -> bool {
    for _ in 0..200 {
        if cond(sim) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn subscription_handshake_success_creates_the_subscription() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    let rx = receiver().await;
    let r = subscribe(&sim, &token, &rx.url, "purchaseInvoices").await;
    assert_eq!(r.status(), 201);
    let sub: Value = r.json().await.unwrap();
    let id = sub["subscriptionId"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(sub["clientState"], "secret-state");
    assert_eq!(sub["notificationUrl"], rx.url.as_str());
    assert!(sub["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    let exp = chrono::DateTime::parse_from_rfc3339(sub["expirationDateTime"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let expected = Utc::now() + TimeDelta::days(3);
    assert!((exp - expected).num_seconds().abs() < 60);
    {
        let got = rx.got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "POST");
        assert!(got[0].1.as_deref().is_some_and(|t| !t.is_empty()));
    }
    assert!(sim.handshakes()[0].accepted);

    let list: Value = bc_req(Method::GET, &subs_url(&sim), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["value"][0]["subscriptionId"], id);
    let one = bc_req(Method::GET, &format!("{}('{id}')", subs_url(&sim)), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert_eq!(sim.subscriptions()[0].client_state, "secret-state");
}

#[tokio::test]
async fn handshake_failure_refuses_the_subscription() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    let rx = receiver().await;
    rx.echo.store(false, Ordering::SeqCst);
    let r = subscribe(&sim, &token, &rx.url, "vendors").await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("validat")
    );
    assert!(sim.subscriptions().is_empty());
    assert_eq!(sim.handshakes().len(), 1);
    assert!(!sim.handshakes()[0].accepted);
}

#[tokio::test]
async fn purchase_order_subscription_is_refused() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    let rx = receiver().await;
    let r = subscribe(&sim, &token, &rx.url, "purchaseOrders").await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'purchaseOrders' does not support webhook")
    );
    assert!(sim.subscriptions().is_empty());
    assert!(sim.handshakes().is_empty(), "refused before the handshake");
}

#[tokio::test]
async fn client_state_over_50_characters_is_refused() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    let rx = receiver().await;
    let r = bc_req(Method::POST, &subs_url(&sim), &token)
        .json(&json!({
            "notificationUrl": rx.url,
            "resource": resource(&sim, "vendors"),
            "clientState": "x".repeat(51),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "Application_StringExceededLength"
    );
}

#[tokio::test]
async fn unquoted_subscription_id_is_refused() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    let rx = receiver().await;
    let sub: Value = subscribe(&sim, &token, &rx.url, "vendors")
        .await
        .json()
        .await
        .unwrap();
    let id = sub["subscriptionId"].as_str().unwrap();
    let r = bc_req(Method::GET, &format!("{}({id})", subs_url(&sim)), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let del = bc_req(Method::DELETE, &format!("{}({id})", subs_url(&sim)), &token)
        .header("If-Match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 400);
    assert_eq!(sim.subscriptions().len(), 1);
}

#[tokio::test]
async fn patch_renewal_extends_expiry_and_reruns_the_handshake() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    let rx = receiver().await;
    let sub: Value = subscribe(&sim, &token, &rx.url, "purchaseInvoices")
        .await
        .json()
        .await
        .unwrap();
    let id = sub["subscriptionId"].as_str().unwrap();
    assert!(sim.set_subscription_expiry(id, Utc::now() + TimeDelta::hours(1)));
    let url = format!("{}('{id}')", subs_url(&sim));
    let body = json!({
        "notificationUrl": rx.url,
        "resource": resource(&sim, "purchaseInvoices"),
        "clientState": "secret-state",
    });
    let no_if_match = bc_req(Method::PATCH, &url, &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_if_match.status(), 400);
    assert_eq!(
        no_if_match.json::<Value>().await.unwrap()["error"]["code"],
        "BadRequest_InvalidToken"
    );
    let r = bc_req(Method::PATCH, &url, &token)
        .header("If-Match", sub["@odata.etag"].as_str().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let renewed: Value = r.json().await.unwrap();
    assert_ne!(renewed["@odata.etag"], sub["@odata.etag"]);
    let exp = sim.subscriptions()[0].expiration;
    assert!(
        (exp - (Utc::now() + TimeDelta::days(3)))
            .num_seconds()
            .abs()
            < 60
    );
    assert_eq!(sim.handshakes().len(), 2);

    // A failed handshake on renewal leaves the subscription as it was.
    rx.echo.store(false, Ordering::SeqCst);
    let failed = bc_req(Method::PATCH, &url, &token)
        .header("If-Match", "*")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 400);
    assert_eq!(sim.subscriptions()[0].expiration, exp);
}

#[tokio::test]
async fn delete_needs_if_match_and_returns_204() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    let rx = receiver().await;
    let sub: Value = subscribe(&sim, &token, &rx.url, "vendors")
        .await
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}('{}')",
        subs_url(&sim),
        sub["subscriptionId"].as_str().unwrap()
    );
    let missing = bc_req(Method::DELETE, &url, &token).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    let ok = bc_req(Method::DELETE, &url, &token)
        .header("If-Match", sub["@odata.etag"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 204);
    assert!(sim.subscriptions().is_empty());
}

#[tokio::test]
async fn notification_is_delivered_after_an_invoice_is_marked_paid() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    let inv = create_invoice(&sim, &token, "N-1", one_line()).await;
    let id = inv["id"].as_str().unwrap().to_owned();
    let post = bc_req(
        Method::POST,
        &format!(
            "{}/purchaseInvoices({id})/Microsoft.NAV.post",
            company_url(&sim)
        ),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(post.status(), 204);
    // Let the window with the creation and posting pass before subscribing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rx = receiver().await;
    let sub: Value = subscribe(&sim, &token, &rx.url, "purchaseInvoices")
        .await
        .json()
        .await
        .unwrap();
    assert!(sim.notifications().is_empty());

    sim.mark_paid(uuid::Uuid::parse_str(&id).unwrap());
    assert!(wait_for(&sim, |s| !s.notifications().is_empty()).await);
    let n = &sim.notifications()[0];
    assert_eq!(n.url, rx.url);
    assert_eq!(n.status, Some(202));
    let items = n.body["value"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["subscriptionId"], sub["subscriptionId"]);
    assert_eq!(items[0]["clientState"], "secret-state");
    assert_eq!(items[0]["changeType"], "updated");
    assert_eq!(
        items[0]["resource"],
        format!(
            "api/v2.0/companies({})/purchaseInvoices({id})",
            sim.company_id()
        )
        .as_str()
    );
    // The receiver got it as a POST without validationToken.
    let got = rx.got.lock().unwrap();
    let last = got.last().unwrap();
    assert_eq!(last.0, "POST");
    assert!(last.1.is_none());
    let body: Value = serde_json::from_str(&last.2).unwrap();
    assert_eq!(body["value"][0]["changeType"], "updated");
}

#[tokio::test]
async fn changes_in_one_window_are_coalesced_per_record() {
    // A window long enough for the second change to land in it on a busy machine.
    let sim = bc_with(BcConfig {
        notification_delay: Duration::from_millis(1500),
        ..BcConfig::default()
    })
    .await;
    let token = bc_token(&sim).await;
    let rx = receiver().await;
    subscribe(&sim, &token, &rx.url, "vendors").await;
    let id = sim.add_vendor_with_tax_id("V77000", "Tax Co", "DK12345678");
    // A second change to the same vendor inside the window.
    let v: Value = bc_req(
        Method::GET,
        &format!("{}/vendors({id})", company_url(&sim)),
        &token,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["taxRegistrationNumber"], "DK12345678");
    let patched = bc_req(
        Method::PATCH,
        &format!("{}/vendors({id})", company_url(&sim)),
        &token,
    )
    .header("If-Match", v["@odata.etag"].as_str().unwrap())
    .json(&json!({"city": "Aarhus"}))
    .send()
    .await
    .unwrap();
    assert_eq!(patched.status(), 200);
    assert!(wait_for(&sim, |s| !s.notifications().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all = sim.notifications();
    let items: Vec<&Value> = all
        .iter()
        .flat_map(|n| n.body["value"].as_array().unwrap())
        .filter(|i| {
            i["resource"]
                .as_str()
                .unwrap()
                .ends_with(&format!("({id})"))
        })
        .collect();
    assert_eq!(items.len(), 1, "{all:?}");
    assert_eq!(items[0]["changeType"], "created");
    let view = sim.vendors().into_iter().find(|v| v.id == id).unwrap();
    assert_eq!(view.tax_registration_number, "DK12345678");
}

#[tokio::test]
async fn receiver_answering_404_deletes_the_subscription() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rx = receiver().await;
    rx.status.store(404, Ordering::SeqCst);
    subscribe(&sim, &token, &rx.url, "vendors").await;
    assert_eq!(sim.subscriptions().len(), 1);
    sim.add_vendor("V88000", "Gone Ltd.");
    assert!(wait_for(&sim, |s| s.subscriptions().is_empty()).await);
    let sent = sim.notifications();
    assert_eq!(sent.len(), 1, "no retry after a 404");
    assert_eq!(sent[0].status, Some(404));
}

#[tokio::test]
async fn receiver_answering_503_is_retried() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rx = receiver().await;
    rx.status.store(503, Ordering::SeqCst);
    subscribe(&sim, &token, &rx.url, "vendors").await;
    sim.add_vendor("V88001", "Flaky Ltd.");
    assert!(wait_for(&sim, |s| s.notifications().len() >= 2).await);
    rx.status.store(200, Ordering::SeqCst);
    assert!(
        wait_for(&sim, |s| s
            .notifications()
            .iter()
            .any(|n| n.status == Some(200)))
        .await
    );
    assert_eq!(sim.subscriptions().len(), 1, "a 5xx keeps the subscription");
}

#[tokio::test]
async fn expired_subscription_vanishes_and_is_not_notified() {
    let sim = sim().await;
    let token = bc_token(&sim).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rx = receiver().await;
    let sub: Value = subscribe(&sim, &token, &rx.url, "vendors")
        .await
        .json()
        .await
        .unwrap();
    let id = sub["subscriptionId"].as_str().unwrap();
    assert!(sim.set_subscription_expiry(id, Utc::now() - TimeDelta::seconds(1)));
    let r = bc_req(Method::GET, &format!("{}('{id}')", subs_url(&sim)), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let list: Value = bc_req(Method::GET, &subs_url(&sim), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["value"].as_array().unwrap().is_empty());
    sim.add_vendor("V99000", "Late Ltd.");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(sim.notifications().is_empty());
}
