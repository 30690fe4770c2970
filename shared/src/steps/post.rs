//! Post step: exactly once into the ERP, which has no idempotency key.
//!
//! 1. Claim the ledger entry (integration, kind, source id) with a conditional write.
//! 2. Look for the document in BC: by the id an earlier attempt recorded, else by the natural
//!    key (vendor + vendor invoice number). A posted one is recorded and left alone; a draft
//!    left by a crashed attempt is resumed, not created again.
//! 3. Otherwise create the draft with its lines in one deep insert. If the create fails in a
//!    way that may have succeeded (timeout, 5xx), look again before anything else.
//! 4. Record the target id, complete the line dimensions (idempotently), post, read the
//!    posted number, mark the ledger done, audit.
//!
//! A crash between any two calls leaves either no draft (create again), a draft (resumed), or a
//! posted invoice (recorded): never two, never none.

use std::time::Duration;

use super::claim::{self, Claimed};
use super::{Env, PostMessage, StepError, audit_item};
use crate::model::InvoiceKind;
use crate::model::ResolvedInvoice;
use crate::ports::{AuditStatus, Clock, LedgerEntry, LedgerKey, Queue, Step, Store};
use crate::systems::business_central::wire::PurchaseInvoice;
use crate::systems::business_central::{
    BcClient, BcError, DocSet, NewDocumentLine, NewPurchaseDocument,
};

/// How long a claim protects a document from a second worker. Longer than a post takes;
/// short enough that a crashed worker's document is picked up on the next redelivery.
pub const CLAIM_LEASE: Duration = Duration::from_secs(90);

/// How long a create whose answer was lost (timeout, 5xx) may still commit in BC. BC cancels an
/// operation after 8 minutes (408) and its gateway gives up at 10 (business-central.md A4), so
/// a create not visible 10 minutes after it was sent never happened, and only then may the
/// document be created again. Until then it is looked up, not created.
pub const CREATE_SETTLE: Duration = Duration::from_secs(600);

/// When to look again for an unsettled create: soon once (most land seconds late), then at the
/// end of the settle window.
const FIRST_RECHECK: Duration = Duration::from_secs(10);

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
    /// BC refused the document (bad vendor, G/L account, dimension): parked with BC's words.
    Parked(String),
    /// Claimed by another worker; retry after its lease.
    Busy {
        owner: String,
        retry_in: Duration,
    },
    /// An earlier create's outcome is unknown and BC may still commit it: look again later,
    /// never create a second one meanwhile.
    Unsettled {
        retry_in: Duration,
    },
}

/// Where the step stops when a test asks it to crash (fault injection in tests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    AfterClaim,
    AfterDraft,
    AfterPost,
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
    // Credit notes share Coupa's invoice ids, so one ledger kind covers both.
    let key = LedgerKey {
        integration: msg.integration.clone(),
        kind: "invoice".into(),
        source_id: inv.source_id.clone(),
    };
    let audit = |status| {
        audit_item(
            env.clock.now(),
            &msg.integration,
            super::map::kind_name(inv.kind),
            &inv.source_id,
            Step::Post,
            status,
        )
        .with_resolved(inv)
    };

    let entry = match claim::claim(env, &key, owner).await? {
        Claimed::Acquired(e) => e,
        Claimed::Finished(PostOutcome::AlreadyPosted { id, number }) => {
            if !id.is_empty() {
                // Invoices posted before payments flowed back have no link yet: make it now.
                record_posted(env, &key, inv, &id).await?;
            }
            claim::write(
                env,
                audit(AuditStatus::AlreadyPosted).with_target(&id, Some(&number)),
            )
            .await?;
            return Ok(PostOutcome::AlreadyPosted { id, number });
        }
        // Another worker (or a crashed one whose lease has not run out) holds it: come back
        // when the lease ends rather than burning deliveries on retries that must fail.
        Claimed::Finished(busy) => return Ok(busy),
    };
    if crash == Some(CrashPoint::AfterClaim) {
        return Err(StepError::retry("crash injected after the ledger claim"));
    }

    let result = post_claimed(env, bc, owner, &key, inv, &entry, crash).await;
    match result {
        Ok(Progress::Done {
            id,
            number,
            was_posted,
        }) => {
            let status = if was_posted {
                AuditStatus::AlreadyPosted
            } else {
                AuditStatus::Posted
            };
            claim::write(env, audit(status).with_target(&id, Some(&number))).await?;
            Ok(if was_posted {
                PostOutcome::AlreadyPosted { id, number }
            } else {
                PostOutcome::Posted { id, number }
            })
        }
        Ok(Progress::Rejected(why)) => {
            claim::release(env, &key, owner).await;
            claim::park_for_retry(
                env,
                &msg.integration,
                crate::model::DocumentKind::Invoice,
                &inv.source_id,
                Some(inv.version.to_rfc3339()),
                Some(inv.vendor_invoice_number.clone()),
                &why,
            )
            .await?;
            Ok(PostOutcome::Parked(why))
        }
        Ok(Progress::Unsettled { retry_in }) => {
            claim::release(env, &key, owner).await;
            Ok(PostOutcome::Unsettled { retry_in })
        }
        Err(Failure::Crashed(why)) => Err(StepError::retry(why)),
        Err(Failure::Retry(e)) => {
            claim::release(env, &key, owner).await;
            Err(e)
        }
    }
}

