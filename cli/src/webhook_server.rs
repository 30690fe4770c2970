//! The webhook listener of `mlc run`:
//!
//! * `POST /webhooks/coupa/{integration}`: signature first, over the raw body; 202 when queued,
//!   401 on a bad signature, 400/413 on a bad body.
//! * `GET|POST /webhooks/bc/{integration}`: Business Central change notifications
//!   (business-central.md A8). `?validationToken=` is the subscription handshake, answered 200
//!   with the token as a plain-text body (BC's method for it is undocumented, so both methods);
//!   otherwise the body is a notification batch whose `clientState` must be the integration's:
//!   202 queued, 401 not ours, 400 unreadable, 500 (BC retries) when it could not be queued.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlc_shared::ports::SecretString;
use mlc_shared::steps::subscriptions::NotificationReply;
use mlc_shared::steps::webhook::{self, MAX_BODY_BYTES};
use mlc_shared::systems::coupa::SIGNATURE_HEADER;

use crate::embedded::EmbeddedPipeline;

/// What the listener checks requests against, read once at start.
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    /// Coupa's webhook HMAC key; none: Coupa webhooks are refused.
    pub coupa: Option<SecretString>,
    /// Integration name → the `clientState` of its BC subscriptions (only integrations with
    /// `sync.notifications`; the others get 404 on the BC route).
    pub bc_client_states: BTreeMap<String, SecretString>,
}

#[derive(Clone)]
struct AppState {
    pipeline: Arc<EmbeddedPipeline>,
    secrets: Arc<WebhookSecrets>,
}

/// The Coupa route only (no BC notifications).
pub fn router(pipeline: Arc<EmbeddedPipeline>, coupa_secret: Option<SecretString>) -> Router {
    router_with(
        pipeline,
        WebhookSecrets {
            coupa: coupa_secret,
            ..WebhookSecrets::default()
        },
    )
}

pub fn router_with(pipeline: Arc<EmbeddedPipeline>, secrets: WebhookSecrets) -> Router {
    Router::new()
        .route("/webhooks/coupa/{integration}", post(coupa))
        .route("/webhooks/bc/{integration}", get(bc).post(bc))
        // Let the step see (and refuse with 413) bodies just over its own limit.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES + 1024))
        .with_state(AppState {
            pipeline,
            secrets: Arc::new(secrets),
        })
}

fn known(s: &AppState, integration: &str) -> bool {
    s.pipeline
        .integrations
        .iter()
        .any(|i| i.name == integration)
}

async fn coupa(
    State(s): State<AppState>,
    Path(integration): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if !known(&s, &integration) {
        return (
            StatusCode::NOT_FOUND,
            format!("no integration '{integration}'\n"),
        );
    }
    let Some(secret) = &s.secrets.coupa else {
        return (
            StatusCode::UNAUTHORIZED,
            "webhooks are not enabled: no webhook_secret configured\n".into(),
        );
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    match webhook::coupa_invoice(&s.pipeline.env, &integration, secret, signature, &body).await {
        Ok(id) => (StatusCode::ACCEPTED, format!("queued Coupa invoice {id}\n")),
        Err(e) => {
            tracing::warn!(error = %e, "webhook refused");
            (
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
                format!("{e}\n"),
            )
        }
    }
}

async fn bc(
    State(s): State<AppState>,
    Path(integration): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if !known(&s, &integration) {
        return text(
            StatusCode::NOT_FOUND,
            format!("no integration '{integration}'\n"),
        );
    }
    // Checked before the handshake too: answering it would validate a subscription that
    // nobody here asked for.
    let Some(client_state) = s.secrets.bc_client_states.get(&integration) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("integration '{integration}' has no BC notifications (sync.notifications)\n"),
        );
    };
    let token = query.get("validationToken").map(String::as_str);
    let reply = s
        .pipeline
        .handle_bc_notification(&integration, client_state, token, &body)
        .await;
    match reply {
        Ok(r) => bc_reply(r),
        // The poll could not be queued: a 5xx makes BC retry (any other 4xx would make it
        // delete the subscription).
        Err(e) => {
            tracing::error!(error = %e, integration = %integration, "BC notification not queued");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the notification could not be queued\n".into(),
            )
        }
    }
}

/// The HTTP answer to BC for a step's reply.
fn bc_reply(r: NotificationReply) -> Response {
    let (status, body) = r.http();
    text(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
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
                "/webhooks/bc/coupa-bc?validationToken=a%2Bb%20c-123",
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
        let state = SecretString::new(CLIENT_STATE);
        let first = k
            .pipeline
            .renew_subscriptions("coupa-bc", &state)
            .await
            .unwrap()
            .expect("notifications are configured");
        assert_eq!((first.created, first.renewed, first.current), (1, 0, 0));
        let hs = k.bc.handshakes();
        assert_eq!(hs.len(), 1);
        assert!(hs[0].accepted, "{hs:?}");
        let subs = k.bc.subscriptions();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].notification_url, k.notification_url());
        assert_eq!(subs[0].client_state, CLIENT_STATE);
        assert!(subs[0].resource.ends_with("/purchaseInvoices"), "{subs:?}");

        // Fresh: left alone. Nearly expired: renewed, with a second handshake.
        let again = k.pipeline.renew_subscriptions("coupa-bc", &state).await;
        assert_eq!(again.unwrap().unwrap().current, 1);
        let soon = chrono::Utc::now() + chrono::Duration::hours(1);
        assert!(k.bc.set_subscription_expiry(&subs[0].id, soon));
        let renewed = k.pipeline.renew_subscriptions("coupa-bc", &state).await;
        assert_eq!(renewed.unwrap().unwrap().renewed, 1);
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
