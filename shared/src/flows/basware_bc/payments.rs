//! Paid status back (`[integrations.sync] payments = true`): BC purchase invoices this
//! integration posted that became "Paid" are answered to Basware with a payment response,
//! exactly once (`PaymentResponseWriter`: found by its `externalCode` before it is sent, a 409
//! on a repeat is success).
//!
//! The poll reads BC's paid invoices modified since the stored mark (minus the overlap, `ge`),
//! with the upper bound fixed when it starts, queues one task per invoice it posted, and only
//! then moves the mark.

use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::config::{IntegrationConfig, tables};
use crate::model::{Currency, DocumentKind, Money, PaymentBack};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, QueueName, Step, Store};
use crate::steps::poll::{advance, lower_bound};
use crate::steps::post::PostOutcome;
use crate::steps::write::{Subject, write_once};
use crate::steps::{Env, PostEnvelope, StepError, audit_item};
use crate::systems::basware::{BaswareClient, PaymentResponseWriter};
use crate::systems::business_central::BcClient;

pub(super) const KIND: &str = "payment";

pub fn watermark_key(integration: &str) -> String {
    format!("{integration}/bc/paid-invoices")
}

/// Queues a payment response for every paid BC invoice this integration posted; returns how
/// many.
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
        // Not one this integration posted: not ours to report.
        let Some(source_id) = source else { continue };
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
        let payment = PaymentBack {
            source_id,
            source_document_number: inv.vendor_invoice_number.clone(),
            target_id: inv.id.to_lowercase(),
            target_number: inv.number.clone(),
            amount: Money { amount, currency },
            date,
            // One BC invoice is paid in full once: its id names the payment.
            reference: format!("bc-paid-{}", inv.id.to_lowercase()),
        };
        let target = payment.target_id.clone();
        out.push(
            PostEnvelope::new(
                name,
                DocumentKind::Payment,
                &payment.source_id,
                Some(target),
                false,
                &payment,
            )
            .to_outgoing(),
        );
    }
    let queued = out.len() as u32;
    if !out.is_empty() {
        env.queue
            .send(QueueName::Post, out)
            .await
            .map_err(|e| StepError::new("enqueueing payment responses", e))?;
    }
    advance(env, &key, stored.as_ref(), upper).await?;
    Ok(queued)
}

pub(super) async fn respond<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    basware: &BaswareClient,
    owner: &str,
    integration: &str,
    p: &PaymentBack,
) -> Result<PostOutcome, StepError> {
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
            source_id: p.source_id.clone(),
        },
        kind: DocumentKind::Payment,
        source_id: p.source_id.clone(),
        version: None,
        number: p.source_document_number.clone(),
        audit,
    };
    let writer = PaymentResponseWriter {
        basware: basware.clone(),
    };
    write_once(env, &writer, owner, &subject, p, &|_| Vec::new(), None).await
}