enum Progress {
    Done {
        id: String,
        number: String,
        was_posted: bool,
    },
    Rejected(String),
    Unsettled {
        retry_in: Duration,
    },
}

enum Failure {
    Retry(StepError),
    Crashed(String),
}

impl From<StepError> for Failure {
    fn from(e: StepError) -> Self {
        Failure::Retry(e)
    }
}

async fn post_claimed<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    owner: &str,
    key: &LedgerKey,
    inv: &ResolvedInvoice,
    entry: &LedgerEntry,
    crash: Option<CrashPoint>,
) -> Result<Progress, Failure> {
    let bc_err = |what: &str, e: BcError| Failure::Retry(StepError::system(what, e));
    let known_id = entry.target_id.as_deref();
    let set = doc_set(inv);
    let noun = set.noun();

    let mut existing = match known_id {
        Some(id) => bc
            .document(set, id)
            .await
            .map_err(|e| bc_err("reading the recorded BC invoice", e))?,
        None => None,
    };
    if existing.is_none() {
        existing = find_by_natural_key(bc, inv)
            .await
            .map_err(|e| bc_err("looking up the BC invoice", e))?;
    }
    if let Some(found) = &existing
        && !found.is_draft()
    {
        let number = found.number.clone().unwrap_or_default();
        complete(env, key, owner, inv, &found.id, &number).await?;
        return Ok(Progress::Done {
            id: found.id.clone(),
            number,
            was_posted: true,
        });
    }

    let (draft, fresh) = match existing {
        Some(d) => (d, false),
        None => {
            let now = env.clock.now();
            if let Some(wait) = unsettled_wait(entry, now) {
                return Ok(Progress::Unsettled { retry_in: wait });
            }
            match bc.create_document(set, &draft_of(inv)).await {
                Ok(d) => (d, true),
                Err(e) if e.http().may_have_succeeded() => {
                    // The create may have happened with its answer lost: look before anything
                    // else, and if it is not there yet, remember it may still land.
                    match find_by_natural_key(bc, inv)
                        .await
                        .map_err(|e| bc_err("looking up after an unclear create", e))?
                    {
                        Some(d) => (d, false),
                        // A 5xx the server answered is settled: it is not there, so retry.
                        None if !e.http().may_still_commit() => {
                            return Err(bc_err(&format!("creating the BC {noun}"), e));
                        }
                        None => {
                            let retry_in = remember_unsettled_create(env, key, owner, now).await?;
                            tracing::warn!(%key, error = %e, "create outcome unknown; looking again before any new create");
                            return Ok(Progress::Unsettled { retry_in });
                        }
                    }
                }
                Err(e) if e.http().is_rejection() => {
                    return Ok(Progress::Rejected(format!(
                        "Business Central refused the {noun}: {}",
                        e.bc_message().unwrap_or_else(|| e.to_string())
                    )));
                }
                Err(e) => return Err(bc_err(&format!("creating the BC {noun}"), e)),
            }
        }
    };
    env.store
        .record_target(key, owner, &draft.id)
        .await
        .map_err(|e| StepError::new("recording the BC id", e))?;
    if crash == Some(CrashPoint::AfterDraft) {
        return Err(Failure::Crashed(
            "crash injected after the draft was created".into(),
        ));
    }

    if draft.is_draft() {
        if let Err((what, e)) = ensure_dimensions(bc, set, &draft.id, inv, fresh).await {
            if e.http().is_rejection() {
                return Ok(Progress::Rejected(format!(
                    "Business Central refused {what}: {}",
                    e.bc_message().unwrap_or_else(|| e.to_string())
                )));
            }
            return Err(bc_err(&format!("setting {what}"), e));
        }
        if let Err(e) = bc.post_document(set, &draft.id).await {
            // Posted after all (answer lost, or an earlier attempt got there)? Read before judging.
            let now = bc
                .document(set, &draft.id)
                .await
                .map_err(|e| bc_err("reading after a failed post", e))?;
            if now.as_ref().is_none_or(|d| d.is_draft()) {
                if e.http().is_rejection() {
                    return Ok(Progress::Rejected(format!(
                        "Business Central refused to post draft {}: {}",
                        draft.number.as_deref().unwrap_or(&draft.id),
                        e.bc_message().unwrap_or_else(|| e.to_string())
                    )));
                }
                return Err(bc_err(&format!("posting the BC {noun}"), e));
            }
        }
    }
    if crash == Some(CrashPoint::AfterPost) {
        return Err(Failure::Crashed(
            "crash injected after the post action".into(),
        ));
    }
    // The post renumbers the invoice (gotcha 3): read the posted number by the stable id.
    let posted = bc
        .document(set, &draft.id)
        .await
        .map_err(|e| bc_err(&format!("reading the posted {noun}"), e))?
        .ok_or_else(|| {
            Failure::Retry(StepError::retry(format!(
                "BC {noun} {} vanished after posting",
                draft.id
            )))
        })?;
    let number = posted.number.clone().unwrap_or_default();
    complete(env, key, owner, inv, &posted.id, &number).await?;
    Ok(Progress::Done {
        id: posted.id,
        number,
        was_posted: !draft.is_draft(),
    })
}

