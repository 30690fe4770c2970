//! Map step: fetch the source document, convert it to the canonical model, resolve vendor,
//! G/L accounts and dimensions, and queue it for posting. What cannot be resolved is parked
//! with the reason, and retried when the mapping exists.

use super::claim;
use super::resolve::{self, Lookups, ResolveError};
use super::{Env, IngestMessage, PostMessage, StepError, audit_item};
use crate::config::IntegrationConfig;
use crate::ports::{AuditStatus, Clock, ParkedDoc, Queue, QueueName, Step, Store};
use crate::systems::coupa::{self, CoupaClient, CoupaError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOutcome {
    Mapped,
    Parked(String),
    /// Not for us (any more): e.g. no longer approved.
    Skipped(String),
}

/// Where the step stops when a test asks it to crash (fault injection in tests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapCrash {
    /// Before the source document is fetched.
    BeforeSourceRead,
    /// After the source document was fetched, before it is mapped or queued.
    AfterSourceRead,
    /// After the post message was queued, before the document is unparked and audited.
    AfterEnqueue,
}

/// The clients a map step reads through: the source, and the target's lookups (vendors,
/// orders, master data) when the target is configured.
pub struct Clients<'a> {
    pub coupa: &'a CoupaClient,
    pub lookups: Option<Lookups<'a>>,
}

pub async fn coupa_invoice<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    clients: &Clients<'_>,
    integration: &IntegrationConfig,
    msg: &IngestMessage,
) -> Result<MapOutcome, StepError> {
    map_with_crash(env, clients, integration, msg, None).await
}

/// As [`coupa_invoice`], abandoning the attempt at `crash` as a killed worker would (no ack,
/// no unpark, no audit): for the tests that prove a restart neither duplicates nor loses.
pub async fn map_with_crash<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    clients: &Clients<'_>,
    integration: &IntegrationConfig,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    let name = &integration.name;
    let id: i64 = match msg.source_id.parse() {
        Ok(id) => id,
        Err(_) => {
            return park(
                env,
                msg,
                None,
                format!("'{}' is not a Coupa invoice id", msg.source_id),
            )
            .await;
        }
    };
    if crash == Some(MapCrash::BeforeSourceRead) {
        return Err(StepError::retry("crash injected before the source read"));
    }
    let wire = match clients.coupa.invoice(id).await {
        Ok(w) => w,
        Err(e @ CoupaError::Malformed { .. }) => return park(env, msg, None, e.to_string()).await,
        Err(e) => {
            return Err(StepError::system(
                &format!("fetching Coupa invoice {id}"),
                e,
            ));
        }
    };
    if crash == Some(MapCrash::AfterSourceRead) {
        return Err(StepError::retry("crash injected after the source read"));
    }
    let invoice = match coupa::invoice_from_wire(&wire) {
        Ok(inv) => inv,
        Err(e) => return park(env, msg, wire.invoice_number.clone(), e.to_string()).await,
    };
    let audit = |status| {
        audit_item(
            env.clock.now(),
            name,
            kind_name(invoice.kind),
            &msg.source_id,
            Step::Map,
            status,
        )
        .with_invoice(&invoice)
    };

    if invoice.status != "approved" {
        let why = format!("status is '{}', not approved: not posted", invoice.status);
        claim::unpark(env, msg).await?;
        claim::write(env, audit(AuditStatus::Rejected).with_error(why.clone())).await?;
        return Ok(MapOutcome::Skipped(why));
    }
    let resolved =
        match resolve::invoice(&invoice, integration, &env.store, clients.lookups.as_ref()).await {
            Ok(r) => r,
            Err(ResolveError::Unresolved(why)) => {
                return park(env, msg, Some(invoice.number.clone()), why).await;
            }
            Err(e) => return Err(e.into_step("resolving")),
        };
    let post = PostMessage {
        integration: name.clone(),
        invoice: resolved,
    };
    env.queue
        .send(QueueName::Post, vec![post.to_outgoing()])
        .await
        .map_err(|e| StepError::new("enqueueing for posting", e))?;
    if crash == Some(MapCrash::AfterEnqueue) {
        return Err(StepError::retry(
            "crash injected after the post message was queued",
        ));
    }
    claim::unpark(env, msg).await?;
    claim::write(env, audit(AuditStatus::Mapped)).await?;
    Ok(MapOutcome::Mapped)
}

/// Parks the document; the audit trail gets an item only when the reason is new, so a
/// document retried every poll does not flood it.
pub async fn park<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    number: Option<String>,
    reason: String,
) -> Result<MapOutcome, StepError> {
    let kind = msg.kind.as_str();
    let already = env
        .store
        .parked()
        .await
        .map_err(|e| StepError::new("reading parked documents", e))?
        .into_iter()
        .any(|p| {
            p.integration == msg.integration
                && p.kind == kind
                && p.source_id == msg.source_id
                && p.reason == reason
        });
    let mut retry = msg.clone();
    retry.via = "retry".into();
    let doc = ParkedDoc {
        integration: msg.integration.clone(),
        kind: kind.to_string(),
        source_id: msg.source_id.clone(),
        source_document_number: number.clone(),
        reason: reason.clone(),
        message: serde_json::to_string(&retry).expect("serialisable"),
        at: env.clock.now(),
    };
    env.store
        .park(&doc)
        .await
        .map_err(|e| StepError::new("parking", e))?;
    if !already {
        let mut item = audit_item(
            env.clock.now(),
            &msg.integration,
            kind,
            &msg.source_id,
            Step::Map,
            AuditStatus::Parked,
        )
        .with_error(reason.clone());
        item.source_document_number = number;
        claim::write(env, item).await?;
    }
    Ok(MapOutcome::Parked(reason))
}

/// Re-enqueues every parked document (after a mapping was added, and on each poll cycle).
pub async fn retry_parked<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
) -> Result<usize, StepError> {
    let parked = env
        .store
        .parked()
        .await
        .map_err(|e| StepError::new("reading parked documents", e))?;
    let mut out = Vec::new();
    for p in &parked {
        if let Ok(msg) = serde_json::from_str::<IngestMessage>(&p.message) {
            out.push(msg.to_outgoing());
        }
    }
    let n = out.len();
    if n > 0 {
        env.queue
            .send(QueueName::Ingest, out)
            .await
            .map_err(|e| StepError::new("re-enqueueing parked documents", e))?;
    }
    Ok(n)
}

/// The audit trail's document kind of a Coupa invoice-type document.
pub fn kind_name(kind: crate::model::InvoiceKind) -> &'static str {
    match kind {
        crate::model::InvoiceKind::Invoice => "invoice",
        crate::model::InvoiceKind::CreditNote => "credit_note",
    }
}
