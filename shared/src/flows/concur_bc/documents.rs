//! Invoice payment requests and expense reports: map (fetch by FIS id → acknowledge →
//! resolve, or park), then post (each BC purchase invoice exactly once, then the posting
//! confirmation exactly once, each through `write_once` under its own ledger entry).
//!
//! The acknowledgement is made in the map step, at once after the read (§2.3: "Acknowledge
//! immediately after GET"), and answered before anything reaches the post step. A recalled
//! document (102) is skipped, never posted.

use serde::{Deserialize, Serialize};

use super::ConcurBc;
use super::backout;
use super::resolve::{self, ResolveError, ResolvedReport};
use crate::config::tables;
use crate::model::{DocumentKind, ResolvedInvoice};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, SourceDocument, Step, Store, Written};
use crate::steps::map::{self, MapCrash, MapOutcome};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::business_central::{DocSet, InvoiceWriter};
use crate::systems::concur::{AckOutcome, ConfirmDoc, PostedDoc, PostingConfirmationWriter};

/// Ledger kind of the BC purchase invoice of an invoice payment request.
pub(super) const INVOICE_KIND: &str = "invoice";
/// Ledger kind of each BC purchase invoice of an expense report (`{docId}-{payee}`).
pub(super) const REPORT_DOC_KIND: &str = "expense_document";
/// Ledger kind of a posting confirmation (by FIS id; a failure one by `{docId}-error`).
pub(super) const CONFIRM_KIND: &str = "posting_confirmation";

/// What the post step does with a document.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub(super) enum Task {
    Invoice {
        invoice: ResolvedInvoice,
    },
    Report {
        doc_id: String,
        report_id: String,
        report: ResolvedReport,
    },
    /// Tell Concur it cannot be posted, and why (`confirm_unmappable`).
    Fail {
        doc_type: String,
        doc_id: String,
        number: String,
        reason: String,
        /// The submission that failed (Unix milliseconds of its submit date): a document sent
        /// back, fixed and submitted again may fail again, and is told again. Doubt: whether
        /// FIS keeps the document id across a resubmission is not documented.
        #[serde(default)]
        version: i64,
    },
}

fn doc_type(kind: DocumentKind) -> &'static str {
    crate::systems::concur::doc_type(kind).unwrap_or("invoice")
}

pub(super) async fn map_document<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    let doc = match map::fetch(env, &flow.concur, msg, crash).await? {
        Ok(d) => d,
        Err(outcome) => return Ok(outcome),
    };
    let kind_name = msg.kind.as_str();
    let (number, readiness, audit) = match &doc {
        SourceDocument::Invoice(i) => (
            i.number.clone(),
            i.readiness.clone(),
            audit_item(
                env.clock.now(),
                flow.name(),
                kind_name,
                &msg.source_id,
                Step::Map,
                AuditStatus::Mapped,
            )
            .with_invoice(i),
        ),
        SourceDocument::ExpenseReport(r) => {
            let mut a = audit_item(
                env.clock.now(),
                flow.name(),
                kind_name,
                &msg.source_id,
                Step::Map,
                AuditStatus::Mapped,
            );
            a.source_document_number = Some(r.report_id.clone());
            a.vendor = Some(format!(
                "{} ({})",
                r.employee.name,
                r.employee.number.as_deref().unwrap_or("")
            ));
            a.amount = Some(r.total.amount);
            a.currency = Some(r.total.currency.to_string());
            (r.report_id.clone(), r.readiness.clone(), a)
        }
        _ => unreachable!("Concur's fetch returns invoices and expense reports"),
    };
    if let crate::model::Readiness::NotReady(why) = readiness {
        return map::skip(env, msg, audit, format!("{why}: not posted")).await;
    }
    // At once after the read (§2.3); 101 (acknowledged before) is success.
    match flow
        .concur
        .take(msg.kind, &msg.source_id)
        .await
        .map_err(|e| StepError::system("acknowledging the Concur document", e))?
    {
        AckOutcome::Taken => {}
        AckOutcome::Recalled => {
            let why = "recalled in Concur (code 102): not posted".to_string();
            return map::skip(env, msg, audit, why).await;
        }
    }
    let resolved = match &doc {
        SourceDocument::Invoice(i) => resolve::invoice(i, &flow.cfg, &env.store)
            .await
            .map(|invoice| Task::Invoice { invoice }),
        SourceDocument::ExpenseReport(r) => {
            resolve::expense(r, &flow.cfg, &flow.card_vendors, &env.store)
                .await
                .map(|report| Task::Report {
                    doc_id: r.source_id.clone(),
                    report_id: r.report_id.clone(),
                    report,
                })
        }
        _ => unreachable!(),
    };
    // All or nothing (§2.7.2): every BC document of the report, and the request's, is checked
    // against BC before any is posted, so a value BC lacks never leaves a report half-posted.
    let resolved = match resolved {
        Ok(t) if flow.cfg.sync.check_master_data => match check_in_bc(flow, &t).await? {
            None => Ok(t),
            Some(why) => Err(ResolveError::Unresolved(why)),
        },
        other => other,
    };
    let task = match resolved {
        Ok(t) => t,
        Err(ResolveError::Unresolved(why)) if flow.confirm_unmappable => Task::Fail {
            doc_type: doc_type(msg.kind).into(),
            doc_id: msg.source_id.clone(),
            number: number.clone(),
            reason: why,
            version: match &doc {
                SourceDocument::Invoice(i) => i.version.timestamp_millis(),
                SourceDocument::ExpenseReport(r) => {
                    r.version.map(|v| v.timestamp_millis()).unwrap_or_default()
                }
                _ => 0,
            },
        },
        Err(ResolveError::Unresolved(why)) => {
            return map::park(env, msg, Some(number), why).await;
        }
        Err(e) => return Err(StepError::new("resolving", e)),
    };
    let post = PostEnvelope::new(flow.name(), msg.kind, &msg.source_id, None, true, &task);
    map::hand_over(env, msg, &post, audit, crash).await
}