/// How long to wait before looking again for a create sent at `sent` whose outcome is unknown;
/// `None` once the settle window is over (a new create is then safe).
/// While an earlier create of this entry may still commit: how long to wait before looking
/// again (never create meanwhile). `None`: creating is safe.
pub(crate) fn unsettled_wait(
    entry: &LedgerEntry,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    entry
        .unsettled_create_at
        .and_then(|sent| settle_wait(sent, now))
}

/// Records in the ledger that a create sent at `sent` has an unknown outcome, and says when to
/// look for it again.
pub(crate) async fn remember_unsettled_create<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    key: &LedgerKey,
    owner: &str,
    sent: chrono::DateTime<chrono::Utc>,
) -> Result<Duration, StepError> {
    env.store
        .record_unsettled_create(key, owner, sent)
        .await
        .map_err(|e| StepError::new("recording an unsettled create", e))?;
    Ok(settle_wait(sent, env.clock.now()).unwrap_or(FIRST_RECHECK))
}

fn settle_wait(
    sent: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let elapsed = (now - sent).to_std().unwrap_or_default();
    if elapsed >= CREATE_SETTLE {
        return None;
    }
    Some(if elapsed < FIRST_RECHECK {
        FIRST_RECHECK - elapsed
    } else {
        CREATE_SETTLE - elapsed
    })
}

