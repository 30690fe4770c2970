//! Purchase orders: Coupa → Business Central `purchaseOrders`, so receipts and bills can match.
//!
//! Map: fetch the Coupa order, resolve vendor, G/L accounts and dimensions, queue a sync task.
//! Post: one ledger entry per (order, Coupa version). The BC order is found by the id recorded
//! when it was created, else by the reference every line carries in `description2` (an
//! order's `number` is BC's own, read-only). A new order is created in one deep insert; a
//! changed one is updated line by line with each line's entity tag (BC requires If-Match, and a
//! stale tag fails rather than overwriting someone's change); never created twice.

use super::Clients;
use super::resolve::{self, ResolveError};
use crate::config::{IntegrationConfig, tables};
use crate::model::{DocumentKind, ResolvedPurchaseOrder};
use crate::ports::{
    AuditStatus, Change, Clock, LedgerKey, Queue, SourceDocument, Step, Store, Written,
};
use crate::steps::map::{self, MapOutcome};
use crate::steps::post::PostOutcome;
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::business_central::{BcClient, OrderJob, OrderWriter};

const KIND: &str = "purchase_order";

pub async fn map_coupa_order<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    clients: &Clients<'_>,
    integration: &IntegrationConfig,
    msg: &IngestMessage,
) -> Result<MapOutcome, StepError> {
    let po = match map::fetch(env, clients.coupa, msg, None).await? {
        Ok(SourceDocument::PurchaseOrder(po)) => po,
        Ok(_) => unreachable!("Coupa's order fetch returns orders"),
        Err(outcome) => return Ok(outcome),
    };
    let mut audit = audit_item(
        env.clock.now(),
        &integration.name,
        KIND,
        &msg.source_id,
        Step::Map,
        AuditStatus::Mapped,
    );
    audit.source_document_number = Some(po.number.clone());
    audit.vendor = Some(po.supplier.name.clone());
    audit.currency = Some(po.currency.to_string());
    if !matches!(po.status.as_str(), "issued" | "closed" | "cancelled") {
        let why = format!(
            "status is '{}': only issued, closed and cancelled orders are synced",
            po.status
        );
        return map::skip(env, msg, audit, why).await;
    }
    let resolved =
        match resolve::purchase_order(&po, integration, &env.store, clients.lookups.as_ref()).await
        {
            Ok(r) => r,
            Err(ResolveError::Unresolved(why)) => {
                return map::park(env, msg, Some(po.number.clone()), why).await;
            }
            Err(e) => return Err(e.into_step("resolving")),
        };
    // Per (order, version) and map run, like invoices (the ledger keeps each content once).
    let post = PostEnvelope::new(
        &integration.name,
        DocumentKind::PurchaseOrder,
        &resolved.source_id,
        Some(resolved.version.timestamp().to_string()),
        true,
        &resolved,
    );
    map::hand_over(env, msg, &post, audit, None).await
}

/// Makes BC's order match the Coupa order, exactly once per content: one ledger entry per
/// (order, content digest), not per timestamp (a change within the same second, Coupa's
/// resolution, is still a change, and the same content seen again is nothing to do).
pub async fn post_bc_order<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    owner: &str,
    integration: &str,
    order: &ResolvedPurchaseOrder,
) -> Result<PostOutcome, StepError> {
    let mut audit = audit_item(
        env.clock.now(),
        integration,
        KIND,
        &order.source_id,
        Step::Post,
        AuditStatus::Posted,
    );
    audit.source_document_number = Some(order.number.clone());
    audit.vendor = Some(format!("{} ({})", order.supplier_name, order.vendor_number));
    audit.amount = Some(order.total());
    audit.currency = Some(order.currency.to_string());
    let subject = Subject {
        key: LedgerKey {
            integration: integration.to_string(),
            kind: KIND.into(),
            source_id: format!("{}-{}", order.source_id, order.content_digest()),
        },
        kind: crate::model::DocumentKind::PurchaseOrder,
        source_id: order.source_id.clone(),
        version: Some(order.version.to_rfc3339()),
        number: Some(order.number.clone()),
        audit,
    };
    let table = tables::purchase_order(integration);
    let mapped_id = env
        .store
        .mapping(&table, &order.number)
        .await
        .map_err(|e| StepError::new("reading the order mapping", e))?;
    // The BC id of the order, for its next version and for invoices against it; forgotten
    // once the order is deleted.
    let links = |w: &Written| match &w.change {
        Change::Removed(_) => vec![Link::Remove {
            table: table.clone(),
            source: order.number.clone(),
        }],
        _ if !w.id.is_empty() => vec![Link::Put {
            table: table.clone(),
            source: order.number.clone(),
            target: w.id.clone(),
        }],
        _ => Vec::new(),
    };
    let job = OrderJob {
        order: order.clone(),
        mapped_id,
    };
    let writer = OrderWriter { bc: bc.clone() };
    write_once(env, &writer, owner, &subject, &job, &links, None).await
}
