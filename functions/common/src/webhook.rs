//! Webhooks through API Gateway (HTTP API, payload v2): `POST /webhooks/{source}/{integration}`.
//! The signature is checked over the raw body before anything is parsed.

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::HeaderMap;
use base64::Engine;
use mlc_shared::ports::Secrets;
use mlc_shared::steps::webhook;
use mlc_shared::systems::coupa::SIGNATURE_HEADER;

use crate::Context;

pub async fn handle(ctx: &Context, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let source = req
        .path_parameters
        .get("source")
        .map(String::as_str)
        .unwrap_or_default();
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
    match source {
        "coupa" => {
            let Some(name) = ctx
                .config
                .systems
                .coupa
                .as_ref()
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
        other => reply(404, &format!("no webhook source '{other}'")),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn reply(status: i64, text: &str) -> ApiGatewayV2httpResponse {
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = status;
    r.headers.insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("static header"),
    );
    r.body = Some(Body::Text(format!("{text}\n")));
    r
}
