//! Purchase orders: Coupa → Business Central `purchaseOrders`, so receipts and bills can match.
//!
//! Map: fetch the Coupa order, resolve vendor, G/L accounts and dimensions, queue a sync task.
//! Post: one ledger entry per (order, Coupa version). The BC order is found by the id recorded
//! when it was created, else by the reference every line carries in `description2` (an
//! order's `number` is BC's own, read-only). A new order is created in one deep insert; a
//! changed one is updated line by line with each line's entity tag (BC requires If-Match, and a
//! stale tag fails rather than overwriting someone's change); never created twice.

use std::time::Duration;

use super::claim::{self, Claimed};
use super::map::{Clients, MapOutcome, park};
use super::post::PostOutcome;
use super::resolve::{self, ResolveError};
use super::{Env, IngestMessage, StepError, SyncMessage, SyncTask, audit_item};
use crate::config::{IntegrationConfig, tables};
use crate::model::{OrderState, ResolvedOrderLine, ResolvedPurchaseOrder};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, QueueName, Step, Store};
use crate::systems::business_central::wire::{
    NewPurchaseOrder, NewPurchaseOrderLine, PurchaseOrder, PurchaseOrderLine,
};
use crate::systems::business_central::{BcClient, BcError};
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

/// What the post step did to the BC order, for the audit trail.
enum Change {
    Created,
    Updated,
    Unchanged,
    Removed,
    /// Nothing in BC to do (closed or cancelled before it got there; closed left as is).
    LeftAlone(String),
}

pub async fn post_bc_order<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    owner: &str,
    integration: &str,
    order: &ResolvedPurchaseOrder,
) -> Result<PostOutcome, StepError> {
    // One entry per content, not per timestamp: a change within the same second (Coupa's
    // resolution) is still a change, and the same content seen again is nothing to do.
    let key = LedgerKey {
        integration: integration.to_string(),
        kind: KIND.into(),
        source_id: format!("{}-{}", order.source_id, order.content_digest()),
    };
    let audit = |status| {
        let mut item = audit_item(
            env.clock.now(),
            integration,
            KIND,
            &order.source_id,
            Step::Post,
            status,
        );
        item.source_document_number = Some(order.number.clone());
        item.vendor = Some(format!("{} ({})", order.supplier_name, order.vendor_number));
        item.amount = Some(order.total());
        item.currency = Some(order.currency.to_string());
        item
    };
    let entry = match claim::claim(env, &key, owner).await? {
        Claimed::Acquired(e) => e,
        Claimed::Finished(outcome) => return Ok(outcome),
    };
    let ctx = Attempt {
        key: &key,
        owner,
        entry: &entry,
    };
    match sync(env, bc, integration, order, &ctx).await {
        Ok((change, id, number)) => {
            claim::complete(env, &key, owner, &id, &number).await?;
            let item = match change {
                Change::Created => audit(AuditStatus::Posted),
                Change::Updated => audit(AuditStatus::Updated),
                Change::Unchanged => audit(AuditStatus::AlreadyPosted),
                Change::Removed => audit(AuditStatus::Updated)
                    .with_error("cancelled in Coupa: the Business Central order was deleted"),
                Change::LeftAlone(why) => audit(AuditStatus::AlreadyPosted).with_error(why),
            };
            let item = if id.is_empty() {
                item
            } else {
                item.with_target(&id, Some(&number))
            };
            claim::write(env, item).await?;
            Ok(PostOutcome::Posted { id, number })
        }
        Err(SyncError::Rejected(why)) => {
            claim::release(env, &key, owner).await;
            claim::park_for_retry(
                env,
                integration,
                crate::model::DocumentKind::PurchaseOrder,
                &order.source_id,
                Some(order.version.to_rfc3339()),
                Some(order.number.clone()),
                &why,
            )
            .await?;
            Ok(PostOutcome::Parked(why))
        }
        Err(SyncError::Unsettled(retry_in)) => {
            claim::release(env, &key, owner).await;
            Ok(PostOutcome::Unsettled { retry_in })
        }
        Err(SyncError::Retry(e)) => {
            claim::release(env, &key, owner).await;
            Err(e)
        }
    }
}

