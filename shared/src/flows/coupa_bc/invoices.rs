//! Approved Coupa invoices and credit notes → Business Central purchase invoices and purchase
//! credit memos: resolved (vendor, G/L accounts, dimensions, the order they bill), then written
//! exactly once by the one writer, and linked back to Coupa for the paid status.

use super::CoupaBc;
use super::resolve::{self, ResolveError};
use crate::config::tables;
use crate::model::{DocumentKind, InvoiceKind, ResolvedInvoice};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, SourceDocument, Step, Store, Written};
use crate::steps::map::{self, MapCrash, MapOutcome, kind_name};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::business_central::InvoiceWriter;

/// The ledger kind of invoices and credit notes (credit notes share Coupa's invoice ids).
pub(super) const LEDGER_KIND: &str = "invoice";

pub(super) async fn map_invoice<Q: Queue, S: Store, C: Clock>(
    flow: &CoupaBc,
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
    let resolved =
        match resolve::invoice(&invoice, &flow.cfg, &env.store, Some(&flow.lookups())).await {
            Ok(r) => r,
            Err(ResolveError::Unresolved(why)) => {
                return map::park(env, msg, Some(invoice.number.clone()), why).await;
            }
            Err(e) => return Err(e.into_step("resolving")),
        };
    let post = PostEnvelope::new(
        flow.name(),
        DocumentKind::Invoice,
        &resolved.source_id,
        Some(resolved.version.timestamp().to_string()),
        true,
        &resolved,
    );
    map::hand_over(env, msg, &post, audit, crash).await
}

/// Posts a resolved invoice or credit note exactly once; a posted invoice is linked to its
/// Coupa invoice, for the paid status.
pub(super) async fn post_invoice<Q: Queue, S: Store, C: Clock>(
    flow: &CoupaBc,
    env: &Env<Q, S, C>,
    owner: &str,
    inv: &ResolvedInvoice,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let name = flow.name();
    let subject = Subject {
        // Credit notes share Coupa's invoice ids, so one ledger kind covers both.
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
    };
    // A posted invoice is traced back to its source when it is paid; invoices posted before
    // payments flowed back get the link when they are seen again.
    let table = tables::posted_invoice(name);
    let links = |w: &Written| {
        if inv.kind == InvoiceKind::Invoice && !w.id.is_empty() {
            vec![Link::Put {
                table: table.clone(),
                source: w.id.to_lowercase(),
                target: inv.source_id.clone(),
            }]
        } else {
            Vec::new()
        }
    };
    let writer = InvoiceWriter::new(flow.bc.clone());
    write_once(env, &writer, owner, &subject, inv, &links, crash).await
}
