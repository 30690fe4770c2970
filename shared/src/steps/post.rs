//! Post step for invoices and credit notes: exactly once into the ERP through the one writer
//! (`steps::write`), with the posted invoice linked back to its source for the paid status.

use std::time::Duration;

pub use super::write::{CLAIM_LEASE, CrashPoint};
use super::write::{Link, Subject, write_once};
use super::{Env, PostMessage, StepError, audit_item};
use crate::config::tables;
use crate::model::{DocumentKind, InvoiceKind};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, Step, Store, Written};
use crate::systems::business_central::{BcClient, InvoiceWriter};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    Posted {
        id: String,
        number: String,
    },
    /// Found posted already (earlier attempt, or a repeat delivery): nothing done.
    AlreadyPosted {
        id: String,
        number: String,
    },
    /// The target refused the document (bad vendor, G/L account, dimension): parked with its
    /// words.
    Parked(String),
    /// Claimed by another worker; retry after its lease.
    Busy {
        owner: String,
        retry_in: Duration,
    },
    /// An earlier create's outcome is unknown and the target may still commit it: look again
    /// later, never create a second one meanwhile.
    Unsettled {
        retry_in: Duration,
    },
}

pub async fn bc_purchase_invoice<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    owner: &str,
    msg: &PostMessage,
) -> Result<PostOutcome, StepError> {
    post_with_crash(env, bc, owner, msg, None).await
}

/// As [`bc_purchase_invoice`], abandoning the attempt at `crash` as a killed worker would
/// (no release, no audit): for the tests that prove a restart neither duplicates nor loses.
pub async fn post_with_crash<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    owner: &str,
    msg: &PostMessage,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let inv = &msg.invoice;
    let subject = Subject {
        // Credit notes share Coupa's invoice ids, so one ledger kind covers both.
        key: LedgerKey {
            integration: msg.integration.clone(),
            kind: "invoice".into(),
            source_id: inv.source_id.clone(),
        },
        kind: DocumentKind::Invoice,
        source_id: inv.source_id.clone(),
        version: Some(inv.version.to_rfc3339()),
        number: Some(inv.vendor_invoice_number.clone()),
        audit: audit_item(
            env.clock.now(),
            &msg.integration,
            super::map::kind_name(inv.kind),
            &inv.source_id,
            Step::Post,
            AuditStatus::Posted,
        )
        .with_resolved(inv),
    };
    // A posted invoice is traced back to its source when it is paid; invoices posted before
    // payments flowed back get the link when they are seen again.
    let table = tables::posted_invoice(&msg.integration);
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
    let writer = InvoiceWriter { bc: bc.clone() };
    write_once(env, &writer, owner, &subject, inv, &links, crash).await
}
