//! B1 Service Layer simulator: login, cookies, session expiry, licences, logout (sap-b1.md
//! §4.2, §4.7, §4.8.5), over real HTTP.

use std::time::Duration;

use mlc_sandbox::b1::{B1Config, B1Sim, Protocol};
use serde_json::{Value, json};

async fn sim_with(cfg: B1Config) -> B1Sim {
    B1Sim::start(cfg).await.unwrap()
}

async fn login_raw(sim: &B1Sim, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/Login", sim.service_root(Protocol::V1)))
        .json(&json!({"CompanyDB": "SBODEMOUS", "UserName": "manager", "Password": password}))
        .send()
        .await
        .unwrap()
}

/// Logs in and returns the `Cookie` header value built from the `Set-Cookie` lines by hand.
async fn login(sim: &B1Sim) -> String {
    let resp = login_raw(sim, "b1-password").await;
    assert_eq!(resp.status(), 200);
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

async fn get(sim: &B1Sim, cookie: &str, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}/{path}", sim.service_root(Protocol::V1)))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn login_sets_b1session_and_routeid_without_path_and_with_a_trailing_semicolon() {
    let sim = sim_with(B1Config::default()).await;
    let resp = login_raw(&sim, "b1-password").await;
    assert_eq!(resp.status(), 200);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let body: Value = resp.json().await.unwrap();
    let id = body["SessionId"].as_str().unwrap();
    assert_eq!(cookies[0], format!("B1SESSION={id};HttpOnly;"));
    assert_eq!(cookies[1], "ROUTEID=.node1;");
    assert!(
        cookies
            .iter()
            .all(|c| !c.to_ascii_lowercase().contains("path"))
    );
    assert_eq!(body["SessionTimeout"], 30);
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_login_failed_and_opens_no_session() {
    let sim = sim_with(B1Config::default()).await;
    let resp = login_raw(&sim, "wrong").await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100000027);
    assert_eq!(body["error"]["message"]["value"], "Login failed");
    assert_eq!(sim.live_sessions(), 0);
}

#[tokio::test]
async fn a_call_without_routeid_is_an_invalid_session() {
    let sim = sim_with(B1Config::default()).await;
    let cookie = login(&sim).await;
    let only_session = cookie.split("; ").next().unwrap().to_string();
    let (status, body) = get(&sim, &only_session, "PurchaseOrders").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], 301);
    let (status, _) = get(&sim, &cookie, "PurchaseOrders").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_idle_session_times_out_with_401_and_code_301() {
    let sim = sim_with(B1Config {
        session_timeout: Duration::from_millis(300),
        ..B1Config::default()
    })
    .await;
    let cookie = login(&sim).await;
    assert_eq!(get(&sim, &cookie, "PurchaseOrders").await.0, 200);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (status, body) = get(&sim, &cookie, "PurchaseOrders").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], 301);
    assert_eq!(
        body["error"]["message"]["value"],
        "Invalid session or session already timeout."
    );
}

#[tokio::test]
async fn the_session_timeout_slides_with_every_call() {
    let sim = sim_with(B1Config {
        session_timeout: Duration::from_millis(400),
        ..B1Config::default()
    })
    .await;
    let cookie = login(&sim).await;
    // Five calls 200 ms apart: 1 s in all, more than twice the timeout, never idle 400 ms.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(get(&sim, &cookie, "PurchaseOrders").await.0, 200);
    }
}

#[tokio::test]
async fn expiry_is_answered_with_minus_5002_when_so_configured() {
    let sim = sim_with(B1Config {
        expiry_code: -5002,
        ..B1Config::default()
    })
    .await;
    let cookie = login(&sim).await;
    sim.expire_sessions();
    let (status, body) = get(&sim, &cookie, "PurchaseOrders").await;
    assert_eq!((status, body["error"]["code"].as_i64()), (401, Some(-5002)));
}

#[tokio::test]
async fn logins_beyond_the_licensed_sessions_are_refused_until_one_logs_out() {
    let sim = sim_with(B1Config {
        max_sessions: 2,
        ..B1Config::default()
    })
    .await;
    let first = login(&sim).await;
    let _second = login(&sim).await;
    let resp = login_raw(&sim, "b1-password").await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"]["value"], "No free licence");
    let out = reqwest::Client::new()
        .post(format!("{}/Logout", sim.service_root(Protocol::V1)))
        .header("cookie", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(get(&sim, &first, "PurchaseOrders").await.0, 401);
    assert_eq!(login_raw(&sim, "b1-password").await.status(), 200);
}

#[tokio::test]
async fn the_v2_error_shape_has_a_string_code_and_a_plain_message() {
    let sim = sim_with(B1Config::default()).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/PurchaseOrders", sim.service_root(Protocol::V2)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "301");
    assert_eq!(
        body["error"]["message"],
        "Invalid session or session already timeout."
    );
}

#[tokio::test]
async fn expect_100_continue_gets_an_empty_500() {
    let sim = sim_with(B1Config::default()).await;
    let cookie = login(&sim).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/PurchaseOrders", sim.service_root(Protocol::V1)))
        .header("cookie", cookie)
        .header("expect", "100-continue")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.bytes().await.unwrap().is_empty());
}
