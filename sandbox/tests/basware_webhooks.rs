//! Basware simulator: subscriptions with `ConnectionTest` and signed notifications
//! (basware.md §3.8; apis/README.md decision on `X-BWAPI-Signature-256`).

mod basware_support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use basware_support::*;
use mlc_sandbox::basware::{
    BaswareConfig, NewCodingRow, NewDocument, SignatureFormat, webhook_signature,
};
use serde_json::{Value, json};

type Received = Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>;

/// A receiver that records each notification and answers `status`.
async fn receiver(status: StatusCode) -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                let sig = headers
                    .get("x-bwapi-signature-256")
                    .map(|v| v.to_str().unwrap().to_owned());
                g.lock().unwrap().push((sig, body.to_vec()));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

fn subscription(url: &str) -> Value {
    json!([{
        "taskType": "AccountingDocuments", "taskSubType": "WaitingForTransfer",
        "subscriptionType": "Webhook", "notificationWebhookURL": url,
        "webhookAuthenticationToken": "bw-hook-secret",
    }])
}

#[tokio::test]
async fn subscribing_sends_a_signed_connection_test() {
    let sim = basware().await;
    let (url, got) = receiver(StatusCode::OK).await;
    let t = token(&sim).await;
    let resp = post_json(&sim, &t, "/v1/subscriptions", &subscription(&url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = got.lock().unwrap();
    let (sig, body) = &got[0];
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["taskType"], "ConnectionTest");
    assert_eq!(
        sig.as_deref(),
        Some(webhook_signature("bw-hook-secret", body, SignatureFormat::Hex).as_str())
    );
}

#[tokio::test]
async fn a_subscription_whose_endpoint_fails_the_connection_test_is_refused() {
    let sim = basware().await;
    let (url, _) = receiver(StatusCode::UNAUTHORIZED).await;
    let t = token(&sim).await;
    let resp = post_json(&sim, &t, "/v1/subscriptions", &subscription(&url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let listed = get(&sim, &t, "/v1/subscriptions").send().await.unwrap();
    assert_eq!(listed.status(), 404);
}

#[tokio::test]
async fn a_document_notification_names_the_document_and_is_signed_as_configured() {
    let sim = basware_with(BaswareConfig {
        signature_format: SignatureFormat::Base64,
        ..BaswareConfig::default()
    })
    .await;
    let (url, got) = receiver(StatusCode::OK).await;
    let t = token(&sim).await;
    post_json(&sim, &t, "/v1/subscriptions", &subscription(&url))
        .send()
        .await
        .unwrap();
    let id = sim.add_document(
        NewDocument::invoice("INV-1", "V1").coding_row(NewCodingRow::new("6100", "1")),
    );
    assert_eq!(sim.notify_document(&id).await, vec![200]);
    let got = got.lock().unwrap();
    let (sig, body) = got.last().unwrap();
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["taskType"], "AccountingDocuments");
    assert_eq!(v["documentId"], id.as_str());
    assert_eq!(
        sig.as_deref(),
        Some(webhook_signature("bw-hook-secret", body, SignatureFormat::Base64).as_str())
    );
}
