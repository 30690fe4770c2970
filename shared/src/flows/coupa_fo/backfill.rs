//! `mlc backfill --integration <coupa-fo>`: a first load of many approved Coupa invoices into
//! F&O as Data Management packages (d365-fo.md B6), one legal entity per package, exactly once
//! under the same ledger as the per-record writer.
//!
//! The Coupa invoices changed since `--since` (else `start_from`) are listed and read as the
//! map step reads them; what cannot be mapped is parked as the map step parks it; the rest is
//! written per legal entity by the bulk writer (`steps::bulk`). Credit notes go the
//! per-record way (the normal poll): F&O takes them on the same entities, but the backfill is
//! meant for the first load of invoices.
//!
//! The watermarks are left alone: the next poll lists the same invoices again, and the ledger
//! says each is done (one look-up per invoice to confirm it is still in F&O, no write). Moving
//! the watermark here would lose an invoice the backfill left for later.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use super::CoupaFo;
use super::invoices::{LEDGER_KIND, Posting, REFERENCE_PREFIX, post_subject};
use super::resolve::{self, ResolveError};
use crate::model::{DocumentKind, InvoiceKind};
use crate::ports::{Clock, Queue, Source, SourceDocument, Store, Window};
use crate::steps::bulk::{BackfillOptions, BackfillReport, BulkEvent, BulkItem, write_bulk};
use crate::steps::map;
use crate::steps::write::Link;
use crate::steps::{Env, IngestMessage, StepError};
use crate::systems::coupa;
use crate::systems::dynamics_fo::{FoInvoice, InvoiceWriter};

pub(super) async fn backfill<Q: Queue, S: Store, C: Clock>(
    flow: &CoupaFo,
    env: &Env<Q, S, C>,
    owner: &str,
    opts: &BackfillOptions,
    progress: &(dyn Fn(BulkEvent) + Send + Sync),
) -> Result<BackfillReport, StepError> {
    let name = flow.name();
    let lower = opts
        .since
        .or(flow.cfg.start_from)
        .unwrap_or_else(|| env.clock.now() - TimeDelta::days(30));
    // Fixed when it starts (a poll loses nothing): what changes later is the poll's.
    let window = Window {
        lower,
        upper: env.clock.now() + TimeDelta::seconds(1),
    };
    let mut refs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = flow
            .coupa
            .page(&coupa::INVOICES, Some(window), cursor.as_deref())
            .await
            .map_err(|e| StepError::system("listing Coupa invoices", e))?;
        refs.extend(page.refs);
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let mut report = BackfillReport {
        listed: refs.len(),
        ..BackfillReport::default()
    };
    let mut by_entity: BTreeMap<String, Vec<BulkItem<FoInvoice>>> = BTreeMap::new();
    for r in &refs {
        let doc = flow
            .coupa
            .fetch(DocumentKind::Invoice, &r.id)
            .await
            .map_err(|e| StepError::system(&format!("reading Coupa invoice {}", r.id), e))?;
        let invoice = match doc {
            SourceDocument::Invoice(i) => i,
            _ => {
                report.not_ready += 1;
                continue;
            }
        };
        if !invoice.readiness.is_ready() {
            report.not_ready += 1;
            continue;
        }
        if invoice.kind != InvoiceKind::Invoice {
            report.left_to_poll += 1;
            continue;
        }
        let msg = IngestMessage {
            integration: name.to_string(),
            kind: DocumentKind::Invoice,
            source_id: r.id.clone(),
            version: r.version.map(|v| v.timestamp().to_string()),
            via: "backfill".into(),
            // Parking keeps this message for a retry, which must read Coupa again.
            document: None,
        };
        let unresolved = |e: ResolveError| match e {
            ResolveError::Unresolved(why) => Ok(why),
            e => Err(StepError::new("resolving", e)),
        };
        let prepared = match resolve::legal_entity(
            &invoice,
            &flow.cfg,
            flow.default_legal_entity.as_deref(),
        ) {
            Err(e) => Err(unresolved(e)?),
            Ok(le) => match resolve::invoice(&invoice, &flow.cfg, &env.store).await {
                Err(e) => Err(unresolved(e)?),
                Ok(resolved) => {
                    FoInvoice::from_resolved(&resolved, REFERENCE_PREFIX, &le, &flow.format)
                        .map(|fo| Posting { resolved, fo })
                }
            },
        };
        let p = match prepared {
            Ok(p) => p,
            Err(why) => {
                if !opts.bulk.dry_run {
                    map::park(env, &msg, Some(invoice.number.clone()), why).await?;
                }
                report.unmapped += 1;
                continue;
            }
        };
        let subject = post_subject(name, env, &p.resolved);
        debug_assert_eq!(subject.key.kind, LEDGER_KIND);
        // As `post_invoice` records it: the way back from a paid F&O invoice to Coupa.
        let links = vec![Link::Put {
            table: crate::config::tables::posted_invoice(name),
            source: super::payments::invoice_key(
                &p.fo.legal_entity,
                &p.fo.vendor_account,
                &p.fo.invoice_number,
            ),
            target: p.resolved.source_id.clone(),
        }];
        by_entity
            .entry(p.fo.legal_entity.clone())
            .or_default()
            .push(BulkItem {
                subject,
                doc: p.fo,
                links,
            });
    }
    progress(BulkEvent::Prepared {
        listed: report.listed,
        ready: by_entity.values().map(Vec::len).sum(),
        unmapped: report.unmapped,
    });
    for (le, items) in by_entity {
        let writer = InvoiceWriter::new(flow.fo.clone(), &le);
        progress(BulkEvent::Target {
            target: le.to_uppercase(),
            documents: items.len(),
        });
        let r = write_bulk(env, &writer, owner, items, &opts.bulk, progress).await?;
        report.targets.push((le.to_uppercase(), r));
    }
    Ok(report)
}