/// The claimed attempt: its ledger key, owner and what the ledger knew when it was claimed.
struct Attempt<'a> {
    key: &'a LedgerKey,
    owner: &'a str,
    entry: &'a crate::ports::LedgerEntry,
}

enum SyncError {
    Rejected(String),
    Unsettled(Duration),
    Retry(StepError),
}

fn bc_fail(what: &str, e: BcError) -> SyncError {
    if e.http().is_rejection() && e.http().status() != Some(409) {
        SyncError::Rejected(format!(
            "Business Central refused {what}: {}",
            e.bc_message().unwrap_or_else(|| e.to_string())
        ))
    } else {
        // 409 is a stale entity tag: someone changed the order meanwhile; read again and retry.
        SyncError::Retry(StepError::system(what, e))
    }
}

impl From<StepError> for SyncError {
    fn from(e: StepError) -> Self {
        SyncError::Retry(e)
    }
}

/// The BC order of a Coupa order, if BC has it: by recorded id, by the mapping, or by the
/// reference its lines carry.
async fn find<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    integration: &str,
    order: &ResolvedPurchaseOrder,
    known: Option<&str>,
) -> Result<Option<PurchaseOrder>, SyncError> {
    let mapped = env
        .store
        .mapping(&tables::purchase_order(integration), &order.number)
        .await
        .map_err(|e| StepError::new("reading the order mapping", e))?;
    for id in known.into_iter().chain(mapped.as_deref()) {
        if let Some(o) = bc
            .purchase_order(id)
            .await
            .map_err(|e| bc_fail("reading the order", e))?
        {
            return Ok(Some(o));
        }
    }
    find_by_reference(bc, order).await
}

async fn find_by_reference(
    bc: &BcClient,
    order: &ResolvedPurchaseOrder,
) -> Result<Option<PurchaseOrder>, SyncError> {
    let reference = order.reference();
    let orders = bc
        .purchase_orders_of_vendor(&order.vendor_number)
        .await
        .map_err(|e| bc_fail("looking up the vendor's orders", e))?;
    Ok(orders.into_iter().find(|o| {
        o.purchase_order_lines
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|l| l.description2.as_deref() == Some(reference.as_str()))
    }))
}

async fn sync<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    integration: &str,
    order: &ResolvedPurchaseOrder,
    at: &Attempt<'_>,
) -> Result<(Change, String, String), SyncError> {
    let existing = find(env, bc, integration, order, at.entry.target_id.as_deref()).await?;
    let number_of = |o: &PurchaseOrder| o.number.clone().unwrap_or_default();
    match (order.state, existing) {
        (OrderState::Closed, None) => Ok((
            Change::LeftAlone(
                "closed in Coupa before it reached Business Central: not created".into(),
            ),
            String::new(),
            String::new(),
        )),
        (OrderState::Cancelled, None) => Ok((
            Change::LeftAlone(
                "cancelled in Coupa before it reached Business Central: not created".into(),
            ),
            String::new(),
            String::new(),
        )),
        (OrderState::Closed, Some(o)) => Ok((
            Change::LeftAlone(
                "closed in Coupa: the Business Central order is left as it is".into(),
            ),
            o.id.clone(),
            number_of(&o),
        )),
        (OrderState::Cancelled, Some(o)) => {
            let touched = lines_of(&o).iter().any(|l| {
                l.received_quantity.unwrap_or_default() > rust_decimal::Decimal::ZERO
                    || l.invoiced_quantity.unwrap_or_default() > rust_decimal::Decimal::ZERO
            });
            if touched {
                return Err(SyncError::Rejected(format!(
                    "cancelled in Coupa, but Business Central order {} has receipts or invoices: cancel it there by hand",
                    number_of(&o)
                )));
            }
            bc.delete_purchase_order(&o.id, o.etag.as_deref().unwrap_or("*"))
                .await
                .map_err(|e| bc_fail("deleting the cancelled order", e))?;
            env.store
                .remove_mapping(&tables::purchase_order(integration), &order.number)
                .await
                .map_err(|e| StepError::new("removing the order mapping", e))?;
            Ok((Change::Removed, o.id.clone(), number_of(&o)))
        }
        (OrderState::Active, None) => {
            let created = create(env, bc, integration, order, at).await?;
            add_dimensions(bc, order, &created, true).await?;
            Ok((Change::Created, created.id.clone(), number_of(&created)))
        }
        (OrderState::Active, Some(o)) => {
            record(env, integration, order, &o.id).await?;
            let changed = update_lines(bc, order, &o).await?;
            let fresh = bc
                .purchase_order(&o.id)
                .await
                .map_err(|e| bc_fail("reading the order back", e))?
                .unwrap_or(o);
            add_dimensions(bc, order, &fresh, false).await?;
            let change = if changed {
                Change::Updated
            } else {
                Change::Unchanged
            };
            Ok((change, fresh.id.clone(), number_of(&fresh)))
        }
    }
}

