//! B1 A/P invoices → Coupa invoices, once per (supplier, invoice number).
//!
//! Map: fetch the B1 invoice (its base POs' numbers read along), skip what B1 does not release
//! (cancelled, or a cancellation document), queue the Coupa invoice. Post: one ledger entry per
//! B1 invoice; the Coupa invoice is found by the recorded id, else by supplier + invoice number.

use super::{B1Coupa, segments};
use crate::config::tables;
use crate::model::DocumentKind;
use crate::model::Readiness;
use crate::ports::Written;
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, SourceDocument, Step, Store};
use crate::steps::map::{self, MapCrash, MapOutcome};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::coupa::{InvoiceLineToCreate, InvoiceToCreate, InvoiceWriter};

pub(super) const KIND: &str = "invoice";

pub async fn map_invoice<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    let inv = match map::fetch(env, &flow.b1, msg, crash).await? {
        Ok(SourceDocument::Invoice(i)) => i,
        Ok(other) => {
            return Err(StepError::Poison(format!(
                "B1 invoice {} read as {other:?}",
                msg.source_id
            )));
        }
        Err(outcome) => return Ok(outcome),
    };
    let audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Map,
        AuditStatus::Mapped,
    )
    .with_invoice(&inv);
    if let Readiness::NotReady(why) = &inv.readiness {
        return map::skip(env, msg, audit, why.clone()).await;
    }
    let Some(supplier) = inv.supplier.number.clone() else {
        return map::park(
            env,
            msg,
            Some(inv.number.clone()),
            "no supplier code".into(),
        )
        .await;
    };
    let doc = InvoiceToCreate {
        supplier_number: supplier,
        invoice_number: inv.number.clone(),
        invoice_date: inv.invoice_date,
        currency: inv.total.currency.to_string(),
        lines: inv
            .lines
            .iter()
            .map(|l| InvoiceLineToCreate {
                line_num: l.line_num,
                description: l.description.clone(),
                quantity: l.quantity.unwrap_or(rust_decimal::Decimal::ONE),
                price: l.unit_price,
                tax_amount: l.tax.iter().map(|t| t.amount).sum(),
                segments: segments(&l.account),
                po_number: l.po_number.as_deref().map(|n| flow.po_number(n)),
                order_line_num: l.po_line_num,
            })
            .collect(),
    };
    let post = PostEnvelope::new(
        flow.name(),
        DocumentKind::Invoice,
        &inv.source_id,
        Some(inv.version.to_rfc3339()),
        true,
        &doc,
    );
    map::hand_over(env, msg, &post, audit, crash).await
}

pub async fn post_invoice<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    owner: &str,
    msg: &PostEnvelope,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let doc: InvoiceToCreate = msg.payload().map_err(StepError::Poison)?;
    let mut audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Post,
        AuditStatus::Posted,
    );
    audit.source_document_number = Some(doc.invoice_number.clone());
    audit.vendor = Some(doc.supplier_number.clone());
    audit.currency = Some(doc.currency.clone());
    audit.amount = Some(
        doc.lines
            .iter()
            .map(|l| l.quantity * l.price + l.tax_amount)
            .sum(),
    );
    let subject = Subject {
        key: LedgerKey {
            integration: flow.name().to_string(),
            kind: KIND.into(),
            source_id: msg.source_id.clone(),
        },
        kind: DocumentKind::Invoice,
        source_id: msg.source_id.clone(),
        version: msg.version.clone(),
        number: Some(doc.invoice_number.clone()),
        audit,
    };
    let writer = InvoiceWriter {
        coupa: flow.coupa.clone(),
    };
    // B1 invoice DocEntry → Coupa invoice id, so a B1 payment finds the invoice it pays. The
    // internal `posted_invoice` table (hidden from `mlc map list`) holds that link here.
    let table = tables::posted_invoice(flow.name());
    let source = msg.source_id.clone();
    let links = move |w: &Written| {
        if w.id.is_empty() {
            Vec::new()
        } else {
            vec![Link::Put {
                table: table.clone(),
                source: source.clone(),
                target: w.id.clone(),
            }]
        }
    };
    write_once(env, &writer, owner, &subject, &doc, &links, crash).await
}
