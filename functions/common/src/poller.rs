//! The scheduled tasks. SAM's `Schedule` event with `Input` hands the function the input itself;
//! a raw EventBridge event with it in `detail` works too. `task` is `"poll"` (the default) or
//! `"renew_subscriptions"`; which integrations it runs on:
//!
//! * `{"integration": "coupa-bc"}`: that one; its failure fails the invocation (the function's
//!   `Errors` metric and alarm), as before.
//! * `{"integrations": "*"}`, or no `integration`/`integrations` at all (a plain EventBridge
//!   schedule): every integration of the configuration, in its order. One integration's
//!   failure is logged and reported in the answer and does not stop the others, and the
//!   invocation succeeds: a failed invocation would make Lambda's asynchronous retries poll the
//!   healthy integrations again, and the next schedule is the retry anyway. The failures are
//!   counted by the template's metric filter on [`TASK_FAILED`] (alarm
//!   `...-scheduled-task-failures`).
//! * `{"integrations": ["a", "b"]}` or `{"integrations": "a,b"}`: those, in that order, each
//!   as above (the template's `PollIntegration` parameter of older stacks names one).
//!
//! Tasks:
//!
//! * `poll`: poll from the watermark, enqueue, advance; re-enqueue parked documents; then audit
//!   the dead-letter queues (a `dead_lettered` audit item for every dead letter that has none).
//!   Over several integrations the audit runs once, after all of them, not once per
//!   integration: it reads both dead-letter queues whole, whichever integration was polled.
//! * `give_up` (an operator's, never scheduled): `{"task": "give_up", "integration": "<name>",
//!   "document": "<source id or number>", "reason": "<why>"}` answers a parked document to its
//!   source with the reason through the flow's give-up writer, exactly once, and closes it
//!   (`Pipeline::give_up`, what `mlc replay --give-up` does on the embedded runtime); run it
//!   with `aws lambda invoke --function-name <stack>-poller --payload '{...}'`. Its answer
//!   says what happened; a flow without a give-up answers `not_offered`.
//! * `renew_subscriptions`: the scheduled upkeep of each integration's flow: make sure its
//!   webhook subscriptions exist and have long enough to live (Business Central's expire after
//!   three days). Secrets are read through the secrets cache. An integration without webhook
//!   subscriptions has nothing to renew: a no-op, not an error.

use mlc_shared::steps::StepError;
use mlc_shared::steps::poll::PollReport;
use serde_json::{Value, json};

use crate::Context;

/// The log message of a failed scheduled task. infra/template.yaml's metric filter
/// `PollerTaskFailures` counts the lines that carry it: change both together.
pub const TASK_FAILED: &str = "scheduled task failed";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    Poll,
    RenewSubscriptions,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Poll => "poll",
            Task::RenewSubscriptions => "renew_subscriptions",
        }
    }
}

/// Which integrations an input names.
#[derive(Debug, PartialEq, Eq)]
enum Targets {
    One(String),
    Many(Vec<String>),
}

pub async fn handle(ctx: &Context, input: Value) -> anyhow::Result<Value> {
    let field = |name: &str| {
        input
            .get(name)
            .or_else(|| input.get("detail").and_then(|d| d.get(name)))
    };
    if field("task").and_then(Value::as_str) == Some("give_up") {
        let text = |name: &str| {
            field(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "give_up needs \"{name}\": {{\"task\": \"give_up\", \"integration\": \
                         \"<name>\", \"document\": \"<source id or number>\", \"reason\": \"<why>\"}}"
                    )
                })
        };
        return give_up(
            ctx,
            &text("integration")?,
            &text("document")?,
            &text("reason")?,
        )
        .await;
    }
    let task = match field("task").map(|t| t.as_str().unwrap_or_default()) {
        None | Some("poll") => Task::Poll,
        Some("renew_subscriptions") => Task::RenewSubscriptions,
        Some(other) => anyhow::bail!(
            "unknown task '{other}': expected \"poll\", \"renew_subscriptions\" or \"give_up\""
        ),
    };
    let configured = || {
        ctx.config
            .integrations
            .iter()
            .map(|i| i.name.clone())
            .collect()
    };
    match targets(field("integration"), field("integrations"), configured)? {
        Targets::One(name) => run(ctx, task, &name).await.inspect_err(|e| {
            tracing::error!(
                integration = name,
                task = task.name(),
                error = format!("{e:#}"),
                "{TASK_FAILED}"
            );
        }),
        Targets::Many(names) => {
            let mut results = Vec::with_capacity(names.len());
            let mut failed = Vec::new();
            for name in names {
                let outcome = match task {
                    Task::Poll => poll_one(ctx, &name).await.map(|r| report(&name, &r)),
                    Task::RenewSubscriptions => renew(ctx, &name).await,
                };
                match outcome {
                    Ok(out) => results.push(out),
                    Err(e) => {
                        let error = format!("{e:#}");
                        tracing::error!(
                            integration = name,
                            task = task.name(),
                            error,
                            "{TASK_FAILED}"
                        );
                        results.push(
                            json!({"integration": name, "task": task.name(), "error": error}),
                        );
                        failed.push(name);
                    }
                }
            }
            let mut answer = json!({"task": task.name(), "results": results, "failed": failed});
            if task == Task::Poll {
                audit_dead_letters(ctx, &mut answer).await;
            }
            Ok(answer)
        }
    }
}