fn lines_of(o: &PurchaseOrder) -> &[PurchaseOrderLine] {
    o.purchase_order_lines.as_deref().unwrap_or_default()
}

fn new_line(order: &ResolvedPurchaseOrder, l: &ResolvedOrderLine) -> NewPurchaseOrderLine {
    NewPurchaseOrderLine {
        sequence: l.line_num as i32 * 10000,
        line_type: "Account".into(),
        line_object_number: l.gl_account.clone(),
        description: l.description.clone(),
        description2: order.reference(),
        quantity: l.quantity,
        direct_unit_cost: l.unit_cost,
    }
}

/// Remembers the BC id of the order (for the next version, and for invoices against it).
async fn record<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    integration: &str,
    order: &ResolvedPurchaseOrder,
    id: &str,
) -> Result<(), StepError> {
    env.store
        .put_mapping(&tables::purchase_order(integration), &order.number, id)
        .await
        .map_err(|e| StepError::new("recording the order mapping", e))
}

async fn create<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    integration: &str,
    order: &ResolvedPurchaseOrder,
    at: &Attempt<'_>,
) -> Result<PurchaseOrder, SyncError> {
    let now = env.clock.now();
    // An earlier create's answer was lost and BC may still commit it: only look, never create.
    if let Some(wait) = super::post::unsettled_wait(at.entry, now) {
        return Err(SyncError::Unsettled(wait));
    }
    let new = NewPurchaseOrder {
        vendor_number: order.vendor_number.clone(),
        order_date: order.order_date,
        currency_code: order.currency.to_string(),
        purchase_order_lines: order.lines.iter().map(|l| new_line(order, l)).collect(),
    };
    let created = match bc.create_purchase_order(&new).await {
        Ok(o) => o,
        Err(e) if e.http().may_have_succeeded() => {
            // The create may have landed with its answer lost: look before creating again.
            match find_by_reference(bc, order).await? {
                Some(o) => o,
                None if e.http().may_still_commit() => {
                    // BC may still commit it (A4: up to 10 minutes): remember, look again later.
                    let wait =
                        super::post::remember_unsettled_create(env, at.key, at.owner, now).await?;
                    return Err(SyncError::Unsettled(wait));
                }
                None => return Err(SyncError::Retry(StepError::system("creating the order", e))),
            }
        }
        Err(e) => return Err(bc_fail("the purchase order", e)),
    };
    record(env, integration, order, &created.id).await?;
    // The deep insert's answer has no lines; read them for their ids.
    Ok(bc
        .purchase_order(&created.id)
        .await
        .map_err(|e| bc_fail("reading the new order", e))?
        .unwrap_or(created))
}

