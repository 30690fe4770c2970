//! Webhooks through API Gateway (HTTP API, payload v2): `GET|POST /webhooks/{integration}/{channel}`,
//! answered by the integration's flow (signature or client state checked over the raw body
//! before anything is read). The routes of earlier versions, `/webhooks/{source}/{integration}`
//! (`coupa`, `bc`), keep working: a path whose first segment is not an integration is read that
//! way. Secrets are read through the secrets cache, so a rotated key is used within its TTL.

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use base64::Engine;
use mlc_shared::flows::WebhookRequest;

use crate::Context;

pub async fn handle(ctx: &Context, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let Some((first, second)) = segments(&req) else {
        return reply(404, "expected /webhooks/<integration>/<channel>");
    };
    let names = ctx.pipeline.integration_names();
    let (integration, channel) = if names.contains(&first.as_str()) {
        (first, second)
    } else {
        (second, first)
    };
    let body = match (&req.body, req.is_base64_encoded) {
        (None, _) => Vec::new(),
        (Some(b), false) => b.clone().into_bytes(),
        (Some(b), true) => match base64::engine::general_purpose::STANDARD.decode(b) {
            Ok(bytes) => bytes,
            Err(_) => return reply(400, "the body is marked base64 but is not"),
        },
    };
    let query: Vec<(String, String)> = req
        .query_string_parameters
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let method = req.request_context.http.method.to_string();
    // Mutual TLS on the API's custom domain: API Gateway verified the certificate against the
    // truststore and names its subject here (never a header a client could send).
    let subject = req
        .request_context
        .authentication
        .as_ref()
        .and_then(|a| a.client_cert.as_ref())
        .and_then(|c| c.subject_dn.clone());
    let wreq = WebhookRequest {
        channel: &channel,
        method: &method,
        headers: &req.headers,
        query: &query,
        body: &body,
        client_cert_subject: subject.as_deref(),
    };
    let r = ctx.pipeline.webhook(&integration, &ctx.secrets, wreq).await;
    plain(r.status.into(), r.body)
}

/// The two path segments after `webhooks`: from the route's parameters when API Gateway gives
/// them (`{first}`/`{second}`, or the older routes' `{source}`/`{integration}`), else from the
/// raw path.
fn segments(req: &ApiGatewayV2httpRequest) -> Option<(String, String)> {
    let p = &req.path_parameters;
    if let (Some(a), Some(b)) = (p.get("first"), p.get("second")) {
        return Some((a.clone(), b.clone()));
    }
    if let (Some(source), Some(integration)) = (p.get("source"), p.get("integration")) {
        return Some((source.clone(), integration.clone()));
    }
    let path = req
        .raw_path
        .as_deref()
        .or(req.request_context.http.path.as_deref())
        .unwrap_or_default();
    let mut it = path.split('/').skip_while(|s| *s != "webhooks").skip(1);
    let a = it.next().filter(|s| !s.is_empty())?;
    let b = it.next().filter(|s| !s.is_empty())?;
    Some((a.to_string(), b.to_string()))
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
    // The handshake echoes the caller's token: never to be read as anything but text.
    r.headers.insert(
        "x-content-type-options",
        "nosniff".parse().expect("static header"),
    );
    r.body = Some(Body::Text(body));
    r
}
