//! Backing out an expense report that Business Central refused half way (concur.md §2.7.2:
//! on an ERP failure the app "needs to back out all the transactions from the ERP that were
//! from the same document … regardless if some of the document entries were successfully
//! posted", and the report is confirmed as a failure).
//!
//! The pre-check of every value (`documents::check_in_bc`) makes this rare: it is what is left
//! when BC refuses a later document at posting (a vendor blocked meanwhile, a posting period
//! closed) after an earlier one of the same report posted. Then, in this order, each step
//! exactly once and safe to repeat from the start after a crash:
//! 1. the back-out is recorded (`tables::backed_out_report`): every later delivery of the
//!    report comes here instead of posting;
//! 2. each posted BC invoice of the report is reversed by a purchase credit memo with the same
//!    lines and dimensions, applied to it (`invoiceId`) so it is closed, never left open for
//!    payment, and posted, through `write_once` under its own ledger entry; its link to the
//!    Concur document is removed, so a payment poll never sends a payment for it;
//! 3. a draft left by the refused post is deleted;
//! 4. Concur gets an `error` posting confirmation naming what BC refused and what was
//!    reversed, and the report stays parked, visible in `mlc audit`.
//!
//! That submission is never posted again (a retry or redelivery comes back here). A later
//! submission of the report (sent back in Concur, corrected, submitted again) is posted anew
//! under new numbers: BC keeps the reversed invoices under the old ones (`this_submission`).

use super::ConcurBc;
use super::documents::{self, REPORT_DOC_KIND};
use super::resolve::{ReportDoc, ResolvedReport};
use crate::config::tables;
use crate::model::{DocumentKind, InvoiceKind, ResolvedInvoice};
use crate::ports::{AuditStatus, Clock, LedgerEntry, LedgerKey, LedgerState, Queue, Step, Store};
use crate::steps::post::PostOutcome;
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, StepError, audit_item, map, once_key};
use crate::systems::business_central::{DocSet, InvoiceWriter};
use crate::systems::concur::ConfirmDoc;

/// Ledger kind of the credit memo that reverses one BC document of a report.
pub(super) const REVERSAL_KIND: &str = "expense_reversal";

/// The submission of a report: its submit date (Unix milliseconds), the same on every document.
pub(super) fn submission(report: &ResolvedReport) -> i64 {
    report
        .docs
        .first()
        .map(|d| d.invoice.version.timestamp_millis())
        .unwrap_or_default()
}

fn record_key(doc_id: &str, submission: i64) -> String {
    format!("{doc_id}@{submission}")
}

fn number_key(vendor: &str, number: &str) -> String {
    format!("{vendor}\u{1f}{number}")
}

/// Why this submission of the report was backed out, if it was.
pub(super) async fn recorded<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    doc_id: &str,
    submission: i64,
) -> Result<Option<String>, StepError> {
    env.store
        .mapping(
            &tables::backed_out_report(flow.name()),
            &record_key(doc_id, submission),
        )
        .await
        .map_err(|e| StepError::new("reading the backed-out reports", e))
}

/// Records that this submission is backed out, and why, before anything is reversed. Its BC
/// document numbers are recorded as taken first: a crash between the two leaves the numbers
/// taken (a later submission uses new ones), never a record without them.
pub(super) async fn record<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    doc_id: &str,
    report: &ResolvedReport,
    why: &str,
) -> Result<(), StepError> {
    let err = |e| StepError::new("recording the back-out of a report", e);
    for d in &report.docs {
        env.store
            .put_mapping(
                &tables::backed_out_number(flow.name()),
                &number_key(&d.invoice.vendor_number, &d.invoice.vendor_invoice_number),
                doc_id,
            )
            .await
            .map_err(err)?;
    }
    env.store
        .put_mapping(
            &tables::backed_out_report(flow.name()),
            &record_key(doc_id, submission(report)),
            why,
        )
        .await
        .map_err(err)
}

/// The report's BC documents as this submission posts them. A report never backed out: as
/// resolved. A later submission of one that was (sent back in Concur, corrected, submitted
/// again): its own ledger entries (`{docId}@{submission}-{payee}`), and each BC document
/// number the first of `N`, `N-2`, `N-3`… that no backed-out submission took, because BC still
/// holds the reversed invoices under the old ones (the natural-key look-up would find them and
/// call the new submission posted). Stable across redeliveries: only an earlier submission's
/// back-out changes what it reads.
pub(super) async fn this_submission<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    doc_id: &str,
    report: &ResolvedReport,
) -> Result<ResolvedReport, StepError> {
    let err = |e| StepError::new("reading the backed-out reports", e);
    let this = submission(report);
    let prefix = format!("{doc_id}@");
    let earlier = env
        .store
        .list_mappings(Some(&tables::backed_out_report(flow.name())))
        .await
        .map_err(err)?
        .into_iter()
        .filter_map(|(_, key, _)| key.strip_prefix(&prefix)?.parse::<i64>().ok())
        .any(|s| s < this);
    let mut out = report.clone();
    for d in &mut out.docs {
        if earlier {
            d.invoice.source_id = format!("{doc_id}@{this}-{}", d.payee);
        }
        let base = d.invoice.vendor_invoice_number.clone();
        let mut n = 1;
        loop {
            let candidate = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let taken = env
                .store
                .mapping(
                    &tables::backed_out_number(flow.name()),
                    &number_key(&d.invoice.vendor_number, &candidate),
                )
                .await
                .map_err(err)?;
            if taken.is_none() {
                d.invoice.vendor_invoice_number = candidate;
                break;
            }
            n += 1;
        }
    }
    Ok(out)
}

