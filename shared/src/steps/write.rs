//! The one exactly-once writer: every write into any system (ERP documents, vendors, orders,
//! payments and confirmations back to a source) goes through [`write_once`].
//!
//! 1. Claim the ledger entry with a conditional write (done before: nothing to do; held by
//!    another worker: come back after its lease).
//! 2. Look for the document in the target: by the id an earlier attempt recorded, else by the
//!    natural key the target chooses.
//! 3. Not there: if an earlier create's answer was lost and the target may still commit it,
//!    only look again later (never create meanwhile). Else create; if the create fails in a way
//!    that may have succeeded, look again before anything else, and remember an unsettled
//!    create in the ledger when looking cannot settle it.
//! 4. Record the target's id in the ledger, finish the record (resumable), record the links the
//!    caller asks for, complete the ledger, audit.
//!
//! A crash between any two calls leaves no record (created again), a record (found and
//! finished), or a finished record (recorded): never two, never none.

use std::time::Duration;

use super::claim;
use super::{Env, IngestMessage, StepError};
use crate::model::DocumentKind;
use crate::ports::{
    Absent, AuditItem, AuditStatus, Change, Claim, Clock, LedgerEntry, LedgerKey, Queue, Store,
    SystemError, Writer, Written,
};

/// When to look again for an unsettled create: soon once (most land seconds late), then at the
/// end of the target's settle window.
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

pub(crate) enum Claimed {
    /// Ours: go on.
    Acquired(LedgerEntry),
    /// Nothing to do (done before, or held by another worker).
    Finished(PostOutcome),
}

pub(crate) async fn claim<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    key: &LedgerKey,
    owner: &str,
    target: &str,
) -> Result<Claimed, StepError> {
    match env
        .store
        .claim(key, owner, target, env.clock.now(), env.claim_lease)
        .await
        .map_err(|e| StepError::new("claiming the ledger", e))?
    {
        Claim::Acquired(e) => Ok(Claimed::Acquired(e)),
        Claim::Done(e) => Ok(Claimed::Finished(PostOutcome::AlreadyPosted {
            id: e.target_id.unwrap_or_default(),
            number: e.target_number.unwrap_or_default(),
        })),
        Claim::Busy(e) => {
            let left = (e.lease_until - env.clock.now())
                .to_std()
                .unwrap_or_default();
            Ok(Claimed::Finished(PostOutcome::Busy {
                owner: e.owner,
                retry_in: left + Duration::from_secs(1),
            }))
        }
    }
}

/// Where the writer stops when a test asks it to crash (fault injection in tests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    AfterClaim,
    /// After the create (or find) and the ledger's record of the target id.
    AfterDraft,
    /// After the record was finished (posted), before the ledger says done.
    AfterPost,
    /// After the ledger says done, before the audit trail records it.
    AfterLedger,
}

/// What the write is about: the ledger key, and the document's identity for parking it and
/// for the audit trail.
pub struct Subject {
    pub key: LedgerKey,
    /// The kind of the source document (what a parked retry re-reads).
    pub kind: DocumentKind,
    pub source_id: String,
    pub version: Option<String>,
    /// The number a person knows the document by.
    pub number: Option<String>,
    /// The audit item of this document, identity and amounts filled in; the writer sets the
    /// status, the target and the error.
    pub audit: AuditItem,
}

/// A change to the mapping tables that a written record implies (an order's BC id, a paid
/// invoice's way back to its source), applied before the ledger says done and again whenever
/// the ledger is found done, so a crash never leaves a record without its links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    Put {
        table: String,
        source: String,
        target: String,
    },
    Remove {
        table: String,
        source: String,
    },
}