pub(super) async fn post_document<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    owner: &str,
    msg: &PostEnvelope,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let task: Task = msg.payload().map_err(StepError::Poison)?;
    let t = doc_type(msg.kind);
    match task {
        Task::Invoice { invoice } => {
            let outcome = post_bc(
                flow,
                env,
                owner,
                INVOICE_KIND,
                DocumentKind::Invoice,
                &invoice.source_id,
                &invoice,
                crash,
            )
            .await?;
            let (id, number) = match &outcome {
                PostOutcome::Posted { id, number } | PostOutcome::AlreadyPosted { id, number } => {
                    (id.clone(), number.clone())
                }
                _ => return Ok(outcome),
            };
            let posted = vec![posted_doc(flow, &id, &number, &invoice).await?];
            let confirm = ConfirmDoc {
                doc_type: t.into(),
                doc_id: invoice.source_id.clone(),
                number: invoice.vendor_invoice_number.clone(),
                success: true,
                company_id: flow.bc.company_id().to_string(),
                posted,
                message: format!("Posted in Business Central as {number}."),
            };
            confirmed(flow, env, owner, msg.kind, &confirm, outcome).await
        }
        Task::Report {
            doc_id,
            report_id,
            report,
        } => {
            // This submission backed out before (a redelivery, a retry): finish that, never
            // post it again.
            let report = backout::this_submission(flow, env, &doc_id, &report).await?;
            let this = backout::submission(&report);
            if let Some(why) = backout::recorded(flow, env, &doc_id, this).await? {
                return backout::back_out(
                    flow, env, owner, msg.kind, &doc_id, &report_id, &report, &why,
                )
                .await;
            }
            let mut posted = Vec::new();
            let mut all_done_before = true;
            for d in &report.docs {
                let outcome = post_bc(
                    flow,
                    env,
                    owner,
                    REPORT_DOC_KIND,
                    DocumentKind::ExpenseReport,
                    &doc_id,
                    &d.invoice,
                    crash,
                )
                .await?;
                match &outcome {
                    PostOutcome::Posted { id, number } => {
                        all_done_before = false;
                        posted.push(posted_doc(flow, id, number, &d.invoice).await?);
                    }
                    PostOutcome::AlreadyPosted { id, number } => {
                        posted.push(posted_doc(flow, id, number, &d.invoice).await?);
                    }
                    // All or nothing (§2.7.2): BC refused this one after an earlier one posted
                    // (the pre-check found every value, so BC changed meanwhile or refused the
                    // post itself): the report is backed out and confirmed as failed.
                    PostOutcome::Parked(refused)
                        if !posted.is_empty() && backout::refused_by_bc(flow, env, d).await? =>
                    {
                        let why = format!("the {} document was refused: {refused}", d.payee);
                        backout::record(flow, env, &doc_id, &report, &why).await?;
                        return backout::back_out(
                            flow, env, owner, msg.kind, &doc_id, &report_id, &report, &why,
                        )
                        .await;
                    }
                    // Nothing posted: parked as it is, to be retried once BC is put right.
                    _ => return Ok(outcome),
                }
            }
            let numbers = posted
                .iter()
                .map(|p| p.number.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut message = format!("Posted in Business Central as {numbers}.");
            if !report.left_out.is_empty() {
                message.push_str(&format!(" Not posted: {}", report.left_out.join("; ")));
            }
            let confirm = ConfirmDoc {
                doc_type: t.into(),
                doc_id: doc_id.clone(),
                number: report_id,
                success: true,
                company_id: flow.bc.company_id().to_string(),
                posted,
                message,
            };
            let outcome = if all_done_before {
                PostOutcome::AlreadyPosted {
                    id: doc_id,
                    number: numbers.clone(),
                }
            } else {
                PostOutcome::Posted {
                    id: doc_id,
                    number: numbers.clone(),
                }
            };
            confirmed(flow, env, owner, msg.kind, &confirm, outcome).await
        }
        Task::Fail {
            doc_type,
            doc_id,
            number,
            reason,
            version,
        } => {
            let confirm = ConfirmDoc {
                doc_type,
                doc_id,
                number,
                success: false,
                company_id: flow.bc.company_id().to_string(),
                posted: Vec::new(),
                message: format!("Not posted in Business Central: {reason}"),
            };
            confirm_once(
                flow,
                env,
                owner,
                msg.kind,
                &confirm,
                &format!("{}-error-{version}", confirm.doc_id),
            )
            .await
        }
    }
}

