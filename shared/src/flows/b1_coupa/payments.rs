//! B1 outgoing payments (`VendorPayments`) → payments on the Coupa invoices they pay
//! (`PUT /api/invoices/{id}` with `payments[]`, coupa.md §1.7), each exactly once: the Coupa
//! invoice is the one this integration created from the B1 invoice (the link recorded then);
//! the payment's reference `B1-VP-<DocNum>-<invoice DocEntry>` goes into the payment's notes,
//! so a repeat is seen before it is sent (the existing Coupa `PaymentWriter`).
//!
//! A cancelled B1 payment is not sent; reversing one already sent is not built yet.

use super::B1Coupa;
use crate::config::tables;
use crate::model::{Currency, DocumentKind, Money, PaymentBack};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, QueueName, Step, Store};
use crate::steps::map::{self, MapCrash, MapOutcome};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::write::{Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::coupa::PaymentWriter;
use crate::systems::sap_b1::EntitySet;
use crate::systems::sap_b1::wire::Payment;

pub(super) const KIND: &str = "payment";

pub async fn map_payment<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    let raw = match flow
        .b1
        .entity(EntitySet::VendorPayments, &msg.source_id)
        .await
    {
        Ok(r) => r,
        Err(e) => return Err(StepError::system("reading the B1 payment", e)),
    };
    let pay: Payment = match serde_json::from_value(raw) {
        Ok(p) => p,
        Err(e) => {
            let why = format!("B1 payment {} cannot be read: {e}", msg.source_id);
            return map::park(env, msg, None, why).await;
        }
    };
    let number = pay.doc_num.map(|n| n.to_string());
    let audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Map,
        AuditStatus::Mapped,
    );
    if pay.is_cancelled() {
        return map::skip(env, msg, audit, "cancelled in B1".into()).await;
    }
    let (Some(doc_num), Some(date), Some(b1_currency)) =
        (pay.doc_num, pay.doc_date, pay.doc_currency.as_deref())
    else {
        let why = "a B1 payment without DocNum, DocDate or DocCurrency".to_string();
        return map::park(env, msg, number, why).await;
    };
    let Ok(currency) = Currency::new(&flow.b1.iso_currency(b1_currency)) else {
        let why = format!("currency '{b1_currency}' is not an ISO code: map it under `currencies`");
        return map::park(env, msg, number, why).await;
    };
    let table = tables::posted_invoice(flow.name());
    let mut posts = Vec::new();
    for line in pay.payment_invoices.iter().filter(|l| {
        l.invoice_type
            .as_deref()
            .is_none_or(|t| t == "it_PurchaseInvoice")
    }) {
        let (Some(invoice), Some(local)) = (line.doc_entry, line.sum_applied) else {
            continue;
        };
        let Some(coupa_id) = env
            .store
            .mapping(&table, &invoice.to_string())
            .await
            .map_err(|e| StepError::new("reading the invoice link", e))?
        else {
            let why =
                format!("B1 invoice {invoice} is not in Coupa (yet): the payment waits for it");
            return map::park(env, msg, number, why).await;
        };
        // A foreign invoice is paid in its own currency (AppliedFC); else the local sum.
        let amount = line.applied_fc.filter(|a| !a.is_zero()).unwrap_or(local);
        let back = PaymentBack {
            source_id: coupa_id,
            source_document_number: None,
            target_id: msg.source_id.clone(),
            target_number: Some(doc_num.to_string()),
            amount: Money {
                amount,
                currency: currency.clone(),
            },
            date,
            reference: format!("B1-VP-{doc_num}-{invoice}"),
        };
        posts.push(PostEnvelope::new(
            flow.name(),
            DocumentKind::Payment,
            &format!("{}-{invoice}", msg.source_id),
            msg.version.clone(),
            true,
            &back,
        ));
    }
    let Some(last) = posts.pop() else {
        return map::skip(env, msg, audit, "pays no A/P invoice".into()).await;
    };
    if !posts.is_empty() {
        env.queue
            .send(
                QueueName::Post,
                posts.iter().map(PostEnvelope::to_outgoing).collect(),
            )
            .await
            .map_err(|e| StepError::new("enqueueing payments", e))?;
    }
    map::hand_over(env, msg, &last, audit, crash).await
}

pub async fn post_payment<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    owner: &str,
    msg: &PostEnvelope,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let back: PaymentBack = msg.payload().map_err(StepError::Poison)?;
    let mut audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Post,
        AuditStatus::Posted,
    );
    audit.source_document_number = back.target_number.clone();
    audit.amount = Some(back.amount.amount);
    audit.currency = Some(back.amount.currency.to_string());
    let subject = Subject {
        key: LedgerKey {
            integration: flow.name().to_string(),
            kind: KIND.into(),
            source_id: msg.source_id.clone(),
        },
        kind: DocumentKind::Payment,
        source_id: back.target_id.clone(),
        version: msg.version.clone(),
        number: Some(back.reference.clone()),
        audit,
    };
    let writer = PaymentWriter {
        coupa: flow.coupa.clone(),
    };
    write_once(env, &writer, owner, &subject, &back, &|_| Vec::new(), crash).await
}
