//! Paid status back: BC purchase invoices this connector posted that became "Paid" are recorded
//! as a payment on their Coupa invoice, exactly once.
//!
//! The poll reads BC's paid invoices modified since the stored high-water mark (minus an
//! overlap: `ge`, never a strict `gt`, so invoices that share an instant are not dropped),
//! following `@odata.nextLink` to the end, with the upper bound fixed when it starts; it queues
//! one task per invoice and only then moves the mark. The confirm step claims the ledger, reads
//! the Coupa invoice and sends the payment only if its reference is not there yet (a lost
//! answer to the PUT is found on the next attempt instead of paying twice).

use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::config::{IntegrationConfig, tables};
use crate::model::{Money, PaymentBack};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, QueueName, Step, Store};
use crate::steps::post::PostOutcome;
use crate::steps::write::{Subject, write_once};
use crate::steps::{Env, PostEnvelope, StepError, audit_item};
use crate::systems::business_central::BcClient;
use crate::systems::coupa::{CoupaClient, PaymentWriter};

pub(super) const KIND: &str = "payment";

pub fn watermark_key(integration: &str) -> String {
    format!("{integration}/bc/paid-invoices")
}

#[derive(Clone, Debug, Default)]
pub struct PaidPollReport {
    pub seen: u32,
    /// Paid invoices this connector posted, queued for their Coupa payment.
    pub queued: u32,
    pub watermark_advanced: bool,
}

/// Where the paid poll stops when a test asks it to crash (fault injection in tests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaidPollCrash {
    /// After BC was read, before anything was queued.
    AfterRead,
}

pub async fn poll_paid<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    integration: &IntegrationConfig,
) -> Result<PaidPollReport, StepError> {
    poll_paid_with_crash(env, bc, integration, None).await
}

pub async fn poll_paid_with_crash<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    integration: &IntegrationConfig,
    crash: Option<PaidPollCrash>,
) -> Result<PaidPollReport, StepError> {
    let name = &integration.name;
    let key = watermark_key(name);
    let (stored, lower) = crate::steps::poll::lower_bound(env, &key, integration).await?;
    // BC timestamps carry milliseconds; the bound is exclusive and what lands later in this
    // millisecond is in the next poll's overlap.
    let upper = env.clock.now().trunc_subsecs(3) + Duration::milliseconds(1);
    let paid = bc
        .paid_invoices_modified(lower, upper)
        .await
        .map_err(|e| StepError::system("listing paid BC invoices", e))?;
    if crash == Some(PaidPollCrash::AfterRead) {
        return Err(StepError::retry(
            "crash injected after the paid poll read BC",
        ));
    }
    let mut report = PaidPollReport {
        seen: paid.len() as u32,
        ..PaidPollReport::default()
    };
    let mut out = Vec::new();
    for inv in &paid {
        let source = env
            .store
            .mapping(&tables::posted_invoice(name), &inv.id.to_lowercase())
            .await
            .map_err(|e| StepError::new("reading the posted-invoice mapping", e))?;
        // Not one this connector posted: not ours to report.
        let Some(source_id) = source else { continue };
        let (Some(amount), Some(currency)) = (
            inv.total_amount_including_tax,
            inv_currency(inv).and_then(|c| crate::model::Currency::new(&c).ok()),
        ) else {
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
            reference: reference(&inv.id),
        };
        // Per (invoice, ERP invoice): a repeat within five minutes is dropped by the queue.
        let target = payment.target_id.clone();
        out.push(
            PostEnvelope::new(
                name,
                crate::model::DocumentKind::Payment,
                &payment.source_id,
                Some(target),
                false,
                &payment,
            )
            .to_outgoing(),
        );
    }
    report.queued = out.len() as u32;
    if !out.is_empty() {
        env.queue
            .send(QueueName::Post, out)
            .await
            .map_err(|e| StepError::new("enqueueing payments", e))?;
    }
    // Everything up to `upper` is queued: only now may the mark move.
    report.watermark_advanced =
        crate::steps::poll::advance(env, &key, stored.as_ref(), upper).await?;
    Ok(report)
}

fn inv_currency(inv: &crate::systems::business_central::wire::PurchaseInvoice) -> Option<String> {
    inv.currency_code.clone().filter(|c| !c.trim().is_empty())
}

/// The payment's reference in Coupa: one BC invoice is paid in full once, so its id names the
/// payment uniquely.
pub fn reference(bc_invoice_id: &str) -> String {
    format!(
        "Business Central payment of invoice {}",
        bc_invoice_id.to_lowercase()
    )
}

pub async fn confirm_coupa_payment<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    coupa: &CoupaClient,
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
        kind: crate::model::DocumentKind::Payment,
        source_id: p.source_id.clone(),
        version: None,
        number: p.source_document_number.clone(),
        audit,
    };
    let writer = PaymentWriter {
        coupa: coupa.clone(),
    };
    write_once(env, &writer, owner, &subject, p, &|_| Vec::new(), None).await
}