/// Writes `doc` into the target exactly once. `links` says which mapping rows the result
/// implies.
pub async fn write_once<W: Writer, Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    writer: &W,
    owner: &str,
    subject: &Subject,
    doc: &W::Doc,
    links: &(dyn Fn(&Written) -> Vec<Link> + Send + Sync),
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let key = &subject.key;
    let audit = |status: AuditStatus| {
        let mut item = subject.audit.clone();
        item.at = env.clock.now();
        item.status = status;
        item
    };
    let target = writer.target();
    let entry = match claim(env, key, owner, &target).await? {
        Claimed::Acquired(e) => e,
        Claimed::Finished(PostOutcome::AlreadyPosted { id, number }) => {
            // Done here, by the ledger: only if the target still has it (a reset sandbox, a
            // restored company). Otherwise a person decides; it is never reported as posted.
            if let Some(why) = gone_from_target(writer, doc, &target, &id, &number, subject).await?
            {
                let retry = retry_message(subject, key);
                super::map::park(env, &retry, subject.number.clone(), why.clone()).await?;
                return Ok(PostOutcome::Parked(why));
            }
            let written = Written {
                id: id.clone(),
                number: number.clone(),
                change: Change::AlreadyDone,
            };
            apply_links(env, &links(&written)).await?;
            // A repeat is counted on the row that recorded the write. No such row: the worker
            // that wrote it stopped between the ledger and the audit trail, and this is it.
            let item = audit(AuditStatus::Posted);
            let item = if id.is_empty() {
                item
            } else {
                item.with_target(&id, Some(&number))
            };
            claim::write_once(env, item, &written_key(key, &target, &id)).await?;
            return Ok(PostOutcome::AlreadyPosted { id, number });
        }
        // Another worker (or a crashed one whose lease has not run out) holds it: come back
        // when the lease ends rather than burning deliveries on retries that must fail.
        Claimed::Finished(busy) => return Ok(busy),
    };
    if crash == Some(CrashPoint::AfterClaim) {
        return Err(StepError::retry("crash injected after the ledger claim"));
    }

    let work = write_claimed(env, writer, owner, key, doc, &entry, crash);
    match keeping_claim(env, key, owner, &target, work).await {
        Ok(Progress::Written(w)) => {
            apply_links(env, &links(&w)).await?;
            claim::complete(env, key, owner, &w.id, &w.number).await?;
            if crash == Some(CrashPoint::AfterLedger) {
                return Err(StepError::retry(
                    "crash injected after the ledger said done",
                ));
            }
            // Found final on a later attempt: an earlier attempt of ours wrote it and stopped
            // before the ledger said so; that write is recorded now, as posted. Found final on
            // the first attempt: it was there before us.
            let ours = entry.attempts > 1 || entry.target_id.is_some();
            let item = match &w.change {
                Change::Created => audit(AuditStatus::Posted),
                Change::Updated => audit(AuditStatus::Updated),
                Change::Unchanged | Change::AlreadyDone if ours => audit(AuditStatus::Posted),
                Change::Unchanged | Change::AlreadyDone => audit(AuditStatus::AlreadyPosted),
                Change::Removed(why) => audit(AuditStatus::Updated).with_error(why.clone()),
                Change::LeftAlone(why) => audit(AuditStatus::AlreadyPosted).with_error(why.clone()),
            };
            let item = if w.id.is_empty() {
                item
            } else {
                item.with_target(&w.id, Some(&w.number))
            };
            claim::write_once(env, item, &written_key(key, &target, &w.id)).await?;
            Ok(match w.change {
                Change::AlreadyDone => PostOutcome::AlreadyPosted {
                    id: w.id,
                    number: w.number,
                },
                _ => PostOutcome::Posted {
                    id: w.id,
                    number: w.number,
                },
            })
        }
        Ok(Progress::Rejected(why)) => {
            claim::release(env, key, owner).await;
            let retry = retry_message(subject, key);
            super::map::park(env, &retry, subject.number.clone(), why.clone()).await?;
            Ok(PostOutcome::Parked(why))
        }
        Ok(Progress::Unsettled(retry_in)) => {
            claim::release(env, key, owner).await;
            Ok(PostOutcome::Unsettled { retry_in })
        }
        Err(Failure::Crashed(why)) => Err(StepError::retry(why)),
        Err(Failure::Step(e)) => {
            claim::release(env, key, owner).await;
            Err(e)
        }
    }
}

