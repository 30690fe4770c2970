//! Coupa purchase orders → F&O purchase orders (`sync.purchase_orders`), in the legal entity
//! the integration's rule names: resolved (vendor account, main account and dimensions per
//! line as a ledger display string), then written through the one writer. A changed order is
//! a new write (the ledger key carries a digest of its content) that updates F&O's order line
//! by line with each line's entity tag; a repeat of the same content is not written again.

use sha2::Digest as _;

use super::CoupaFo;
use super::resolve::{self, MAX_DESCRIPTION, ResolveError};
use crate::digest::short_hex;
use crate::model::DocumentKind;
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, SourceDocument, Step, Store};
use crate::steps::map::{self, MapOutcome};
use crate::steps::post::PostOutcome;
use crate::steps::write::{Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::dynamics_fo::{FoOrder, FoOrderLine, OrderWriter};

pub(super) const KIND: &str = "purchase_order";

/// The ledger's source id of one order write: the order and a digest of its content.
fn ledger_source(o: &FoOrder) -> String {
    let body = serde_json::to_vec(o).expect("an order serializes");
    format!(
        "{}-{}",
        o.source_id,
        short_hex(sha2::Sha256::digest(&body).as_slice(), 16)
    )
}

pub(super) async fn map_order<Q: Queue, S: Store, C: Clock>(
    flow: &CoupaFo,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
) -> Result<MapOutcome, StepError> {
    let po = match map::fetch(env, &flow.coupa, msg, None).await? {
        Ok(SourceDocument::PurchaseOrder(p)) => p,
        Ok(_) => unreachable!("Coupa's order fetch returns orders"),
        Err(outcome) => return Ok(outcome),
    };
    let shown = Some(po.number.clone());
    let park = |why: String| map::park(env, msg, shown.clone(), why);
    let unresolved = |e: ResolveError| match e {
        ResolveError::Unresolved(why) => Ok(why),
        e => Err(StepError::new("resolving", e)),
    };
    let active = match po.status.as_str() {
        "issued" => true,
        "closed" | "cancelled" => false,
        other => {
            return park(format!(
                "purchase order status '{other}' is not synced (only issued, closed and cancelled)"
            ))
            .await;
        }
    };
    let le = match resolve::legal_entity_of(
        po.lines.first().map(|l| &l.account),
        &flow.cfg,
        flow.default_legal_entity.as_deref(),
    ) {
        Ok(le) => le,
        Err(e) => return park(unresolved(e)?).await,
    };
    let vendor = match resolve::vendor_of(&po.supplier, &flow.cfg, &env.store).await {
        Ok(v) => v,
        Err(e) => return park(unresolved(e)?).await,
    };
    let mut lines = Vec::with_capacity(po.lines.len());
    for l in &po.lines {
        let n = l.line_num;
        let coded = async {
            let main = resolve::main_account_of(&l.account, &flow.cfg, &env.store, n).await?;
            let dims = resolve::dimensions_of(&l.account, &flow.cfg, &env.store, n).await?;
            Ok::<_, ResolveError>((main, dims))
        };
        let (main, dims) = match coded.await {
            Ok(c) => c,
            Err(e) => return park(unresolved(e)?).await,
        };
        let display = match flow.format.ledger_display(&main, &dims) {
            Ok(d) => d,
            Err(why) => return park(format!("line {n}: {why}")).await,
        };
        lines.push(FoOrderLine {
            number: n as i64,
            description: l.description.chars().take(MAX_DESCRIPTION).collect(),
            main_account_display: display,
            quantity: l.quantity,
            price: l.unit_price,
        });
    }
    let order = FoOrder {
        source_id: po.source_id.clone(),
        legal_entity: le,
        reference: po.number.clone(),
        vendor_account: vendor.clone(),
        currency: po.currency.to_string(),
        active,
        delimiter: flow.format.delimiter,
        lines,
    };
    let mut audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Map,
        AuditStatus::Mapped,
    );
    audit.source_document_number = shown.clone();
    audit.vendor = Some(format!("{} ({vendor})", po.supplier.name));
    let post = PostEnvelope::new(
        flow.name(),
        DocumentKind::PurchaseOrder,
        &ledger_source(&order),
        None,
        false,
        &order,
    );
    map::hand_over(env, msg, &post, audit, None).await
}

pub(super) async fn post_order<Q: Queue, S: Store, C: Clock>(
    flow: &CoupaFo,
    env: &Env<Q, S, C>,
    owner: &str,
    o: &FoOrder,
) -> Result<PostOutcome, StepError> {
    let name = flow.name();
    let mut audit = audit_item(
        env.clock.now(),
        name,
        KIND,
        &o.source_id,
        Step::Post,
        AuditStatus::Posted,
    );
    audit.source_document_number = Some(o.reference.clone());
    let subject = Subject {
        key: LedgerKey {
            integration: name.to_string(),
            kind: KIND.into(),
            source_id: ledger_source(o),
        },
        kind: DocumentKind::PurchaseOrder,
        source_id: o.source_id.clone(),
        version: None,
        number: Some(o.reference.clone()),
        audit,
    };
    let writer = OrderWriter::new(flow.fo.clone(), &o.legal_entity);
    write_once(env, &writer, owner, &subject, o, &|_| Vec::new(), None).await
}
