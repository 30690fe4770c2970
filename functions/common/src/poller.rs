//! The scheduled poll. SAM's `Schedule` event with `Input` hands the function the input itself
//! (`{"integration": "coupa-bc"}`); a raw EventBridge event with the name in `detail` works too.

use serde_json::{Value, json};

use crate::Context;

pub async fn handle(ctx: &Context, input: Value) -> anyhow::Result<Value> {
    let name = input
        .get("integration")
        .or_else(|| input.get("detail").and_then(|d| d.get("integration")))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("the schedule's input names no integration: expected {{\"integration\": \"<name>\"}}, got {input}"))?;
    let r = ctx.pipeline.poll_integration(name).await?;
    tracing::info!(
        integration = name,
        pages = r.pages,
        queued = r.enqueued,
        "polled"
    );
    Ok(json!({
        "integration": name,
        "pages": r.pages,
        "queued": r.enqueued,
        "unreadable": r.unreadable,
        "watermark_advanced": r.watermark_advanced,
        "window": { "from": r.window.lower.to_rfc3339(), "to": r.window.upper.to_rfc3339() },
    }))
}