/// The once key of the row that records a ledger entry's write of record `id` into `target`:
/// repeats of the document (redeliveries, polls, replays) are counted on it; a re-post (a new
/// record) gets its own row.
pub(crate) fn written_key(key: &LedgerKey, target: &str, id: &str) -> String {
    super::once_key(&[
        "written",
        &key.integration,
        &key.kind,
        &key.source_id,
        target,
        id,
    ])
}

/// Parked with a message that reads the source again when retried, so a corrected document or
/// mapping is picked up.
pub(crate) fn retry_message(subject: &Subject, key: &LedgerKey) -> IngestMessage {
    IngestMessage {
        integration: key.integration.clone(),
        kind: subject.kind,
        source_id: subject.source_id.clone(),
        version: subject.version.clone(),
        via: "retry".into(),
        document: None,
    }
}

/// Why a document the ledger records as written in `target` must not be reported as done
/// there: the target no longer has it. `None`: it is there (or nothing was written to look for).
async fn gone_from_target<W: Writer>(
    writer: &W,
    doc: &W::Doc,
    target: &str,
    id: &str,
    number: &str,
    subject: &Subject,
) -> Result<Option<String>, StepError> {
    if id.is_empty() {
        return Ok(None);
    }
    let what = writer.what(doc);
    match writer.find(doc, Some(id)).await {
        Ok(Some(_)) => Ok(None),
        Ok(None) => Ok(Some(format!(
            "{what} {number} (id {id}) that the ledger records for this document is no longer \
             in {target} (a reset or restored company?): not reported as posted; to write it \
             again: mlc replay --document {} --repost",
            subject.source_id
        ))),
        Err(e) => Err(StepError::system(
            &format!("checking that {what} recorded as written is still there"),
            e,
        )),
    }
}

/// Runs `work` while renewing the ledger claim every third of its lease, so a step that waits
/// long for an answer (up to the HTTP timeout, several times over with retries) never lets
/// another worker take the document over and create it a second time meanwhile.
async fn keeping_claim<Q: Queue, S: Store, C: Clock, T>(
    env: &Env<Q, S, C>,
    key: &LedgerKey,
    owner: &str,
    target: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    super::lease::renewing(env.claim_lease, work, || async {
        // Re-entry by the holder only moves the lease on.
        match env
            .store
            .claim(key, owner, target, env.clock.now(), env.claim_lease)
            .await
        {
            Ok(Claim::Acquired(_)) => {}
            Ok(other) => tracing::error!(%key, ?other, "the ledger claim was lost while writing"),
            Err(e) => tracing::warn!(%key, error = %e, "could not renew the ledger claim"),
        }
    })
    .await
}

enum Progress {
    Written(Written),
    Rejected(String),
    Unsettled(Duration),
}

enum Failure {
    Step(StepError),
    /// A crash injected by a test: nothing released, nothing audited.
    Crashed(String),
}

impl From<StepError> for Failure {
    fn from(e: StepError) -> Self {
        Failure::Step(e)
    }
}

