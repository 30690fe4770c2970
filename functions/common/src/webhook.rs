//! Webhooks through API Gateway (HTTP API, payload v2):
//!
//! * `POST /webhooks/{source}/{integration}`: Coupa (`source` = `coupa`), signature checked over
//!   the raw body before anything is parsed; and BC notifications (`source` = `bc`).
//! * `GET /webhooks/bc/{integration}`: BC's subscription handshake may come as a GET (its method
//!   is undocumented, business-central.md A8); that route has no `source` parameter.
//!
//! BC: `?validationToken=` is the handshake (200, the token alone as `text/plain`); otherwise
//! the body is a notification batch whose `clientState` must be the integration's (the value
//! of the secret `sync.notifications.client_state_secret` names): 202 queued, 401, 400, and
//! 500 when it could not be queued (BC retries a 5xx; any other 4xx deletes the subscription).

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::HeaderMap;
use base64::Engine;
use mlc_shared::ports::Secrets;
use mlc_shared::steps::webhook;
use mlc_shared::systems::coupa::SIGNATURE_HEADER;

use crate::Context;

pub async fn handle(ctx: &Context, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let source = source_of(&req);
    let integration = req
        .path_parameters
        .get("integration")
        .map(String::as_str)
        .unwrap_or_default();
    if !ctx
        .config
        .integrations
        .iter()
        .any(|i| i.name == integration)
    {
        return reply(404, &format!("no integration '{integration}'"));
    }
    let body = match (&req.body, req.is_base64_encoded) {
        (None, _) => Vec::new(),
        (Some(b), false) => b.clone().into_bytes(),
        (Some(b), true) => match base64::engine::general_purpose::STANDARD.decode(b) {
            Ok(bytes) => bytes,
            Err(_) => return reply(400, "the body is marked base64 but is not"),
        },
    };
    // Coupa reaches us by POST only (the API's routes); BC by either method.
    match source {
        "coupa" => {
            let Some(name) = ctx
                .config
                .systems
                .coupa()
                .and_then(|c| c.webhook_secret.as_ref())
            else {
                return reply(
                    401,
                    "webhooks are not enabled: no webhook_secret configured",
                );
            };
            let secret = match ctx.secrets.get(name).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "webhook secret unavailable");
                    return reply(500, "the webhook secret is unavailable");
                }
            };
            let signature = header(&req.headers, SIGNATURE_HEADER);
            match webhook::coupa_invoice(&ctx.pipeline.env, integration, &secret, signature, &body)
                .await
            {
                Ok(id) => reply(202, &format!("queued Coupa invoice {id}")),
                Err(e) => {
                    tracing::warn!(error = %e, "webhook refused");
                    reply(e.http_status() as i64, &e.to_string())
                }
            }
        }
        "bc" => bc(ctx, integration, &req, &body).await,
        other => reply(404, &format!("no webhook source '{other}'")),
    }
}

/// `source` from the path parameter, or (the `GET /webhooks/bc/{integration}` route, which has
/// none) the path segment after `webhooks`.
fn source_of(req: &ApiGatewayV2httpRequest) -> &str {
    if let Some(s) = req.path_parameters.get("source") {
        return s;
    }
    let path = req
        .raw_path
        .as_deref()
        .or(req.request_context.http.path.as_deref())
        .unwrap_or_default();
    let mut segments = path.split('/');
    segments
        .by_ref()
        .find(|s| *s == "webhooks")
        .and_then(|_| segments.next())
        .unwrap_or_default()
}

async fn bc(
    ctx: &Context,
    integration: &str,
    req: &ApiGatewayV2httpRequest,
    body: &[u8],
) -> ApiGatewayV2httpResponse {
    // Checked before the handshake too: answering it would validate a subscription that
    // nobody here asked for.
    let Some(n) = ctx
        .config
        .integrations
        .iter()
        .find(|i| i.name == integration)
        .and_then(|i| i.sync.notifications.as_ref())
    else {
        return reply(
            404,
            &format!("integration '{integration}' has no BC notifications (sync.notifications)"),
        );
    };
    let client_state = match ctx.secrets.get(&n.client_state_secret).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "BC client state secret unavailable");
            return reply(500, "the client state secret is unavailable");
        }
    };
    let token = req.query_string_parameters.first("validationToken");
    match ctx
        .pipeline
        .handle_bc_notification(integration, &client_state, token, body)
        .await
    {
        Ok(r) => {
            let (status, body) = r.http();
            plain(status.into(), body)
        }
        Err(e) => {
            tracing::error!(error = %e, integration, "BC notification not queued");
            reply(500, "the notification could not be queued")
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn reply(status: i64, text: &str) -> ApiGatewayV2httpResponse {
    plain(status, format!("{text}\n"))
}

/// A `text/plain` answer with exactly `body`.
fn plain(status: i64, body: String) -> ApiGatewayV2httpResponse {
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = status;
    r.headers.insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("static header"),
    );
    r.body = Some(Body::Text(body));
    r
}
