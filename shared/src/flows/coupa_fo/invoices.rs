//! Approved Coupa invoices and credit notes → F&O pending vendor invoices in the legal entity
//! the integration's rule picks: resolved (vendor account, main accounts, dimensions), rendered
//! for F&O (header reference, ledger display strings), then written exactly once by the one
//! writer: the header, then its lines.

use serde::{Deserialize, Serialize};

use super::CoupaFo;
use super::resolve::{self, ResolveError};
use crate::config::tables;
use crate::model::{DocumentKind, InvoiceKind, ResolvedInvoice};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, SourceDocument, Step, Store};
use crate::steps::map::{self, MapCrash, MapOutcome, kind_name};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::dynamics_fo::{FoInvoice, InvoiceWriter};

/// The ledger kind of invoices and credit notes (credit notes share Coupa's invoice ids).
pub(super) const LEDGER_KIND: &str = "invoice";

/// The prefix of header references (`CPA-<Coupa id>`): says where the invoice came from.
pub(super) const REFERENCE_PREFIX: &str = "CPA";

/// What the map step hands to the post step: the invoice as F&O takes it, and as resolved
/// (for the audit trail).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Posting {
    pub resolved: ResolvedInvoice,
    pub fo: FoInvoice,
}

pub(super) async fn map_invoice<Q: Queue, S: Store, C: Clock>(
    flow: &CoupaFo,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    let invoice = match map::fetch(env, &flow.coupa, msg, crash).await? {
        Ok(SourceDocument::Invoice(i)) => i,
        Ok(_) => unreachable!("Coupa's invoice fetch returns invoices"),
        Err(outcome) => return Ok(outcome),
    };
    let audit = audit_item(
        env.clock.now(),
        flow.name(),
        kind_name(invoice.kind),
        &msg.source_id,
        Step::Map,
        AuditStatus::Mapped,
    )
    .with_invoice(&invoice);
    if !invoice.readiness.is_ready() {
        let why = format!("status is '{}', not approved: not posted", invoice.status);
        return map::skip(env, msg, audit, why).await;
    }
    let unresolved = |e: ResolveError| match e {
        ResolveError::Unresolved(why) => Ok(why),
        e => Err(StepError::new("resolving", e)),
    };
    let park = |why: String| map::park(env, msg, Some(invoice.number.clone()), why);
    let legal_entity =
        match resolve::legal_entity(&invoice, &flow.cfg, flow.default_legal_entity.as_deref()) {
            Ok(le) => le,
            Err(e) => return park(unresolved(e)?).await,
        };
    let resolved = match resolve::invoice(&invoice, &flow.cfg, &env.store).await {
        Ok(r) => r,
        Err(e) => return park(unresolved(e)?).await,
    };
    let fo =
        match FoInvoice::from_resolved(&resolved, REFERENCE_PREFIX, &legal_entity, &flow.format) {
            Ok(fo) => fo,
            Err(why) => return park(why).await,
        };
    let (source_id, version) = (
        resolved.source_id.clone(),
        resolved.version.timestamp().to_string(),
    );
    let post = PostEnvelope::new(
        flow.name(),
        DocumentKind::Invoice,
        &source_id,
        Some(version),
        true,
        &Posting { resolved, fo },
    );
    map::hand_over(env, msg, &post, audit, crash).await
}

/// What the writers (per record and bulk) write an invoice under: its ledger key and audit
/// identity.
pub(super) fn post_subject<Q: Queue, S: Store, C: Clock>(
    name: &str,
    env: &Env<Q, S, C>,
    inv: &ResolvedInvoice,
) -> Subject {
    Subject {
        key: LedgerKey {
            integration: name.to_string(),
            kind: LEDGER_KIND.into(),
            source_id: inv.source_id.clone(),
        },
        kind: DocumentKind::Invoice,
        source_id: inv.source_id.clone(),
        version: Some(inv.version.to_rfc3339()),
        number: Some(inv.vendor_invoice_number.clone()),
        audit: audit_item(
            env.clock.now(),
            name,
            kind_name(inv.kind),
            &inv.source_id,
            Step::Post,
            AuditStatus::Posted,
        )
        .with_resolved(inv),
    }
}

/// Writes a resolved invoice into its legal entity exactly once.
pub(super) async fn post_invoice<Q: Queue, S: Store, C: Clock>(
    flow: &CoupaFo,
    env: &Env<Q, S, C>,
    owner: &str,
    p: &Posting,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let name = flow.name();
    let inv = &p.resolved;
    let subject = post_subject(name, env, inv);
    // One writer per legal entity: the ledger records which one the invoice went to.
    // A written invoice is traced back to its Coupa invoice when F&O pays it (the vendor
    // transaction names it by legal entity, invoice account and invoice number).
    let table = tables::posted_invoice(name);
    let key = super::payments::invoice_key(
        &p.fo.legal_entity,
        &p.fo.vendor_account,
        &p.fo.invoice_number,
    );
    let links = |w: &crate::ports::Written| {
        if inv.kind == InvoiceKind::Invoice && !w.id.is_empty() {
            vec![Link::Put {
                table: table.clone(),
                source: key.clone(),
                target: inv.source_id.clone(),
            }]
        } else {
            Vec::new()
        }
    };
    let writer = InvoiceWriter::new(flow.fo.clone(), &p.fo.legal_entity);
    write_once(env, &writer, owner, &subject, &p.fo, &links, crash).await
}