/// How old a snapshot of BC's accounts and dimensions may be; a problem found in one older
/// than [`RECHECK_AFTER`] is looked for once more in a fresh one.
const MASTER_DATA_TTL: std::time::Duration = std::time::Duration::from_secs(300);
const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// Every G/L account and dimension value of the task's BC documents exists in BC, and (for a
/// report of several documents) every vendor: else one reason naming them all.
async fn check_in_bc(flow: &ConcurBc, task: &Task) -> Result<Option<String>, StepError> {
    let docs: Vec<(&str, &ResolvedInvoice)> = match task {
        Task::Invoice { invoice } => vec![("", invoice)],
        Task::Report { report, .. } => report
            .docs
            .iter()
            .map(|d| (d.payee.as_str(), &d.invoice))
            .collect(),
        Task::Fail { .. } => return Ok(None),
    };
    let bc_err = |e: crate::systems::business_central::BcError| {
        StepError::system("reading Business Central's master data", e)
    };
    let problems = |md: &crate::systems::business_central::MasterData| {
        let mut out = Vec::new();
        for (payee, inv) in &docs {
            let of = if payee.is_empty() {
                String::new()
            } else {
                format!("{payee} document, ")
            };
            for (i, l) in inv.lines.iter().enumerate() {
                if let Err(e) = md.check_account(&l.gl_account) {
                    out.push(format!("{of}line {}: {e}", i + 1));
                }
                for (code, value) in &l.dimensions {
                    if let Err(e) = md.check_dimension(code, value) {
                        out.push(format!("{of}line {}: {e}", i + 1));
                    }
                }
            }
        }
        out
    };
    let mut found = problems(
        &*flow
            .bc
            .master_data_cached(MASTER_DATA_TTL)
            .await
            .map_err(bc_err)?,
    );
    if !found.is_empty() {
        found = problems(
            &*flow
                .bc
                .master_data_cached(RECHECK_AFTER)
                .await
                .map_err(bc_err)?,
        );
    }
    if docs.len() > 1 {
        for (payee, inv) in &docs {
            match flow
                .bc
                .vendor_by_number(&inv.vendor_number)
                .await
                .map_err(bc_err)?
            {
                None => found.push(format!(
                    "{payee} document: vendor '{}' does not exist in Business Central",
                    inv.vendor_number
                )),
                // BC refuses to post a document of a vendor blocked "All" (A6.1); "Payment"
                // blocks payments only.
                Some(v) if v.blocked.as_deref() == Some("All") => found.push(format!(
                    "{payee} document: vendor '{}' is blocked (All) in Business Central",
                    inv.vendor_number
                )),
                Some(_) => {}
            }
        }
    }
    Ok((!found.is_empty()).then(|| found.join("; ")))
}

