//! Accounting documents: map (fetch → acknowledge → resolve, or a failure response when the
//! document cannot be mapped and the integration sends failures at once), then post (the BC
//! purchase invoice or credit memo exactly once, then the transfer response exactly once, each
//! through `write_once` under its own ledger entry).
//!
//! The acknowledge is done and answered in the map step before anything is handed to the post
//! step, so a transfer response is never sent while the acknowledge is in flight (§3.5).

use serde::{Deserialize, Serialize};

use super::BaswareBc;
use super::resolve::{self, ResolveError};
use crate::config::{FailureResponse, tables};
use crate::model::{DocumentKind, InvoiceKind, ResolvedInvoice};
use crate::ports::{
    AuditStatus, Clock, LedgerKey, LedgerState, ParkedDoc, Queue, Source, SourceDocument, Step,
    Store, Written,
};
use crate::steps::map::{self, MapCrash, MapOutcome, kind_name};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::basware::{TransferDoc, TransferWriter};
use crate::systems::business_central::InvoiceWriter;

/// The ledger kind of a BC document (invoices and credit notes share Basware's invoice ids).
pub(super) const LEDGER_KIND: &str = "invoice";
/// The ledger kind of a transfer response.
pub(super) const RESPONSE_KIND: &str = "transfer_response";

/// What the post step does with a document.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub(super) enum Task {
    /// Post it in BC, then tell Basware it was transferred.
    Post { invoice: ResolvedInvoice },
    /// Tell Basware it cannot be transferred, and why.
    Fail {
        invoice_id: String,
        number: String,
        /// The document version that failed (Unix milliseconds).
        version: i64,
        reason: String,
    },
}

pub(super) async fn map_document<Q: Queue, S: Store, C: Clock>(
    flow: &BaswareBc,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    let invoice = match map::fetch(env, &flow.basware, msg, crash).await? {
        Ok(SourceDocument::Invoice(i)) => i,
        Ok(_) => unreachable!("Basware's fetch returns accounting documents as invoices"),
        Err(outcome) => return Ok(outcome),
    };
    let audit = audit_item(
        env.clock.now(),
        flow.name(),
        kind_name(invoice.kind),
        &msg.source_id,
        Step::Map,
        AuditStatus::Mapped,
    )
    .with_invoice(&invoice);
    if !invoice.readiness.is_ready() {
        let why = format!(
            "processing status is '{}', not WaitingForTransfer: not posted",
            invoice.status
        );
        return map::skip(env, msg, audit, why).await;
    }
    // Taken now, answered before the post step can send a transfer response; a repeat (405)
    // is success.
    flow.basware
        .acknowledge(msg.kind, &invoice.source_id)
        .await
        .map_err(|e| StepError::system("acknowledging the Basware document", e))?;
    let kind = match invoice.kind {
        InvoiceKind::Invoice => DocumentKind::Invoice,
        InvoiceKind::CreditNote => DocumentKind::CreditNote,
    };
    let task = match resolve::invoice(&invoice, &flow.cfg, &env.store).await {
        Ok(resolved) => Task::Post { invoice: resolved },
        Err(ResolveError::Unresolved(why)) => match flow.failure_response {
            FailureResponse::Park => {
                return map::park(env, msg, Some(invoice.number.clone()), why).await;
            }
            FailureResponse::AtOnce => Task::Fail {
                invoice_id: invoice.source_id.clone(),
                number: invoice.number.clone(),
                version: invoice.version.timestamp_millis(),
                reason: why,
            },
        },
        Err(e) => return Err(StepError::new("resolving", e)),
    };
    let post = PostEnvelope::new(
        flow.name(),
        kind,
        &invoice.source_id,
        Some(invoice.version.timestamp_millis().to_string()),
        true,
        &task,
    );
    map::hand_over(env, msg, &post, audit, crash).await
}

pub(super) async fn post_document<Q: Queue, S: Store, C: Clock>(
    flow: &BaswareBc,
    env: &Env<Q, S, C>,
    owner: &str,
    msg: &PostEnvelope,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let task: Task = msg.payload().map_err(StepError::Poison)?;
    match task {
        Task::Post { invoice } => {
            let outcome = post_invoice(flow, env, owner, &invoice, crash).await?;
            match &outcome {
                PostOutcome::Posted { number, .. } | PostOutcome::AlreadyPosted { number, .. } => {
                    let response = TransferDoc {
                        invoice_id: invoice.source_id.clone(),
                        occasion: "transferred".into(),
                        success: true,
                        message: format!("Posted in Business Central as {number}."),
                        voucher_number: Some(number.clone()),
                    };
                    match respond(flow, env, owner, &invoice.vendor_invoice_number, response)
                        .await?
                    {
                        PostOutcome::Posted { .. } | PostOutcome::AlreadyPosted { .. } => {
                            Ok(outcome)
                        }
                        waiting => Ok(waiting),
                    }
                }
                // BC refused it: Basware is told at once when the integration says so (the
                // document stays parked here; a retry finds it TransferFailed and lets it go).
                PostOutcome::Parked(reason) if flow.failure_response == FailureResponse::AtOnce => {
                    let response = TransferDoc {
                        invoice_id: invoice.source_id.clone(),
                        occasion: format!("failed {}", invoice.version.timestamp_millis()),
                        success: false,
                        message: format!("Not posted in Business Central: {reason}"),
                        voucher_number: None,
                    };
                    respond(flow, env, owner, &invoice.vendor_invoice_number, response).await?;
                    Ok(outcome)
                }
                _ => Ok(outcome),
            }
        }
        Task::Fail {
            invoice_id,
            number,
            version,
            reason,
        } => {
            let response = TransferDoc {
                invoice_id,
                occasion: format!("failed {version}"),
                success: false,
                message: format!("Not transferred: {reason}"),
                voucher_number: None,
            };
            respond(flow, env, owner, &number, response).await
        }
    }
}

