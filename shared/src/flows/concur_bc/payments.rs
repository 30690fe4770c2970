//! Payment confirmations (`[integrations.sync] payments = true`): when the BC purchase invoice
//! this integration posted for what an expense report owes the employee becomes "Paid", Concur
//! is told with a `CP` payment confirmation, exactly once (`PaymentConfirmationWriter`: found by
//! the document's status before it is sent; `NOOP` on a repeat is success).
//!
//! Only expense reports: FIS payment confirmations are "Expense only at this time" (concur.md
//! §2.7.2, S-CN15; the v4 page: `docType` currently only `expense`). A card issuer's invoice
//! paid is not the employee's reimbursement, and an invoice payment request has no payment
//! confirmation: neither is sent.
//!
//! Only `CP`: a partial payment (`PP`) is not visible through BC's API. A v2.0 purchase invoice
//! has no remaining amount (business-central.md A6.2: `remainingAmount` exists on sales
//! invoices and applied vendor entries only) and its status turns "Paid" only when its vendor
//! ledger entry is closed; vendor payments leave the payment journal once posted (A6.7). An
//! invoice closed by a credit memo also shows "Paid": a backed-out report's invoice is unlinked
//! from the report before that (`backout`), so it is never confirmed as paid.
//!
//! The poll reads BC's paid invoices modified since the stored mark (minus the overlap), with
//! the upper bound fixed when it starts, queues one task per invoice, then moves the mark.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::resolve::EMPLOYEE;
use crate::config::{IntegrationConfig, tables};
use crate::model::{Currency, DocumentKind, Money, PaymentBack};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, QueueName, Step, Store};
use crate::steps::poll::{advance, lower_bound};
use crate::steps::post::PostOutcome;
use crate::steps::write::{Subject, write_once};
use crate::steps::{Env, PostEnvelope, StepError, audit_item};
use crate::systems::business_central::BcClient;
use crate::systems::concur::{ConcurClient, PaymentConfirmationWriter};

pub(super) const KIND: &str = "payment_confirmation";

pub fn watermark_key(integration: &str) -> String {
    format!("{integration}/bc/paid-invoices")
}

/// The post task: the payment and whom it reimbursed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PaidTask {
    pub payment: PaymentBack,
    /// The employee's BC vendor number.
    pub vendor: String,
}

/// Queues a payment confirmation for every paid BC invoice that reimburses an expense report
/// this integration posted; returns how many.
pub(super) async fn poll_paid<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    integration: &IntegrationConfig,
) -> Result<u32, StepError> {
    let name = &integration.name;
    let key = watermark_key(name);
    let (stored, lower) = lower_bound(env, &key, integration).await?;
    // BC timestamps carry milliseconds; the bound is exclusive.
    let upper = env.clock.now().trunc_subsecs(3) + Duration::milliseconds(1);
    let paid = bc
        .paid_invoices_modified(lower, upper)
        .await
        .map_err(|e| StepError::system("listing paid BC invoices", e))?;
    let mut out = Vec::new();
    for inv in &paid {
        let source = env
            .store
            .mapping(&tables::posted_invoice(name), &inv.id.to_lowercase())
            .await
            .map_err(|e| StepError::new("reading the posted-invoice mapping", e))?;
        // Only the employee's invoice of an expense report (`{docId}-EMPL`, or
        // `{docId}@{submission}-EMPL` for a submission after a back-out).
        let Some(doc_id) = source
            .as_deref()
            .and_then(|s| super::backout::report_of(s, EMPLOYEE))
        else {
            continue;
        };
        let currency = inv
            .currency_code
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .and_then(|c| Currency::new(c).ok());
        let (Some(amount), Some(currency)) = (inv.total_amount_including_tax, currency) else {
            tracing::warn!(bc_id = %inv.id, "paid invoice without amount or currency; skipped");
            continue;
        };
        // BC's invoice has no payment date: the day it turned Paid is the best it tells.
        let date = inv
            .last_modified_date_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc).date_naive())
            .unwrap_or_else(|| env.clock.now().date_naive());
        let number = inv.number.clone().unwrap_or_else(|| inv.id.clone());
        let task = PaidTask {
            payment: PaymentBack {
                source_id: doc_id,
                source_document_number: inv.vendor_invoice_number.clone(),
                target_id: inv.id.to_lowercase(),
                target_number: inv.number.clone(),
                amount: Money { amount, currency },
                date,
                // Unique per payment (§2.3): a BC posted invoice is paid in full once.
                reference: format!("BC/{number}"),
            },
            vendor: inv.vendor_number.clone().unwrap_or_default(),
        };
        let target = task.payment.target_id.clone();
        out.push(
            PostEnvelope::new(
                name,
                DocumentKind::Payment,
                &task.payment.source_id,
                Some(target),
                false,
                &task,
            )
            .to_outgoing(),
        );
    }
    let queued = out.len() as u32;
    if !out.is_empty() {
        env.queue
            .send(QueueName::Post, out)
            .await
            .map_err(|e| StepError::new("enqueueing payment confirmations", e))?;
    }
    advance(env, &key, stored.as_ref(), upper).await?;
    Ok(queued)
}

pub(super) async fn confirm<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    concur: &ConcurClient,
    company_code: &str,
    owner: &str,
    integration: &str,
    task: &PaidTask,
) -> Result<PostOutcome, StepError> {
    let p = &task.payment;
    let mut audit = audit_item(
        env.clock.now(),
        integration,
        KIND,
        &p.source_id,
        Step::Confirm,
        AuditStatus::Posted,
    );
    audit.source_document_number = p.source_document_number.clone();
    audit.amount = Some(p.amount.amount);
    audit.currency = Some(p.amount.currency.to_string());
    let audit = audit.with_target(&p.target_id, p.target_number.as_deref());
    let subject = Subject {
        key: LedgerKey {
            integration: integration.to_string(),
            kind: KIND.into(),
            // One per payment reference: a report is reimbursed by one BC invoice.
            source_id: p.source_id.clone(),
        },
        kind: DocumentKind::Payment,
        source_id: p.source_id.clone(),
        version: None,
        number: p.source_document_number.clone(),
        audit,
    };
    let writer = PaymentConfirmationWriter {
        concur: concur.clone(),
        company_code: company_code.to_string(),
        receiver: task.vendor.clone(),
    };
    write_once(env, &writer, owner, &subject, p, &|_| Vec::new(), None).await
}