/// The BC posted document's number and posting date (read back: BC decides the posting date).
async fn posted_doc(
    flow: &ConcurBc,
    id: &str,
    number: &str,
    inv: &ResolvedInvoice,
) -> Result<PostedDoc, StepError> {
    let found = flow
        .bc
        .document(DocSet::Invoice, id)
        .await
        .map_err(|e| StepError::system("reading the posted Business Central invoice", e))?;
    let posting_date = found
        .and_then(|d| d.posting_date)
        .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        // Doubt: BC always returns postingDate; if not, the document date is what was sent.
        .unwrap_or(inv.invoice_date);
    Ok(PostedDoc {
        number: number.to_string(),
        posting_date,
    })
}

/// One BC document, exactly once; `doc_id` is the Concur document it comes from (what a
/// parked retry reads again).
#[allow(clippy::too_many_arguments)]
async fn post_bc<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    owner: &str,
    ledger_kind: &str,
    kind: DocumentKind,
    doc_id: &str,
    inv: &ResolvedInvoice,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let name = flow.name();
    let subject = Subject {
        key: LedgerKey {
            integration: name.to_string(),
            kind: ledger_kind.into(),
            source_id: inv.source_id.clone(),
        },
        kind,
        source_id: doc_id.to_string(),
        version: Some(inv.version.to_rfc3339()),
        number: Some(inv.vendor_invoice_number.clone()),
        audit: audit_item(
            env.clock.now(),
            name,
            kind.as_str(),
            &inv.source_id,
            Step::Post,
            AuditStatus::Posted,
        )
        .with_resolved(inv),
    };
    // A posted invoice is traced back to its Concur document (payment confirmations).
    let table = tables::posted_invoice(name);
    let links = |w: &Written| {
        if w.id.is_empty() {
            Vec::new()
        } else {
            vec![Link::Put {
                table: table.clone(),
                source: w.id.to_lowercase(),
                target: inv.source_id.clone(),
            }]
        }
    };
    let writer = InvoiceWriter::new(flow.bc.clone());
    write_once(env, &writer, owner, &subject, inv, &links, crash).await
}

/// The posting confirmation; the document's own outcome stands when it went through.
async fn confirmed<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    owner: &str,
    kind: DocumentKind,
    confirm: &ConfirmDoc,
    outcome: PostOutcome,
) -> Result<PostOutcome, StepError> {
    match confirm_once(flow, env, owner, kind, confirm, &confirm.doc_id).await? {
        PostOutcome::Posted { .. } | PostOutcome::AlreadyPosted { .. } => Ok(outcome),
        waiting => Ok(waiting),
    }
}

/// The posting confirmation, exactly once under its own ledger entry (its own step in the
/// audit trail: `confirm`).
pub(super) async fn confirm_once<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    owner: &str,
    kind: DocumentKind,
    confirm: &ConfirmDoc,
    ledger_id: &str,
) -> Result<PostOutcome, StepError> {
    let name = flow.name();
    let ledger_id = ledger_id.to_string();
    let mut audit = audit_item(
        env.clock.now(),
        name,
        CONFIRM_KIND,
        &confirm.doc_id,
        Step::Confirm,
        AuditStatus::Posted,
    );
    audit.source_document_number = Some(confirm.number.clone());
    if !confirm.success {
        audit = audit.with_error(confirm.message.clone());
    }
    let subject = Subject {
        key: LedgerKey {
            integration: name.to_string(),
            kind: CONFIRM_KIND.into(),
            source_id: ledger_id,
        },
        kind,
        source_id: confirm.doc_id.clone(),
        version: None,
        number: Some(confirm.number.clone()),
        audit,
    };
    let writer = PostingConfirmationWriter {
        concur: flow.concur.client.clone(),
    };
    write_once(
        env,
        &writer,
        owner,
        &subject,
        confirm,
        &|_| Vec::new(),
        None,
    )
    .await
}