/// Makes BC's lines match: PATCH changed ones (with their entity tag), add new ones, delete
/// removed ones. Returns whether anything changed.
async fn update_lines(
    bc: &BcClient,
    order: &ResolvedPurchaseOrder,
    o: &PurchaseOrder,
) -> Result<bool, SyncError> {
    let have = lines_of(o);
    let mut changed = false;
    for l in &order.lines {
        let want = new_line(order, l);
        match have.iter().find(|h| h.sequence == Some(want.sequence)) {
            None => {
                bc.add_purchase_order_line(&o.id, &want)
                    .await
                    .map_err(|e| bc_fail(&format!("line {}", l.line_num), e))?;
                changed = true;
            }
            Some(h) => {
                let mut patch = serde_json::Map::new();
                if h.line_object_number.as_deref() != Some(want.line_object_number.as_str()) {
                    patch.insert("lineType".into(), want.line_type.clone().into());
                    patch.insert(
                        "lineObjectNumber".into(),
                        want.line_object_number.clone().into(),
                    );
                }
                if h.description.as_deref() != Some(want.description.as_str()) {
                    patch.insert("description".into(), want.description.clone().into());
                }
                if h.description2.as_deref() != Some(want.description2.as_str()) {
                    patch.insert("description2".into(), want.description2.clone().into());
                }
                if h.quantity != Some(want.quantity) {
                    patch.insert(
                        "quantity".into(),
                        crate::systems::wire::decimal_json(want.quantity),
                    );
                }
                if h.direct_unit_cost != Some(want.direct_unit_cost) {
                    patch.insert(
                        "directUnitCost".into(),
                        crate::systems::wire::decimal_json(want.direct_unit_cost),
                    );
                }
                if !patch.is_empty() {
                    bc.update_purchase_order_line(
                        &o.id,
                        &h.id,
                        h.etag.as_deref().unwrap_or("*"),
                        &serde_json::Value::Object(patch),
                    )
                    .await
                    .map_err(|e| bc_fail(&format!("the change to line {}", l.line_num), e))?;
                    changed = true;
                }
            }
        }
    }
    let wanted: Vec<i32> = order
        .lines
        .iter()
        .map(|l| l.line_num as i32 * 10000)
        .collect();
    for h in have {
        if h.sequence.is_some_and(|s| !wanted.contains(&s)) {
            if h.received_quantity.unwrap_or_default() > rust_decimal::Decimal::ZERO {
                return Err(SyncError::Rejected(format!(
                    "line {} was removed in Coupa but has receipts in Business Central",
                    h.sequence.unwrap_or_default() / 10000
                )));
            }
            bc.delete_purchase_order_line(&o.id, &h.id, h.etag.as_deref().unwrap_or("*"))
                .await
                .map_err(|e| bc_fail("deleting a removed line", e))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Gives each line its dimension values; on a fresh order none exist yet, otherwise the
/// missing ones are added and a changed value is changed (with the set line's entity tag).
async fn add_dimensions(
    bc: &BcClient,
    order: &ResolvedPurchaseOrder,
    o: &PurchaseOrder,
    fresh: bool,
) -> Result<(), SyncError> {
    for l in &order.lines {
        if l.dimensions.is_empty() {
            continue;
        }
        let seq = l.line_num as i32 * 10000;
        let Some(bc_line) = lines_of(o).iter().find(|h| h.sequence == Some(seq)) else {
            continue;
        };
        let n = l.line_num;
        let have = if fresh {
            Vec::new()
        } else {
            bc.order_line_dimensions(&bc_line.id)
                .await
                .map_err(|e| bc_fail(&format!("the dimensions of line {n}"), e))?
        };
        for (code, value) in &l.dimensions {
            let what = || format!("dimension {code} value '{value}' on line {n}");
            let current = have.iter().find(|h| {
                h.code
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(code))
            });
            match current {
                None => bc
                    .add_order_line_dimension(&bc_line.id, code, value)
                    .await
                    .map_err(|e| bc_fail(&what(), e))?,
                Some(h)
                    if !h
                        .value_code
                        .as_deref()
                        .is_some_and(|v| v.eq_ignore_ascii_case(value)) =>
                {
                    let Some(dim_id) = h.id.as_deref() else {
                        return Err(SyncError::Retry(StepError::retry(format!(
                            "BC dimension set line {code} on line {n} has no id"
                        ))));
                    };
                    bc.update_order_line_dimension(
                        &bc_line.id,
                        dim_id,
                        h.etag.as_deref().unwrap_or("*"),
                        value,
                    )
                    .await
                    .map_err(|e| bc_fail(&what(), e))?
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}
