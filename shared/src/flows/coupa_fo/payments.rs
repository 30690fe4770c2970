//! Paid status back: F&O vendor invoices this connector wrote that were posted and then paid
//! are recorded as a payment on their Coupa invoice, exactly once.
//!
//! Change detection: the pending invoice entities have no modified timestamp (d365-fo.md B2),
//! but the vendor transactions do (`VendTransBiEntities.SysModifiedDateTime`, B9.6), and paying
//! an invoice changes its transaction (settled amount, `Closed`). So the poll reads, per legal
//! entity, the transactions modified since the stored high-water mark minus the integration's
//! overlap (`ge`, never a strict `gt`), up to an upper bound fixed when it starts (`lt`),
//! following `@odata.nextLink` to the end; it queues one task per paid transaction of an
//! invoice this connector wrote, and only then moves the mark. A transaction seen again in the
//! overlap queues its payment again; the ledger and the payment's reference keep it once.

use chrono::{DateTime, SubsecRound, Utc};

use crate::config::{IntegrationConfig, tables};
use crate::model::{Currency, DocumentKind, Money, PaymentBack};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, QueueName, Step, Store};
use crate::steps::post::PostOutcome;
use crate::steps::write::{Subject, write_once};
use crate::steps::{Env, PostEnvelope, StepError, audit_item};
use crate::systems::coupa::{CoupaClient, PaymentWriter};
use crate::systems::dynamics_fo::FoClient;

pub(super) const KIND: &str = "payment";

pub fn watermark_key(integration: &str) -> String {
    format!("{integration}/fo/paid-transactions")
}

/// The key of the posted-invoice mapping: legal entity, invoice account, vendor invoice number
/// (what a vendor transaction names its invoice by).
pub fn invoice_key(legal_entity: &str, account: &str, invoice: &str) -> String {
    format!("{legal_entity}/{account}/{invoice}").to_lowercase()
}

/// The payment's reference in Coupa: one F&O voucher in one legal entity pays one invoice in
/// full once, so it names the payment uniquely.
pub fn reference(legal_entity: &str, voucher: &str) -> String {
    format!(
        "F&O payment of voucher {}/{voucher}",
        legal_entity.to_uppercase()
    )
}

#[derive(Clone, Debug, Default)]
pub struct PaidPollReport {
    pub seen: u32,
    pub queued: u32,
}

pub async fn poll_paid<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    fo: &FoClient,
    integration: &IntegrationConfig,
    legal_entities: &[String],
) -> Result<PaidPollReport, StepError> {
    let name = &integration.name;
    let key = watermark_key(name);
    let (stored, lower) = crate::steps::poll::lower_bound(env, &key, integration).await?;
    // SysModifiedDateTime has whole seconds: the bound is exclusive, and what lands later in
    // this second is in the next poll's overlap.
    let upper = env.clock.now().trunc_subsecs(0) + chrono::Duration::seconds(1);
    let mut report = PaidPollReport::default();
    let mut out = Vec::new();
    for le in legal_entities {
        let transactions = fo
            .vendor_transactions_modified(le, lower, upper)
            .await
            .map_err(|e| StepError::system("listing F&O vendor transactions", e))?;
        report.seen += transactions.len() as u32;
        for t in transactions.iter().filter(|t| t.is_paid()) {
            let source = env
                .store
                .mapping(
                    &tables::posted_invoice(name),
                    &invoice_key(le, &t.account_num, &t.invoice),
                )
                .await
                .map_err(|e| StepError::new("reading the posted-invoice mapping", e))?;
            // Not one this connector wrote: not ours to report.
            let Some(source_id) = source else { continue };
            let Ok(currency) = Currency::new(&t.currency_code) else {
                tracing::warn!(voucher = %t.voucher, "paid transaction without a currency; skipped");
                continue;
            };
            let date = DateTime::parse_from_rfc3339(&t.last_settle_date)
                .map(|d| d.with_timezone(&Utc).date_naive())
                .unwrap_or_else(|_| env.clock.now().date_naive());
            let payment = PaymentBack {
                source_id,
                source_document_number: Some(t.invoice.clone()),
                target_id: format!("{le}/{}", t.voucher).to_lowercase(),
                target_number: Some(t.voucher.clone()),
                amount: Money {
                    amount: t.amount_cur.unwrap_or_default().abs(),
                    currency,
                },
                date,
                reference: reference(le, &t.voucher),
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
    }
    report.queued = out.len() as u32;
    if !out.is_empty() {
        env.queue
            .send(QueueName::Post, out)
            .await
            .map_err(|e| StepError::new("enqueueing payments", e))?;
    }
    // Everything up to `upper` is queued: only now may the mark move.
    crate::steps::poll::advance(env, &key, stored.as_ref(), upper).await?;
    Ok(report)
}

/// Records the payment on its Coupa invoice exactly once (the Coupa payment writer looks for
/// the reference before it sends).
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
        kind: DocumentKind::Payment,
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
