//! Business Central change notifications on AWS: the webhook function on the BC samples in
//! `events/` (handshake, notification), the poller's `renew_subscriptions` task on its
//! schedule sample, and the whole loop: the renewal creates the subscription in the BC
//! simulator, whose handshake and notifications reach the webhook function through a local
//! stand-in for API Gateway routed like `infra/template.yaml`. moto (SQS FIFO, DynamoDB,
//! Secrets Manager) over the real AWS SDK; the simulators over real HTTP.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

mod common;

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::event::sqs::SqsEvent;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use mlc_lambda::Context;
use mlc_sandbox::bc::BcSim;
use mlc_sandbox::coupa::{CoupaSim, NewInvoice, NewInvoiceLine};
use mlc_shared::config::Config;
use mlc_shared::ports::{Queue, QueueName};
use serde_json::json;

/// The value of the `bc-client-state` secret: what the BC samples carry (events/generate.py).
const CLIENT_STATE: &str = "mlc-sample-client-state";

struct World {
    coupa: CoupaSim,
    bc: BcSim,
    ctx: Arc<Context>,
    /// The BC notification URL of `coupa-bc` (through the gateway).
    notification_url: String,
}

type Slot = Arc<OnceLock<Arc<Context>>>;

/// A deployment on moto with `coupa-bc` (BC notifications on, its URL on the gateway) and
/// `plain` (no notifications).
async fn world() -> World {
    let (coupa, bc) = common::simulators(Duration::from_millis(50)).await;

    let slot: Slot = Arc::default();
    let gateway = gateway(slot.clone()).await;
    // The form the stack output BcNotificationUrl gives: /webhooks/<integration>/<channel> (the
    // samples carry the earlier /webhooks/bc/<integration>).
    let notification_url = format!("{gateway}/webhooks/coupa-bc/bc");

    let sdk = common::sdk().await;
    let settings =
        common::deployment(&sdk, "n", &coupa, &bc, &[("bc-client-state", CLIENT_STATE)]).await;
    let text = common::config_text(&coupa, &bc)
        .replace(
            "[integrations.mapping]\n",
            &format!(
                "[integrations.sync]\nnotifications = {{ url = \"{notification_url}\", client_state_secret = \"bc-client-state\" }}\n\n[integrations.mapping]\n"
            ),
        )
        + "\n[[integrations]]\nname = \"plain\"\nkind = \"coupa_to_business_central\"\n";
    let config = Config::parse(&text).unwrap();
    let ctx = Arc::new(Context::new(config, settings, &sdk).await.unwrap());
    assert!(slot.set(ctx.clone()).is_ok());
    World {
        coupa,
        bc,
        ctx,
        notification_url,
    }
}

