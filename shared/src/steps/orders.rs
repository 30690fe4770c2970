//! Purchase orders: Coupa → Business Central `purchaseOrders`, so receipts and bills can match.
//!
//! Map: fetch the Coupa order, resolve vendor, G/L accounts and dimensions, queue a sync task.
//! Post: one ledger entry per (order, Coupa version). The BC order is found by the id recorded
//! when it was created, else by the reference every line carries in `description2` (an
//! order's `number` is BC's own, read-only). A new order is created in one deep insert; a
//! changed one is updated line by line with each line's entity tag (BC requires If-Match, and a
//! stale tag fails rather than overwriting someone's change); never created twice.

use super::claim;
use super::map::{Clients, MapOutcome, park};
use super::post::PostOutcome;
use super::resolve::{self, ResolveError};
use super::write::{Link, Subject, write_once};
use super::{Env, IngestMessage, StepError, SyncMessage, SyncTask, audit_item};
use crate::config::{IntegrationConfig, tables};
use crate::model::ResolvedPurchaseOrder;
use crate::ports::{AuditStatus, Change, Clock, LedgerKey, Queue, QueueName, Step, Store, Written};
use crate::systems::business_central::{BcClient, OrderJob, OrderWriter};
use crate::systems::coupa;

const KIND: &str = "purchase_order";

pub async fn map_coupa_order<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    clients: &Clients<'_>,
    integration: &IntegrationConfig,
    msg: &IngestMessage,
) -> Result<MapOutcome, StepError> {
    let Ok(id) = msg.source_id.parse::<i64>() else {
        let why = format!("'{}' is not a Coupa purchase order id", msg.source_id);
        return park(env, msg, None, why).await;
    };
    let wire = match clients.coupa.purchase_order(id).await {
        Ok(w) => w,
        Err(e @ coupa::CoupaError::Malformed { .. }) => {
            return park(env, msg, None, e.to_string()).await;
        }
        Err(e) => return Err(StepError::system(&format!("fetching Coupa PO {id}"), e)),
    };
    let po = match coupa::purchase_order_from_wire(&wire) {
        Ok(po) => po,
        Err(e) => return park(env, msg, wire.po_number.clone(), e.to_string()).await,
    };
    let audit = |status| {
        let mut item = audit_item(
            env.clock.now(),
            &integration.name,
            KIND,
            &msg.source_id,
            Step::Map,
            status,
        );
        item.source_document_number = Some(po.number.clone());
        item.vendor = Some(po.supplier.name.clone());
        item.currency = Some(po.currency.to_string());
        item
    };
    if !matches!(po.status.as_str(), "issued" | "closed" | "cancelled") {
        let why = format!(
            "status is '{}': only issued, closed and cancelled orders are synced",
            po.status
        );
        claim::unpark(env, msg).await?;
        claim::write(env, audit(AuditStatus::Rejected).with_error(why.clone())).await?;
        return Ok(MapOutcome::Skipped(why));
    }
    let resolved =
        match resolve::purchase_order(&po, integration, &env.store, clients.lookups.as_ref()).await
        {
            Ok(r) => r,
            Err(ResolveError::Unresolved(why)) => {
                return park(env, msg, Some(po.number.clone()), why).await;
            }
            Err(e) => return Err(e.into_step("resolving")),
        };
    let task = SyncMessage {
        integration: integration.name.clone(),
        task: SyncTask::PurchaseOrder { order: resolved },
    };
    env.queue
        .send(QueueName::Post, vec![task.to_outgoing()])
        .await
        .map_err(|e| StepError::new("enqueueing the order", e))?;
    claim::unpark(env, msg).await?;
    claim::write(env, audit(AuditStatus::Mapped)).await?;
    Ok(MapOutcome::Mapped)
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
