//! The webhook listener of `mlc run`: `GET|POST /webhooks/<integration>/<channel>`, answered
//! by the integration's flow (signature or client state checked over the raw body before
//! anything is read; 202 when queued, 401 on a bad signature, 400/413 on a bad body). The
//! routes of earlier versions, `/webhooks/<channel>/<integration>` (`/webhooks/coupa/coupa-bc`,
//! `/webhooks/bc/coupa-bc`), keep working: a path whose first segment is not an integration is
//! read that way.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mlc_shared::flows::{SecretLookup, WebhookRequest};
use mlc_shared::steps::webhook::MAX_BODY_BYTES;

use crate::embedded::EmbeddedPipeline;

#[derive(Clone)]
struct AppState {
    pipeline: Arc<EmbeddedPipeline>,
    /// Where webhook keys and client states are read, at each request (a rotated secret is
    /// used at once).
    secrets: Arc<dyn SecretLookup>,
}

pub fn router(pipeline: Arc<EmbeddedPipeline>, secrets: Arc<dyn SecretLookup>) -> Router {
    Router::new()
        .route("/webhooks/{first}/{second}", get(webhook).post(webhook))
        // Let the flow see (and refuse with 413) bodies just over its own limit.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES + 1024))
        .with_state(AppState { pipeline, secrets })
}