/// The Concur document a report's BC document comes from: `{docId}-{payee}` or, for a later
/// submission, `{docId}@{submission}-{payee}`.
pub(super) fn report_of(source_id: &str, payee: &str) -> Option<String> {
    let doc = source_id.strip_suffix(&format!("-{payee}"))?;
    Some(doc.split('@').next().unwrap_or(doc).to_string())
}

/// Steps 2–4 of the module doc, for a report whose back-out is recorded with `why`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn back_out<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    owner: &str,
    kind: DocumentKind,
    doc_id: &str,
    report_id: &str,
    report: &ResolvedReport,
    why: &str,
) -> Result<PostOutcome, StepError> {
    let mut reversed = Vec::new();
    for d in &report.docs {
        let Some(entry) = ledger_entry(flow, env, d).await? else {
            continue;
        };
        let Some(id) = entry.target_id.clone().filter(|i| !i.is_empty()) else {
            continue;
        };
        // What BC holds, not what the ledger says: a worker may have died between a post and
        // the ledger's record of it.
        let bc_doc =
            flow.bc.document(DocSet::Invoice, &id).await.map_err(|e| {
                StepError::system("reading a Business Central invoice to back out", e)
            })?;
        match bc_doc {
            None => {}
            // The refused one: a draft BC would not post is not left behind.
            Some(draft) if draft.is_draft() => {
                flow.bc
                    .delete_document(
                        DocSet::Invoice,
                        &draft.id,
                        draft.etag.as_deref().unwrap_or("*"),
                    )
                    .await
                    .map_err(|e| {
                        StepError::system("deleting the refused Business Central draft", e)
                    })?;
            }
            Some(posted) => {
                let number = posted.number.clone().unwrap_or_default();
                // The number the invoice was posted under (a retry after a later submission's
                // back-out resolves to another), so the memo's own natural key never moves.
                let vendor_number = posted
                    .vendor_invoice_number
                    .clone()
                    .unwrap_or_else(|| d.invoice.vendor_invoice_number.clone());
                match reverse(flow, env, owner, doc_id, d, &id, &number, &vendor_number).await? {
                    PostOutcome::Posted { number: memo, .. }
                    | PostOutcome::AlreadyPosted { number: memo, .. } => {
                        reversed.push(format!("{number} reversed by credit memo {memo}"));
                    }
                    PostOutcome::Parked(refused) => {
                        // A person must finish it; Concur is not told until BC holds nothing.
                        let reason = format!(
                            "{why}; backing out the posted invoice {number} failed: {refused}"
                        );
                        park(flow, env, kind, doc_id, report_id, &reason).await?;
                        return Ok(PostOutcome::Parked(reason));
                    }
                    waiting => return Ok(waiting),
                }
            }
        }
    }
    let reversed = if reversed.is_empty() {
        String::new()
    } else {
        format!(" Backed out in Business Central: {}.", reversed.join("; "))
    };
    let message = format!("Not posted in Business Central: {why}.{reversed}");
    let confirm = ConfirmDoc {
        doc_type: crate::systems::concur::doc_type(kind)
            .unwrap_or("expense")
            .into(),
        doc_id: doc_id.to_string(),
        number: report_id.to_string(),
        success: false,
        company_id: flow.bc.company_id().to_string(),
        posted: Vec::new(),
        message: message.clone(),
    };
    let version = submission(report);
    match documents::confirm_once(
        flow,
        env,
        owner,
        kind,
        &confirm,
        &format!("{doc_id}-error-{version}"),
    )
    .await?
    {
        PostOutcome::Posted { .. } | PostOutcome::AlreadyPosted { .. } => {}
        waiting => return Ok(waiting),
    }
    let reason = format!("{message} Concur was told it failed.");
    park(flow, env, kind, doc_id, report_id, &reason).await?;
    Ok(PostOutcome::Parked(reason))
}