/// API Gateway (HTTP API, payload 2.0) in front of the webhook function, routed as the
/// template routes: `GET` and `POST /webhooks/{first}/{second}`; any other method is API
/// Gateway's 404. Returns its base URL.
async fn gateway(slot: Slot) -> String {
    async fn invoke(
        State(slot): State<Slot>,
        Path((first, second)): Path<(String, String)>,
        Query(query): Query<HashMap<String, String>>,
        method: Method,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let Some(ctx) = slot.get() else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        let mut req = ApiGatewayV2httpRequest::default();
        let route_key = match method.as_str() {
            "POST" => "POST /webhooks/{first}/{second}",
            "GET" => "GET /webhooks/{first}/{second}",
            _ => return (StatusCode::NOT_FOUND, "{\"message\":\"Not Found\"}").into_response(),
        };
        req.path_parameters = HashMap::from([
            ("first".to_string(), first.clone()),
            ("second".to_string(), second.clone()),
        ]);
        req.version = Some("2.0".into());
        req.route_key = Some(route_key.into());
        req.request_context.route_key = Some(route_key.into());
        req.request_context.http.method = method;
        req.raw_path = Some(uri.path().to_string());
        req.request_context.http.path = req.raw_path.clone();
        req.raw_query_string = Some(uri.query().unwrap_or_default().to_string());
        req.query_string_parameters = query.into();
        for (k, v) in &headers {
            if let Ok(v) = v.to_str() {
                req.headers.insert(k.clone(), v.parse().unwrap());
            }
        }
        if !body.is_empty() {
            req.body = Some(String::from_utf8_lossy(&body).into_owned());
        }
        let resp = mlc_lambda::webhook::handle(ctx, req).await;
        let mut out = text_of(&resp).into_response();
        *out.status_mut() = StatusCode::from_u16(resp.status_code as u16).unwrap();
        out.headers_mut().extend(resp.headers);
        out
    }

    let app = axum::Router::new()
        .route("/webhooks/{first}/{second}", axum::routing::any(invoke))
        .with_state(slot);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn event<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text_of(r: &ApiGatewayV2httpResponse) -> String {
    match &r.body {
        Some(Body::Text(t)) => t.clone(),
        Some(Body::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn content_type(r: &ApiGatewayV2httpResponse) -> &str {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn ingest_depth(w: &World) -> u64 {
    w.ctx
        .pipeline
        .env
        .queue
        .depth(QueueName::Ingest)
        .await
        .unwrap()
}

/// The notification sample with another body.
fn notification_with_body(body: &str) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest = event("webhook-bc-notification.json");
    req.body = Some(body.to_string());
    req
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bc_handshake_sample_gets_exactly_its_token_back_as_plain_text() {
    let w = world().await;
    let req: ApiGatewayV2httpRequest = event("webhook-bc-handshake.json");
    let token = req
        .query_string_parameters
        .first("validationToken")
        .unwrap()
        .to_string();
    let resp = mlc_lambda::webhook::handle(&w.ctx, req.clone()).await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    assert_eq!(text_of(&resp), token, "the body is the token, nothing else");
    assert!(content_type(&resp).starts_with("text/plain"), "{resp:?}");
    assert_eq!(
        resp.headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff"),
        "{resp:?}"
    );

    // The same handshake as a POST is answered the same way.
    let mut post = req.clone();
    post.request_context.http.method = Method::POST;
    post.route_key = Some("POST /webhooks/{first}/{second}".into());
    let resp = mlc_lambda::webhook::handle(&w.ctx, post).await;
    assert_eq!((resp.status_code, text_of(&resp)), (200, token.clone()));
    assert_eq!(ingest_depth(&w).await, 0, "a handshake queues nothing");

    // An integration without sync.notifications does not validate anybody's subscription.
    let mut plain = req;
    plain
        .path_parameters
        .insert("second".into(), "plain".into());
    plain.raw_path = Some("/webhooks/bc/plain".into());
    let resp = mlc_lambda::webhook::handle(&w.ctx, plain).await;
    assert_eq!(resp.status_code, 401, "{:?}", resp.body);
    assert_eq!(text_of(&resp), mlc_shared::flows::REFUSED_BODY);
    assert_ne!(text_of(&resp), token);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bc_notification_sample_queues_a_paid_status_poll_and_a_stranger_gets_401() {
    let w = world().await;
    let sample: ApiGatewayV2httpRequest = event("webhook-bc-notification.json");

    let stranger = sample
        .body
        .as_deref()
        .unwrap()
        .replace(CLIENT_STATE, "someone-else");
    let resp = mlc_lambda::webhook::handle(&w.ctx, notification_with_body(&stranger)).await;
    assert_eq!(resp.status_code, 401, "{:?}", resp.body);
    let resp = mlc_lambda::webhook::handle(&w.ctx, notification_with_body("{not json")).await;
    assert_eq!(resp.status_code, 400, "{:?}", resp.body);
    assert_eq!(ingest_depth(&w).await, 0);

    let resp = mlc_lambda::webhook::handle(&w.ctx, sample).await;
    assert_eq!(resp.status_code, 202, "{:?}", resp.body);
    assert_eq!(ingest_depth(&w).await, 1);
    let q = &w.ctx.pipeline.env.queue;
    let msg = q.receive(QueueName::Ingest, 1).await.unwrap().remove(0);
    let body: serde_json::Value = serde_json::from_str(&msg.body).unwrap();
    assert_eq!(body["integration"], "coupa-bc", "{body}");
    assert_eq!(body["kind"], "payment", "{body}");
    assert_eq!(body["via"], "notification", "{body}");
    assert!(!msg.body.contains(CLIENT_STATE));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_renewal_sample_creates_the_subscription_through_the_handshake_and_notifications_arrive()
 {
    let w = world().await;
    // An approved invoice waits in Coupa: the renewal task must not poll it.
    let supplier = w.coupa.supplier_id_by_number("SUP-001").unwrap();
    w.coupa.add_invoice(
        NewInvoice::approved(supplier, "RENEW-1").line(NewInvoiceLine::qty(
            "Toner",
            "2",
            "10.1250",
            &["6100", "ADM", "P100"],
        )),
    );

    let all = mlc_lambda::poller::handle(&w.ctx, event("schedule-renew-subscriptions.json"))
        .await
        .unwrap();
    assert_eq!(all["task"], "renew_subscriptions", "{all}");
    assert_eq!(all["failed"], json!([]), "{all}");
    let out = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["integration"] == "coupa-bc")
        .cloned()
        .expect("the integration with notifications was renewed");
    assert_eq!(out["created"], 1, "{out}");
    assert_eq!(out["task"], "renew_subscriptions", "{out}");
    let handshakes = w.bc.handshakes();
    assert_eq!(handshakes.len(), 1);
    assert!(handshakes[0].accepted, "{handshakes:?}");
    assert_eq!(handshakes[0].url, w.notification_url);
    let subs = w.bc.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].notification_url, w.notification_url);
    assert_eq!(subs[0].client_state, CLIENT_STATE);
    assert!(subs[0].resource.ends_with("/purchaseInvoices"), "{subs:?}");
    assert_eq!(ingest_depth(&w).await, 0, "renewing is not polling");

    // Next time it is current: nothing to do, no handshake.
    let again = mlc_lambda::poller::handle(
        &w.ctx,
        json!({"detail": {"integration": "coupa-bc", "task": "renew_subscriptions"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        (again["created"].clone(), again["current"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(w.bc.handshakes().len(), 1);

    // Invoices posted to BC change purchaseInvoices: BC notifies through the gateway.
    let batch: SqsEvent = event("sqs-post-batch.json");
    let resp = mlc_lambda::sqs::handle_batch(&w.ctx, QueueName::Post, batch).await;
    assert!(resp.batch_item_failures.is_empty());
    let mut delivered = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = w.bc.notifications();
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
    let queued = ingest_depth(&w).await;
    assert!(
        (1..=delivered.len() as u64).contains(&queued),
        "{queued} poll(s) queued for {} notification(s)",
        delivered.len()
    );
    assert_eq!(w.bc.subscriptions().len(), 1, "BC kept the subscription");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_poller_routes_its_tasks() {
    let w = world().await;
    // No notifications configured: nothing to renew, and not an error (the schedule exists
    // in every stack).
    let out = mlc_lambda::poller::handle(
        &w.ctx,
        json!({"integration": "plain", "task": "renew_subscriptions"}),
    )
    .await
    .unwrap();
    assert!(out["skipped"].is_string(), "{out}");
    assert!(w.bc.subscriptions().is_empty());
    assert!(w.bc.handshakes().is_empty());

    let unknown_task =
        mlc_lambda::poller::handle(&w.ctx, json!({"integration": "coupa-bc", "task": "nap"})).await;
    assert!(
        unknown_task
            .unwrap_err()
            .to_string()
            .contains("unknown task 'nap'")
    );
    let unknown = mlc_lambda::poller::handle(
        &w.ctx,
        json!({"integration": "nope", "task": "renew_subscriptions"}),
    )
    .await;
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("'nope' is not configured")
    );

    // An explicit "poll" task polls.
    let supplier = w.coupa.supplier_id_by_number("SUP-001").unwrap();
    w.coupa.add_invoice(
        NewInvoice::approved(supplier, "POLL-1").line(NewInvoiceLine::qty(
            "Toner",
            "2",
            "10.1250",
            &["6100", "ADM", "P100"],
        )),
    );
    let out =
        mlc_lambda::poller::handle(&w.ctx, json!({"integration": "coupa-bc", "task": "poll"}))
            .await
            .unwrap();
    assert_eq!(out["queued"], 1, "{out}");
    assert!(out["others"].is_object(), "{out}");
    assert!(w.bc.subscriptions().is_empty(), "polling is not renewing");
}