async fn webhook(
    State(s): State<AppState>,
    Path((first, second)): Path<(String, String)>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let names = s.pipeline.integration_names();
    let (integration, channel) = if names.contains(&first.as_str()) {
        (first, second)
    } else {
        (second, first)
    };
    let query: Vec<(String, String)> = query.into_iter().collect();
    let req = WebhookRequest {
        channel: &channel,
        method: method.as_str(),
        headers: &headers,
        query: &query,
        body: &body,
    };
    let reply = s.pipeline.webhook(&integration, &*s.secrets, req).await;
    text(
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply.body,
    )
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mlc_shared::ports::{Queue, QueueName};

    use super::*;
    use crate::embedded::testkit::{CLIENT_STATE, Kit, raw_http};

    async fn ingest(k: &Kit) -> u64 {
        k.pipeline.env.queue.depth(QueueName::Ingest).await.unwrap()
    }

    fn notification(client_state: &str) -> String {
        serde_json::json!({"value": [{
            "subscriptionId": "c670ea73cacb459bb51dc1740da2f1db",
            "clientState": client_state,
            "expirationDateTime": "2030-01-01T00:00:00Z",
            "resource": "api/v2.0/companies(b18aed47-c385-49d2-b954-dbdf8ad71780)/purchaseInvoices(26814998-936a-401c-81c1-0e848a64971d)",
            "changeType": "updated",
            "lastModifiedDateTime": "2029-12-29T12:54:20.467Z"
        }]})
        .to_string()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_handshake_is_answered_with_the_token_alone_on_get_and_post() {
        let k = Kit::start(true).await;
        for method in ["GET", "POST"] {
            let r = raw_http(
                k.addr,
                method,
                "/webhooks/coupa-bc/bc?validationToken=a%2Bb%20c-123",
                "",
            )
            .await;
            assert_eq!(r.status, 200, "{method}: {r:?}");
            assert_eq!(r.body, "a+b c-123", "{method}: exactly the token");
            assert!(r.content_type.starts_with("text/plain"), "{method}: {r:?}");
        }
        assert_eq!(ingest(&k).await, 0, "a handshake queues nothing");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_notification_with_our_client_state_queues_one_poll_and_others_are_refused() {
        let k = Kit::start(true).await;
        let url = "/webhooks/bc/coupa-bc";
        let wrong = raw_http(k.addr, "POST", url, &notification("someone-else")).await;
        assert_eq!(wrong.status, 401, "{wrong:?}");
        let garbage = raw_http(k.addr, "POST", url, "{not json").await;
        assert_eq!(garbage.status, 400, "{garbage:?}");
        assert_eq!(ingest(&k).await, 0);
        let ok = raw_http(k.addr, "POST", url, &notification(CLIENT_STATE)).await;
        assert_eq!(ok.status, 202, "{ok:?}");
        assert_eq!(ingest(&k).await, 1);
        let unknown = raw_http(k.addr, "POST", "/webhooks/bc/nope", "").await;
        assert_eq!(unknown.status, 404);
        // The client state is never echoed.
        assert!(!format!("{wrong:?}{ok:?}").contains(CLIENT_STATE));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_routes_of_earlier_versions_still_answer() {
        let k = Kit::start(true).await;
        let r = raw_http(
            k.addr,
            "GET",
            "/webhooks/bc/coupa-bc?validationToken=old-route",
            "",
        )
        .await;
        assert_eq!((r.status, r.body.as_str()), (200, "old-route"), "{r:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn without_notifications_configured_the_bc_route_refuses_even_the_handshake() {
        let k = Kit::start(false).await;
        let r = raw_http(
            k.addr,
            "GET",
            "/webhooks/bc/coupa-bc?validationToken=t1",
            "",
        )
        .await;
        assert_eq!(r.status, 404, "{r:?}");
        assert_ne!(r.body, "t1");
    }

    /// Renewal through the pipeline: the simulator's handshake reaches this listener, and a
    /// change to a purchase invoice comes back as a notification that queues the poll.
    #[tokio::test(flavor = "multi_thread")]
    async fn renewal_creates_the_subscription_through_the_handshake_and_notifications_arrive() {
        let k = Kit::start(true).await;
        let renew = || async {
            k.pipeline
                .upkeep("coupa-bc", &*k.secrets)
                .await
                .map(|d| d.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        let first = renew().await.unwrap();
        assert_eq!(first, ["BC subscriptions: 1 created, 0 renewed, 0 current"]);
        let hs = k.bc.handshakes();
        assert_eq!(hs.len(), 1);
        assert!(hs[0].accepted, "{hs:?}");
        let subs = k.bc.subscriptions();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].notification_url, k.notification_url());
        assert_eq!(subs[0].client_state, CLIENT_STATE);
        assert!(subs[0].resource.ends_with("/purchaseInvoices"), "{subs:?}");

        // Fresh: left alone. Nearly expired: renewed, with a second handshake.
        let again = renew().await.unwrap();
        assert_eq!(again, ["BC subscriptions: 0 created, 0 renewed, 1 current"]);
        let soon = chrono::Utc::now() + chrono::Duration::hours(1);
        assert!(k.bc.set_subscription_expiry(&subs[0].id, soon));
        let renewed = renew().await.unwrap();
        assert_eq!(
            renewed,
            ["BC subscriptions: 0 created, 1 renewed, 0 current"]
        );
        assert_eq!(k.bc.handshakes().len(), 2);
        assert!(k.bc.handshakes()[1].accepted);

        // An invoice posted to BC changes purchaseInvoices: BC notifies, we queue the poll.
        k.simple_invoice("SUP-001", "NOTE-1");
        k.pipeline.poll_all().await.unwrap();
        let mut skipped = k.pipeline.drain(2, Arc::new(|_| {})).await.unwrap().skipped;
        assert_eq!(k.bc.purchase_invoices().len(), 1);
        // Wait for BC's notifications to settle (each change window is one POST).
        let mut delivered = Vec::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = k.bc.notifications();
            if !now.is_empty() && now.len() == delivered.len() {
                break;
            }
            delivered = now;
        }
        assert!(!delivered.is_empty(), "BC sent no notification");
        assert!(
            delivered.iter().all(|n| n.status == Some(202)),
            "{delivered:?}"
        );
        // The queued poll runs as a skipped map step (nothing is paid yet); notifications in
        // one 30-second window share a dedup id.
        skipped += k.pipeline.drain(2, Arc::new(|_| {})).await.unwrap().skipped;
        assert!(
            (1..=delivered.len() as u64).contains(&skipped),
            "{skipped} paid-status poll(s) for {} notification(s)",
            delivered.len()
        );
        assert_eq!(ingest(&k).await, 0);
        assert_eq!(k.bc.subscriptions().len(), 1, "BC kept the subscription");
    }
}