async fn write_claimed<W: Writer, Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    writer: &W,
    owner: &str,
    key: &LedgerKey,
    doc: &W::Doc,
    entry: &LedgerEntry,
    crash: Option<CrashPoint>,
) -> Result<Progress, Failure> {
    let what = writer.what(doc);
    let fail = |context: String, e: SystemError| Failure::Step(StepError::system(&context, e));
    // A first attempt that the ledger shows never created anything has nothing to find
    // (this ledger is the only writer of these records, and its claim keeps every other worker
    // out): the writer may skip the look-up. A retry, a take-over (attempts > 1), a recorded
    // draft or an unsettled create always looks.
    let first_attempt =
        entry.attempts <= 1 && entry.target_id.is_none() && entry.unsettled_create_at.is_none();
    let found = if first_attempt && !writer.look_before_first_create(doc) {
        None
    } else {
        writer
            .find(doc, entry.target_id.as_deref())
            .await
            .map_err(|e| fail(format!("looking up {what}"), e))?
    };
    let (record, created) = match found {
        Some(r) => (r, false),
        None => {
            if let Absent::LeaveAlone(why) = writer.when_absent(doc) {
                return Ok(Progress::Written(Written {
                    id: String::new(),
                    number: String::new(),
                    change: Change::LeftAlone(why),
                }));
            }
            let now = env.clock.now();
            if let Some(wait) = unsettled_wait(writer.settle_window(), entry, now) {
                return Ok(Progress::Unsettled(wait));
            }
            match writer.create(doc).await {
                Ok(r) => (r, true),
                Err(e) if e.may_have_succeeded() => {
                    // The create may have happened with its answer lost: look before anything
                    // else, and if it is not there yet, remember it may still land.
                    match writer.find(doc, None).await.map_err(|e| {
                        fail(format!("looking up {what} after an unclear create"), e)
                    })? {
                        Some(r) => (r, false),
                        // A 5xx the server answered is settled: it is not there, so retry.
                        None if !e.may_still_commit() => {
                            return Err(fail(format!("creating {what}"), e));
                        }
                        None => {
                            env.store
                                .record_unsettled_create(key, owner, now)
                                .await
                                .map_err(|e| StepError::new("recording an unsettled create", e))?;
                            tracing::warn!(%key, error = %e, "create outcome unknown; looking again before any new create");
                            let wait = settle_wait(writer.settle_window(), now, env.clock.now())
                                .unwrap_or(FIRST_RECHECK);
                            return Ok(Progress::Unsettled(wait));
                        }
                    }
                }
                Err(SystemError::Rejected { message, .. }) => {
                    return Ok(Progress::Rejected(format!("refused {what}: {message}")));
                }
                Err(e) => return Err(fail(format!("creating {what}"), e)),
            }
        }
    };
    let id = writer.id_of(doc, &record);
    env.store
        .record_target(key, owner, &id)
        .await
        .map_err(|e| StepError::new("recording the target id", e))?;
    if crash == Some(CrashPoint::AfterDraft) {
        return Err(Failure::Crashed(
            "crash injected after the draft was created".into(),
        ));
    }
    let written = match writer.finish(doc, record, created).await {
        Ok(w) => w,
        Err(SystemError::Rejected { message, .. }) => return Ok(Progress::Rejected(message)),
        Err(e) => return Err(fail(format!("finishing {what}"), e)),
    };
    if crash == Some(CrashPoint::AfterPost) {
        return Err(Failure::Crashed(
            "crash injected after the post action".into(),
        ));
    }
    Ok(Progress::Written(written))
}

pub(crate) async fn apply_links<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    links: &[Link],
) -> Result<(), StepError> {
    for l in links {
        match l {
            Link::Put {
                table,
                source,
                target,
            } => env.store.put_mapping(table, source, target).await,
            Link::Remove { table, source } => {
                env.store.remove_mapping(table, source).await.map(|_| ())
            }
        }
        .map_err(|e| StepError::new("recording a mapping", e))?;
    }
    Ok(())
}

/// While an earlier create of this entry may still commit: how long to wait before looking
/// again (never create meanwhile). `None`: creating is safe.
pub(crate) fn unsettled_wait(
    window: Duration,
    entry: &LedgerEntry,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    entry
        .unsettled_create_at
        .and_then(|sent| settle_wait(window, sent, now))
}

fn settle_wait(
    window: Duration,
    sent: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let elapsed = (now - sent).to_std().unwrap_or_default();
    if elapsed >= window {
        return None;
    }
    Some(if elapsed < FIRST_RECHECK {
        FIRST_RECHECK - elapsed
    } else {
        window - elapsed
    })
}