async fn post_invoice<Q: Queue, S: Store, C: Clock>(
    flow: &BaswareBc,
    env: &Env<Q, S, C>,
    owner: &str,
    inv: &ResolvedInvoice,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let name = flow.name();
    let subject = Subject {
        key: LedgerKey {
            integration: name.to_string(),
            kind: LEDGER_KIND.into(),
            source_id: inv.source_id.clone(),
        },
        kind: DocumentKind::Invoice,
        source_id: inv.source_id.clone(),
        version: Some(inv.version.to_rfc3339()),
        number: Some(inv.vendor_invoice_number.clone()),
        audit: audit_item(
            env.clock.now(),
            name,
            kind_name(inv.kind),
            &inv.source_id,
            Step::Post,
            AuditStatus::Posted,
        )
        .with_resolved(inv),
    };
    // A posted invoice is traced back to its Basware document when BC shows it paid.
    let table = tables::posted_invoice(name);
    let links = |w: &Written| {
        if inv.kind == InvoiceKind::Invoice && !w.id.is_empty() {
            vec![Link::Put {
                table: table.clone(),
                source: w.id.to_lowercase(),
                target: inv.source_id.clone(),
            }]
        } else {
            Vec::new()
        }
    };
    let writer = InvoiceWriter::new(flow.bc.clone());
    write_once(env, &writer, owner, &subject, inv, &links, crash).await
}

/// The transfer response, exactly once under its own ledger entry (its own step in the audit
/// trail: `confirm`).
async fn respond<Q: Queue, S: Store, C: Clock>(
    flow: &BaswareBc,
    env: &Env<Q, S, C>,
    owner: &str,
    number: &str,
    response: TransferDoc,
) -> Result<PostOutcome, StepError> {
    let name = flow.name();
    let ledger_id = if response.success {
        response.invoice_id.clone()
    } else {
        // One failure response per failed version: a document sent again after a fix may fail
        // again and must be told again. Colon-free, like every ledger id.
        format!(
            "{}-{}",
            response.invoice_id,
            response.occasion.replace(' ', "-")
        )
    };
    let mut audit = audit_item(
        env.clock.now(),
        name,
        RESPONSE_KIND,
        &response.invoice_id,
        Step::Confirm,
        AuditStatus::Posted,
    );
    audit.source_document_number = Some(number.to_string());
    if !response.success {
        audit = audit.with_error(response.message.clone());
    }
    let subject = Subject {
        key: LedgerKey {
            integration: name.to_string(),
            kind: RESPONSE_KIND.into(),
            source_id: ledger_id,
        },
        kind: DocumentKind::Invoice,
        source_id: response.invoice_id.clone(),
        version: None,
        number: Some(number.to_string()),
        audit,
    };
    let writer = TransferWriter {
        basware: flow.basware.client.clone(),
    };
    write_once(
        env,
        &writer,
        owner,
        &subject,
        &response,
        &|_| Vec::new(),
        None,
    )
    .await
}

/// An operator's give-up on a parked accounting document (`mlc replay --give-up`): a
/// transfer-failure response carrying the operator's reason, so the document returns to
/// Basware's own workflow (`TransferFailed`, §3.5), exactly once per parked version (its own
/// ledger entry). Refused when the ledger records the document posted in BC: Basware is not
/// told a posted document failed. Documents of other kinds have no give-up.
pub(super) async fn give_up<Q: Queue, S: Store, C: Clock>(
    flow: &BaswareBc,
    env: &Env<Q, S, C>,
    owner: &str,
    parked: &ParkedDoc,
    reason: &str,
) -> Result<Option<PostOutcome>, StepError> {
    if !matches!(parked.kind.as_str(), "invoice" | "credit_note") {
        return Ok(None);
    }
    let key = LedgerKey {
        integration: flow.name().to_string(),
        kind: LEDGER_KIND.into(),
        source_id: parked.source_id.clone(),
    };
    let entry = env
        .store
        .ledger_entry(&key)
        .await
        .map_err(|e| StepError::new("reading the ledger", e))?;
    if let Some(e) = entry.filter(|e| e.state == LedgerState::Done) {
        return Ok(Some(PostOutcome::Parked(format!(
            "posted in Business Central as {}: not given up (Basware is never told a posted \
             document failed); retry it so its transfer response is sent",
            e.target_number.unwrap_or_default()
        ))));
    }
    // The version it was parked at: a document Basware sends again later is a new occasion.
    let version = serde_json::from_str::<IngestMessage>(&parked.message)
        .ok()
        .and_then(|m| m.version)
        .unwrap_or_default();
    let response = TransferDoc {
        invoice_id: parked.source_id.clone(),
        occasion: format!(
            "given up {}",
            crate::digest::short_hex(version.as_bytes(), 12)
        ),
        success: false,
        message: format!("Not transferred (given up by an operator): {reason}"),
        voucher_number: None,
    };
    let number = parked
        .source_document_number
        .clone()
        .unwrap_or_else(|| parked.source_id.clone());
    respond(flow, env, owner, &number, response).await.map(Some)
}
