//! The scheduled tasks of one integration. SAM's `Schedule` event with `Input` hands the
//! function the input itself; a raw EventBridge event with it in `detail` works too:
//!
//! * `{"integration": "coupa-bc"}` (or `"task": "poll"`): poll from the watermark, enqueue,
//!   advance; re-enqueue parked documents.
//! * `{"integration": "coupa-bc", "task": "renew_subscriptions"}`: make sure the integration's
//!   BC webhook subscriptions exist and have more than `renew_before_hours` to live (they
//!   expire after three days). The client state is read through the secrets cache. An
//!   integration without `sync.notifications` has nothing to renew: a no-op, not an error.

use mlc_shared::ports::Secrets;
use serde_json::{Value, json};

use crate::Context;

pub async fn handle(ctx: &Context, input: Value) -> anyhow::Result<Value> {
    let field = |name: &str| {
        input
            .get(name)
            .or_else(|| input.get("detail").and_then(|d| d.get(name)))
    };
    let name = field("integration")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("the schedule's input names no integration: expected {{\"integration\": \"<name>\"}}, got {input}"))?;
    match field("task").map(|t| t.as_str().unwrap_or_default()) {
        None | Some("poll") => poll(ctx, name).await,
        Some("renew_subscriptions") => renew(ctx, name).await,
        Some(other) => Err(anyhow::anyhow!(
            "unknown task '{other}': expected \"poll\" or \"renew_subscriptions\""
        )),
    }
}

async fn poll(ctx: &Context, name: &str) -> anyhow::Result<Value> {
    let r = ctx.pipeline.poll_integration(name).await?;
    let others: serde_json::Map<String, Value> = r
        .others
        .iter()
        .map(|(feed, n)| (feed.clone(), json!(n)))
        .collect();
    let others = Value::Object(others);
    tracing::info!(
        integration = name,
        pages = r.pages,
        queued = r.enqueued,
        others = %others,
        "polled"
    );
    Ok(json!({
        "integration": name,
        "task": "poll",
        "pages": r.pages,
        "queued": r.enqueued,
        "others": others,
        "unreadable": r.unreadable,
        "watermark_advanced": r.watermark_advanced,
        "window": { "from": r.window.lower.to_rfc3339(), "to": r.window.upper.to_rfc3339() },
    }))
}

async fn renew(ctx: &Context, name: &str) -> anyhow::Result<Value> {
    let integration = ctx
        .config
        .integrations
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| anyhow::anyhow!("integration '{name}' is not configured"))?;
    let Some(n) = &integration.sync.notifications else {
        tracing::info!(
            integration = name,
            "no sync.notifications: no BC subscriptions to renew"
        );
        return Ok(json!({
            "integration": name,
            "task": "renew_subscriptions",
            "skipped": "the integration has no sync.notifications",
        }));
    };
    let client_state =
        ctx.secrets.get(&n.client_state_secret).await.map_err(|e| {
            anyhow::anyhow!("the client state secret '{}': {e}", n.client_state_secret)
        })?;
    let r = ctx
        .pipeline
        .renew_subscriptions(name, &client_state)
        .await?
        .unwrap_or_default();
    tracing::info!(
        integration = name,
        created = r.created,
        renewed = r.renewed,
        current = r.current,
        "BC subscriptions"
    );
    Ok(json!({
        "integration": name,
        "task": "renew_subscriptions",
        "created": r.created,
        "renewed": r.renewed,
        "current": r.current,
    }))
}