/// The natural key: this vendor's invoices with this vendor invoice number. A posted one wins
/// over a draft (a person may have left a stray draft beside it).
async fn find_by_natural_key(
    bc: &BcClient,
    inv: &ResolvedInvoice,
) -> Result<Option<PurchaseInvoice>, BcError> {
    let mut found = bc
        .documents_by_natural_key(doc_set(inv), &inv.vendor_number, &inv.vendor_invoice_number)
        .await?;
    found.sort_by_key(|i| i.is_draft());
    Ok(found.into_iter().next())
}

/// An invoice becomes a purchase invoice; a credit note a purchase credit memo.
fn doc_set(inv: &ResolvedInvoice) -> DocSet {
    match inv.kind {
        InvoiceKind::Invoice => DocSet::Invoice,
        InvoiceKind::CreditNote => DocSet::CreditMemo,
    }
}

fn draft_of(inv: &ResolvedInvoice) -> NewPurchaseDocument {
    NewPurchaseDocument {
        vendor_number: inv.vendor_number.clone(),
        external_number: inv.vendor_invoice_number.clone(),
        date: inv.invoice_date,
        currency_code: inv.total.currency.to_string(),
        lines: inv
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| NewDocumentLine {
                sequence: (i as i32 + 1) * 10000,
                gl_account: l.gl_account.clone(),
                description: l.description.clone(),
                quantity: l.quantity,
                unit_cost: l.unit_cost,
            })
            .collect(),
    }
}

/// Gives every line its dimension values. On a fresh draft there are none yet; on a resumed
/// one, only the missing ones are added, so a retry never trips over "already exists".
async fn ensure_dimensions(
    bc: &BcClient,
    set: DocSet,
    invoice_id: &str,
    inv: &ResolvedInvoice,
    fresh: bool,
) -> Result<(), (String, BcError)> {
    if inv.lines.iter().all(|l| l.dimensions.is_empty()) {
        return Ok(());
    }
    let mut bc_lines = bc
        .document_lines(set, invoice_id)
        .await
        .map_err(|e| ("the invoice lines".to_string(), e))?;
    bc_lines.sort_by_key(|l| l.sequence.unwrap_or(i32::MAX));
    for (i, line) in inv.lines.iter().enumerate() {
        if line.dimensions.is_empty() {
            continue;
        }
        let n = i + 1;
        let seq = n as i32 * 10000;
        let Some(bc_line) = bc_lines
            .iter()
            .find(|l| l.sequence == Some(seq))
            .or_else(|| bc_lines.get(i))
        else {
            continue;
        };
        let have: Vec<String> = if fresh {
            Vec::new()
        } else {
            bc.document_line_dimensions(set, &bc_line.id)
                .await
                .map_err(|e| (format!("the dimensions of line {n}"), e))?
                .into_iter()
                .filter_map(|d| d.code)
                .collect()
        };
        for (code, value) in &line.dimensions {
            if !have.iter().any(|h| h.eq_ignore_ascii_case(code)) {
                bc.add_document_line_dimension(set, &bc_line.id, code, value)
                    .await
                    .map_err(|e| (format!("dimension {code} value '{value}' on line {n}"), e))?;
            }
        }
    }
    Ok(())
}

/// Links a posted BC invoice to its Coupa invoice, for the paid-status poll.
async fn record_posted<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    key: &LedgerKey,
    inv: &ResolvedInvoice,
    id: &str,
) -> Result<(), StepError> {
    if inv.kind != InvoiceKind::Invoice {
        return Ok(());
    }
    env.store
        .put_mapping(
            &crate::config::tables::posted_invoice(&key.integration),
            &id.to_lowercase(),
            &inv.source_id,
        )
        .await
        .map_err(|e| StepError::new("recording the posted invoice", e))
}

async fn complete<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    key: &LedgerKey,
    owner: &str,
    inv: &ResolvedInvoice,
    id: &str,
    number: &str,
) -> Result<(), StepError> {
    // Before the ledger says done, so a paid BC invoice can always be traced to its source.
    record_posted(env, key, inv, id).await?;
    claim::complete(env, key, owner, id, number).await
}
