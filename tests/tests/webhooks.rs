//! Webhooks: the signature is checked over the raw body before anything else.

mod common;

use common::Harness;
use mlc_cli::webhook_server::{Limits, Listener};
use mlc_shared::ports::{Queue, QueueName};

async fn listener(h: &Harness) -> String {
    let secrets = std::sync::Arc::new(h.secrets.clone());
    let app = Listener::new(h.pipeline.clone(), secrets, Limits::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(app.serve(l));
    format!("http://{addr}/webhooks/coupa/coupa-bc")
}

async fn post(url: &str, body: &[u8], signature: Option<&str>) -> u16 {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("X-Coupa-Signature", s);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn ingest_depth(h: &Harness) -> u64 {
    h.pipeline.env.queue.depth(QueueName::Ingest).await.unwrap()
}

#[tokio::test]
async fn a_correctly_signed_webhook_is_accepted_and_queued() {
    let h = Harness::new().await;
    let id = h.simple_invoice("SUP-001", "WH-1");
    let url = listener(&h).await;
    assert_eq!(h.coupa.send_invoice_webhook(&url, id).await.unwrap(), 202);
    assert_eq!(ingest_depth(&h).await, 1);
    h.pipeline
        .drain(2, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(h.bc_invoices_for("WH-1").len(), 1);
}

#[tokio::test]
async fn a_webhook_with_a_bad_signature_gets_401_and_nothing_is_queued() {
    let h = Harness::new().await;
    let id = h.simple_invoice("SUP-001", "WH-2");
    let url = listener(&h).await;
    let body = serde_json::to_vec(&h.coupa.invoice_json(id).unwrap()).unwrap();
    let wrong = mlc_shared::systems::signature::sign_hmac_sha256(b"not-the-secret", &body);
    assert_eq!(post(&url, &body, Some(&wrong)).await, 401);
    // Signed for another body.
    let other =
        mlc_shared::systems::signature::sign_hmac_sha256(b"coupa-webhook-secret", b"{\"id\":1}");
    assert_eq!(post(&url, &body, Some(&other)).await, 401);
    assert_eq!(ingest_depth(&h).await, 0);
}

#[tokio::test]
async fn a_webhook_without_a_signature_gets_401_and_nothing_is_queued() {
    let h = Harness::new().await;
    let url = listener(&h).await;
    assert_eq!(post(&url, br#"{"id":1}"#, None).await, 401);
    assert_eq!(ingest_depth(&h).await, 0);
}

#[tokio::test]
async fn a_signed_body_that_is_not_an_invoice_gets_400() {
    let h = Harness::new().await;
    let url = listener(&h).await;
    let body = b"[1,2,3]";
    let sig = mlc_shared::systems::signature::sign_hmac_sha256(
        h.coupa.config().webhook_secret.as_bytes(),
        body,
    );
    assert_eq!(post(&url, body, Some(&sig)).await, 400);
    assert_eq!(ingest_depth(&h).await, 0);
}

#[tokio::test]
async fn an_oversized_webhook_is_refused() {
    let h = Harness::new().await;
    let url = listener(&h).await;
    let body = vec![b' '; mlc_shared::steps::webhook::MAX_BODY_BYTES + 10];
    let sig = mlc_shared::systems::signature::sign_hmac_sha256(
        h.coupa.config().webhook_secret.as_bytes(),
        &body,
    );
    assert_eq!(post(&url, &body, Some(&sig)).await, 413);
    assert_eq!(ingest_depth(&h).await, 0);
}