/// The credit memo that reverses the posted BC invoice `id` (number `number`) of `d`, applied
/// to it, exactly once.
#[allow(clippy::too_many_arguments)]
async fn reverse<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    owner: &str,
    doc_id: &str,
    d: &ReportDoc,
    id: &str,
    number: &str,
    vendor_number: &str,
) -> Result<PostOutcome, StepError> {
    let name = flow.name();
    let memo = ResolvedInvoice {
        kind: InvoiceKind::CreditNote,
        vendor_invoice_number: reversal_number(vendor_number),
        ..d.invoice.clone()
    };
    let mut audit = audit_item(
        env.clock.now(),
        name,
        REVERSAL_KIND,
        &d.invoice.source_id,
        Step::Post,
        AuditStatus::Posted,
    )
    .with_resolved(&memo);
    audit.error = Some(format!("reverses Business Central invoice {number}"));
    let subject = Subject {
        key: LedgerKey {
            integration: name.to_string(),
            kind: REVERSAL_KIND.into(),
            source_id: d.invoice.source_id.clone(),
        },
        kind: DocumentKind::ExpenseReport,
        source_id: doc_id.to_string(),
        version: Some(d.invoice.version.to_rfc3339()),
        number: Some(memo.vendor_invoice_number.clone()),
        audit,
    };
    // The reversed invoice no longer leads back to the report: its closing by the memo is
    // not a payment to confirm.
    let unlink = vec![Link::Remove {
        table: tables::posted_invoice(name),
        source: id.to_lowercase(),
    }];
    let writer = InvoiceWriter::reversing(flow.bc.clone(), id);
    let outcome = write_once(
        env,
        &writer,
        owner,
        &subject,
        &memo,
        &|_| unlink.clone(),
        None,
    )
    .await?;
    if let PostOutcome::Posted { number: m, .. } | PostOutcome::AlreadyPosted { number: m, .. } =
        &outcome
    {
        let mut item = audit_item(
            env.clock.now(),
            name,
            DocumentKind::ExpenseReport.as_str(),
            &d.invoice.source_id,
            Step::Post,
            AuditStatus::BackedOut,
        )
        .with_resolved(&d.invoice)
        .with_target(id, Some(number))
        .with_error(format!("reversed by credit memo {m}"));
        item.source_document_number = Some(vendor_number.to_string());
        crate::steps::claim::write_once(
            env,
            item,
            &once_key(&["backed_out", name, &d.invoice.source_id, id]),
        )
        .await?;
    }
    Ok(outcome)
}

/// The credit memo's vendor document number: the invoice's with `-REV` where BC's 35
/// characters allow, else the invoice's own (credit memo numbers are unique among a vendor's
/// credit memos, not its invoices).
fn reversal_number(invoice_number: &str) -> String {
    const MAX: usize = 35;
    let n = format!("{invoice_number}-REV");
    if n.chars().count() <= MAX {
        n
    } else {
        invoice_number.to_string()
    }
}

/// Whether BC refused to write `d` (its ledger entry is not done), as opposed to a document
/// recorded as written that BC no longer has (a restored company): only a refusal backs the
/// report out.
pub(super) async fn refused_by_bc<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    d: &ReportDoc,
) -> Result<bool, StepError> {
    let entry = ledger_entry(flow, env, d).await?;
    Ok(entry.is_none_or(|e| e.state != LedgerState::Done))
}

/// The ledger entry of one BC document of a report.
async fn ledger_entry<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    d: &ReportDoc,
) -> Result<Option<LedgerEntry>, StepError> {
    let key = LedgerKey {
        integration: flow.name().to_string(),
        kind: REPORT_DOC_KIND.into(),
        source_id: d.invoice.source_id.clone(),
    };
    env.store
        .ledger_entry(&key)
        .await
        .map_err(|e| StepError::new("reading the ledger", e))
}

/// Parked under the Concur document (a retry reads it again, and comes back here).
async fn park<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    kind: DocumentKind,
    doc_id: &str,
    report_id: &str,
    reason: &str,
) -> Result<(), StepError> {
    let msg = IngestMessage {
        integration: flow.name().to_string(),
        kind,
        source_id: doc_id.to_string(),
        version: None,
        via: "retry".into(),
        document: None,
    };
    map::park(env, &msg, Some(report_id.to_string()), reason.to_string()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{report_of, reversal_number};

    #[test]
    fn a_report_document_leads_back_to_its_concur_document_whatever_its_submission() {
        assert_eq!(report_of("abc-EMPL", "EMPL").as_deref(), Some("abc"));
        assert_eq!(report_of("abc@1700-EMPL", "EMPL").as_deref(), Some("abc"));
        assert_eq!(report_of("abc-CBCP", "EMPL"), None);
    }

    #[test]
    fn a_reversal_number_is_the_invoice_number_marked_rev_within_35_characters() {
        assert_eq!(reversal_number("RPT-100"), "RPT-100-REV");
        let long = "R".repeat(33);
        assert_eq!(reversal_number(&long), long);
    }
}
