//! B1 purchase orders → Coupa external purchase orders.
//!
//! Map: fetch the B1 order, build the Coupa order (PO number = prefix + `DocNum`), queue it.
//! Post: one ledger entry per (order, content digest): a change is written once, the same
//! content seen again (overlapping polls re-list every document of the day) is nothing to do.
//! The Coupa order is found by the id recorded when it was created, else by its PO number, so
//! a create whose answer was lost is found, never made twice.

use super::{B1Coupa, segments};
use crate::model::DocumentKind;
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, SourceDocument, Step, Store};
use crate::steps::map::{self, MapCrash, MapOutcome};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::write::{Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::coupa::{ExternalLine, ExternalOrder, ExternalOrderWriter};

const KIND: &str = "purchase_order";
/// Coupa's limit on `po-number` (coupa.md §1.8).
const PO_NUMBER_MAX: usize = 20;

pub async fn map_order<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    let po = match map::fetch(env, &flow.b1, msg, crash).await? {
        Ok(SourceDocument::PurchaseOrder(po)) => po,
        Ok(other) => {
            return Err(StepError::Poison(format!(
                "B1 purchase order {} read as {other:?}",
                msg.source_id
            )));
        }
        Err(outcome) => return Ok(outcome),
    };
    let number = flow.po_number(&po.number);
    let mut audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Map,
        AuditStatus::Mapped,
    );
    audit.source_document_number = Some(po.number.clone());
    audit.vendor = Some(po.supplier.name.clone());
    audit.currency = Some(po.currency.to_string());
    audit.amount = Some(po.lines.iter().map(|l| l.amount).sum());
    if number.chars().count() > PO_NUMBER_MAX {
        let why = format!(
            "Coupa PO number '{number}' is longer than Coupa's {PO_NUMBER_MAX} characters: \
             shorten the system's po_number_prefix"
        );
        return map::park(env, msg, Some(po.number.clone()), why).await;
    }
    let Some(supplier) = po.supplier.number.clone() else {
        return map::park(env, msg, Some(po.number.clone()), "no supplier code".into()).await;
    };
    let order = ExternalOrder {
        po_number: number,
        supplier_number: supplier,
        currency: po.currency.to_string(),
        lines: po
            .lines
            .iter()
            .map(|l| ExternalLine {
                line_num: l.line_num,
                description: l.description.clone(),
                quantity: l.quantity,
                price: l.unit_price,
                segments: segments(&l.account),
            })
            .collect(),
        cancelled: po.status == "cancelled",
    };
    let post = PostEnvelope::new(
        flow.name(),
        DocumentKind::PurchaseOrder,
        &po.source_id,
        Some(po.version.to_rfc3339()),
        true,
        &order,
    );
    map::hand_over(env, msg, &post, audit, crash).await
}

/// A digest of what Coupa is asked to hold: the ledger key of this content.
fn digest(order: &ExternalOrder) -> String {
    let bytes = serde_json::to_vec(order).expect("serialisable");
    crate::digest::short_hex(&bytes, 16)
}

pub async fn post_order<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    owner: &str,
    msg: &PostEnvelope,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let order: ExternalOrder = msg.payload().map_err(StepError::Poison)?;
    let mut audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Post,
        AuditStatus::Posted,
    );
    audit.source_document_number = Some(order.po_number.clone());
    audit.vendor = Some(order.supplier_number.clone());
    audit.currency = Some(order.currency.clone());
    audit.amount = Some(order.lines.iter().map(|l| l.quantity * l.price).sum());
    let subject = Subject {
        key: LedgerKey {
            integration: flow.name().to_string(),
            kind: KIND.into(),
            source_id: format!("{}-{}", msg.source_id, digest(&order)),
        },
        kind: DocumentKind::PurchaseOrder,
        source_id: msg.source_id.clone(),
        version: msg.version.clone(),
        number: Some(order.po_number.clone()),
        audit,
    };
    let writer = ExternalOrderWriter {
        coupa: flow.coupa.clone(),
    };
    write_once(
        env,
        &writer,
        owner,
        &subject,
        &order,
        &|_| Vec::new(),
        crash,
    )
    .await
}