/// The integrations an input names: `integration` (one), `integrations` (`"*"`, a list, or a
/// comma-separated string), or neither: every one of `configured`.
fn targets(
    one: Option<&Value>,
    many: Option<&Value>,
    configured: impl FnOnce() -> Vec<String>,
) -> anyhow::Result<Targets> {
    let expected =
        "expected {\"integration\": \"<name>\"} or {\"integrations\": \"*\" | [\"<name>\", ...]}";
    match (one, many) {
        (Some(_), Some(_)) => {
            anyhow::bail!("the input names both integration and integrations: {expected}")
        }
        (Some(Value::String(name)), None) => Ok(Targets::One(name.clone())),
        (Some(other), None) => anyhow::bail!("integration is {other}, not a name: {expected}"),
        (None, None) => Ok(Targets::Many(configured())),
        (None, Some(Value::String(s))) if s.trim() == "*" => Ok(Targets::Many(configured())),
        (None, Some(Value::String(s))) => Ok(Targets::Many(
            s.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        (None, Some(Value::Array(names))) => names
            .iter()
            .map(|n| {
                n.as_str().map(str::to_string).ok_or_else(|| {
                    anyhow::anyhow!("integrations holds {n}, not a name: {expected}")
                })
            })
            .collect::<anyhow::Result<_>>()
            .map(Targets::Many),
        (None, Some(other)) => anyhow::bail!("integrations is {other}: {expected}"),
    }
}

async fn run(ctx: &Context, task: Task, name: &str) -> anyhow::Result<Value> {
    match task {
        // One integration: its poll and the dead-letter audit, as before.
        Task::Poll => {
            let r = ctx.pipeline.poll_integration(name).await?;
            Ok(report(name, &r))
        }
        Task::RenewSubscriptions => renew(ctx, name).await,
    }
}

/// The operator's give-up of a parked document (see the module documentation).
async fn give_up(
    ctx: &Context,
    integration: &str,
    document: &str,
    reason: &str,
) -> anyhow::Result<Value> {
    use mlc_shared::ports::Parking;
    use mlc_shared::runtime::GiveUp;
    use mlc_shared::steps::post::PostOutcome;

    let parked: Vec<_> = ctx
        .pipeline
        .env
        .store
        .parked()
        .await?
        .into_iter()
        .filter(|p| p.integration == integration)
        .filter(|p| {
            p.source_id == document || p.source_document_number.as_deref() == Some(document)
        })
        .collect();
    if parked.is_empty() {
        anyhow::bail!(
            "nothing to give up: no parked document '{document}' in integration '{integration}' \
             (one given up before is closed; its audit trail shows it)"
        );
    }
    let mut results = Vec::new();
    for p in &parked {
        let outcome = match ctx.pipeline.give_up(p, reason).await? {
            GiveUp::Answered(PostOutcome::Posted { number, .. }) => {
                json!({"outcome": "answered", "answer": number})
            }
            GiveUp::Answered(_) => json!({"outcome": "answered before; closed"}),
            GiveUp::NotOffered => json!({"outcome": "not_offered"}),
            GiveUp::NotYet(PostOutcome::Parked(why)) => json!({"outcome": "parked", "why": why}),
            GiveUp::NotYet(other) => json!({"outcome": "not_yet", "why": format!("{other:?}")}),
        };
        let mut row = json!({"document": p.source_id, "kind": p.kind});
        if let (Some(r), Some(o)) = (row.as_object_mut(), outcome.as_object()) {
            r.extend(o.clone());
        }
        results.push(row);
    }
    Ok(json!({"task": "give_up", "integration": integration, "results": results}))
}

/// One integration's poll within a poll of several, without the dead-letter audit (run once
/// after all of them by [`audit_dead_letters`]). `Pipeline::poll_all` does that too, but stops
/// at the first integration whose failure is not systemic and leaves backed-off integrations
/// out of its answer; here every integration is polled and reported whatever the others did.
/// Otherwise what `Pipeline::poll_integration` does: a backed-off integration is not polled,
/// and a systemic failure backs it off.
async fn poll_one(ctx: &Context, name: &str) -> anyhow::Result<PollReport> {
    let p = &ctx.pipeline;
    let flow = p
        .flow(name)
        .ok_or_else(|| anyhow::anyhow!("integration '{name}' is not configured"))?;
    if let Some(left) = p.backoffs.remaining(name) {
        anyhow::bail!(
            "integration '{name}' is backed off after a systemic failure ({}s left): not polled",
            left.as_secs()
        );
    }
    match flow.poll(&p.env).await {
        Ok(r) => Ok(r),
        // The integration cannot work now (credentials refused, a secret missing): spare it
        // the next cycles too, as the runtime does.
        Err(StepError::Systemic { reason, after }) => {
            let wait = p.backoffs.back_off(name, after, &reason);
            p.audit_backoff(name, &reason, wait).await;
            anyhow::bail!(
                "polling integration '{name}': {reason} (backed off for {}s)",
                wait.as_secs()
            )
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("polling integration '{name}'"))),
    }
}

/// Audits the dead-letter queues once for a poll of several integrations and puts the outcome
/// in `answer`: `dead_letters` (how many documents are dead-lettered), or `dead_letters_error`.
/// A failed audit is no integration's failure: it is logged with [`TASK_FAILED`] (so the alarm
/// counts it) and the invocation still succeeds; the next poll audits again.
async fn audit_dead_letters(ctx: &Context, answer: &mut Value) {
    match ctx.pipeline.audit_dead_letters().await {
        Ok(n) => answer["dead_letters"] = json!(n),
        Err(e) => {
            let error = format!("auditing the dead-letter queues: {e}");
            tracing::error!(task = "audit_dead_letters", error, "{TASK_FAILED}");
            answer["dead_letters_error"] = json!(error);
        }
    }
}

/// The answer for one integration's poll.
fn report(name: &str, r: &PollReport) -> Value {
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
    json!({
        "integration": name,
        "task": "poll",
        "pages": r.pages,
        "queued": r.enqueued,
        "others": others,
        "unreadable": r.unreadable,
        "watermark_advanced": r.watermark_advanced,
        "window": r.window.map(|w| json!({ "from": w.lower.to_rfc3339(), "to": w.upper.to_rfc3339() })),
    })
}

async fn renew(ctx: &Context, name: &str) -> anyhow::Result<Value> {
    let done = ctx.pipeline.upkeep(name, &ctx.secrets).await?;
    if done.is_empty() {
        tracing::info!(integration = name, "no webhook subscriptions to renew");
        return Ok(json!({
            "integration": name,
            "task": "renew_subscriptions",
            "skipped": "the integration has no webhook subscriptions to renew",
        }));
    }
    let mut out = serde_json::Map::new();
    out.insert("integration".into(), json!(name));
    out.insert("task".into(), json!("renew_subscriptions"));
    for u in &done {
        tracing::info!(integration = name, "{u}");
        for (k, n) in &u.counts {
            out.insert((*k).to_string(), json!(n));
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    fn t(input: Value) -> anyhow::Result<Targets> {
        targets(input.get("integration"), input.get("integrations"), all)
    }

    #[test]
    fn an_input_names_one_several_or_every_integration() {
        assert_eq!(
            t(json!({"integration": "a"})).unwrap(),
            Targets::One("a".into())
        );
        assert_eq!(t(json!({})).unwrap(), Targets::Many(all()));
        assert_eq!(
            t(json!({"integrations": "*"})).unwrap(),
            Targets::Many(all())
        );
        assert_eq!(
            t(json!({"integrations": "b, x"})).unwrap(),
            Targets::Many(vec!["b".into(), "x".into()])
        );
        assert_eq!(
            t(json!({"integrations": ["b"]})).unwrap(),
            Targets::Many(vec!["b".into()])
        );
    }

    #[test]
    fn a_malformed_selection_is_refused_with_what_was_expected() {
        for bad in [
            json!({"integration": "a", "integrations": "*"}),
            json!({"integration": 7}),
            json!({"integrations": [1]}),
            json!({"integrations": {"a": true}}),
        ] {
            let err = t(bad.clone()).unwrap_err().to_string();
            assert!(err.contains("expected"), "{bad}: {err}");
        }
    }
}
