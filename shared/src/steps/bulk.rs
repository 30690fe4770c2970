//! The exactly-once bulk writer: many documents into a target in batches the target runs on
//! its own (F&O's Data Management package API), under the same ledger as the one per-record
//! writer (`write.rs`), so the two never write a document twice between them.
//!
//! 1. Claim a batch's worth of documents in the ledger (done: skipped; held by another worker:
//!    skipped). A per-record worker that meets a claimed document waits for the lease, so it
//!    cannot write a document that is in a batch. The claims are renewed while the batch runs;
//!    then the next batch's worth is claimed.
//! 2. A batch an earlier run sent (its id is recorded per document before anything is sent)
//!    is waited for until it has ended: it may still be landing.
//! 3. Look every claimed document up in the target (a few requests per page, not one per
//!    document): found → the ledger is completed (a partial record is finished per record).
//! 4. The rest go out in batches of `batch`: record the batch id, upload, mark each document's
//!    create as unsettled, start, wait to the end, then look them up again: landed → completed,
//!    refused → parked with the target's words, neither → released for a later run.
//!
//! A crash after the upload leaves no started batch: the next run sends the documents again.
//! A crash after the start leaves a batch that may still land: the next run finds its id in
//! the store, waits for it to end, and finds what landed before sending anything.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::claim;
use super::write::{
    Claimed, Link, PostOutcome, Subject, apply_links, retry_message, unsettled_wait, written_key,
};
use super::{Env, StepError};
use crate::ports::{
    AuditStatus, BatchState, BulkWriter, Claim, Clock, Found, LedgerEntry, Queue, Store,
    SystemError, Written,
};

/// One document for the bulk writer: what it is (ledger key, audit identity), what the target
/// takes, and the mapping rows its landing implies.
pub struct BulkItem<D> {
    pub subject: Subject,
    pub doc: D,
    pub links: Vec<Link>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkCrash {
    /// After the package was uploaded, before the import was started.
    AfterUpload,
    /// After the import was started, before it was waited for.
    AfterStart,
}

#[derive(Clone, Debug)]
pub struct BulkOptions {
    /// Documents per batch (package).
    pub batch: usize,
    /// Count what would be sent; claim and send nothing.
    pub dry_run: bool,
    /// How often a running batch is asked for its state.
    pub poll_every: Duration,
    /// Fault injection in tests only.
    pub crash: Option<BulkCrash>,
}

impl Default for BulkOptions {
    fn default() -> Self {
        Self {
            batch: 500,
            dry_run: false,
            poll_every: Duration::from_secs(2),
            crash: None,
        }
    }
}

/// What the bulk writer tells its caller while it works (the CLI prints it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulkEvent {
    /// The source was read: documents listed, ready to write, parked as unmappable.
    Prepared {
        listed: usize,
        ready: usize,
        unmapped: usize,
    },
    /// Writing into one target begins.
    Target { target: String, documents: usize },
    /// An earlier run's batch is still running: waiting for it.
    WaitingForEarlier { batch: String, state: String },
    /// A batch was uploaded and started.
    Sent { batch: String, documents: usize },
    /// A batch's state, each time it was asked.
    State { batch: String, state: String },
    /// A batch ended and was reconciled.
    Reconciled {
        batch: String,
        state: String,
        landed: usize,
        parked: usize,
        left: usize,
    },
}

/// What `mlc backfill` asks of an integration.
#[derive(Clone, Debug, Default)]
pub struct BackfillOptions {
    /// Source documents changed from this instant on (else the integration's `start_from`).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub bulk: BulkOptions,
}

/// What a backfill did: what the source listed, what could not be prepared, and per target
/// what the bulk writer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackfillReport {
    pub listed: usize,
    /// Not ready for the target (not approved): left alone, as the poll does.
    pub not_ready: usize,
    /// Could not be mapped (vendor, account, dimension): parked, as the map step does.
    pub unmapped: usize,
    /// Not for the bulk path (credit notes): left to the normal poll.
    pub left_to_poll: usize,
    /// Per target (legal entity, company).
    pub targets: Vec<(String, BulkReport)>,
}

impl BackfillReport {
    /// The bulk reports added up.
    pub fn total(&self) -> BulkReport {
        let mut t = BulkReport::default();
        for (_, r) in &self.targets {
            t.documents += r.documents;
            t.already_done += r.already_done;
            t.busy += r.busy;
            t.found += r.found;
            t.batches += r.batches;
            t.landed += r.landed;
            t.parked += r.parked;
            t.left += r.left;
            t.would_send += r.would_send;
        }
        t
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BulkReport {
    pub documents: usize,
    /// The ledger says done (written before, by either writer).
    pub already_done: usize,
    /// Held by another worker.
    pub busy: usize,
    /// Found in the target before sending (an earlier run's batch, or a per-record write whose
    /// ledger did not say so yet) and completed in the ledger.
    pub found: usize,
    pub batches: usize,
    /// Landed by this run's batches.
    pub landed: usize,
    /// Refused by the target: parked with its words.
    pub parked: usize,
    /// Neither landed nor refused, or waiting for an earlier create to settle: left for a
    /// later run (or the per-record writer).
    pub left: usize,
    /// Dry run: what would be sent.
    pub would_send: usize,
}

fn system(context: &str, e: SystemError) -> StepError {
    StepError::system(context, e)
}

/// Writes `items` into the target of `writer` in batches, each exactly once.
pub async fn write_bulk<W: BulkWriter, Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    writer: &W,
    owner: &str,
    items: Vec<BulkItem<W::Doc>>,
    opts: &BulkOptions,
    progress: &(dyn Fn(BulkEvent) + Send + Sync),
) -> Result<BulkReport, StepError> {
    let mut report = BulkReport {
        documents: items.len(),
        ..BulkReport::default()
    };
    if opts.dry_run {
        return dry_run(env, writer, items, report).await;
    }
    let target = writer.target();
    // One batch's worth at a time: claimed, looked up, sent, reconciled, then the next. The
    // claims held at any moment (and renewed while a package runs) stay a batch, however many
    // thousand documents the backfill has; the others stay free for the per-record workers.
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<BulkItem<W::Doc>> = items.by_ref().take(opts.batch.max(1)).collect();
        if chunk.is_empty() {
            break;
        }
        let mut claimed: Vec<(BulkItem<W::Doc>, LedgerEntry)> = Vec::new();
        for item in chunk {
            match super::write::claim(env, &item.subject.key, owner, &target).await? {
                Claimed::Acquired(e) => claimed.push((item, e)),
                Claimed::Finished(PostOutcome::AlreadyPosted { .. }) => report.already_done += 1,
                Claimed::Finished(_) => report.busy += 1,
            }
        }
        if claimed.is_empty() {
            continue;
        }
        let keys: Vec<_> = claimed.iter().map(|(i, _)| i.subject.key.clone()).collect();
        // The claims outlive the package: renewed every third of the lease while it runs.
        let work = run_claimed(env, writer, owner, claimed, opts, progress, &mut report);
        super::lease::renewing(env.claim_lease, work, || async {
            for key in &keys {
                match env
                    .store
                    .claim(key, owner, &target, env.clock.now(), env.claim_lease)
                    .await
                {
                    // Re-entry by the holder moves the lease on; a completed one says Done.
                    Ok(Claim::Acquired(_) | Claim::Done(_)) => {}
                    Ok(other) => tracing::error!(%key, ?other, "a bulk ledger claim was lost"),
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "could not renew a bulk ledger claim")
                    }
                }
            }
        })
        .await?;
    }
    Ok(report)
}

async fn dry_run<W: BulkWriter, Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    writer: &W,
    items: Vec<BulkItem<W::Doc>>,
    mut report: BulkReport,
) -> Result<BulkReport, StepError> {
    let mut open = Vec::new();
    for item in &items {
        let e = env
            .store
            .ledger_entry(&item.subject.key)
            .await
            .map_err(|e| StepError::new("reading the ledger", e))?;
        match e {
            Some(e) if e.state == crate::ports::LedgerState::Done => report.already_done += 1,
            _ => open.push(&item.doc),
        }
    }
    let found = writer
        .find_many(&open)
        .await
        .map_err(|e| system("looking the documents up", e))?;
    for f in found {
        match f {
            Some(_) => report.found += 1,
            None => report.would_send += 1,
        }
    }
    Ok(report)
}

/// The mapping table that records which batch a document went into last.
fn batch_table(integration: &str) -> String {
    crate::config::tables::bulk_batch(integration)
}

async fn run_claimed<W: BulkWriter, Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    writer: &W,
    owner: &str,
    claimed: Vec<(BulkItem<W::Doc>, LedgerEntry)>,
    opts: &BulkOptions,
    progress: &(dyn Fn(BulkEvent) + Send + Sync),
    report: &mut BulkReport,
) -> Result<(), StepError> {
    // 2. Batches of earlier runs: wait for each to end before looking.
    let mut earlier: HashMap<String, Option<String>> = HashMap::new();
    for (item, _) in &claimed {
        let k = &item.subject.key;
        let batch = env
            .store
            .mapping(&batch_table(&k.integration), &k.to_string())
            .await
            .map_err(|e| StepError::new("reading the batch record", e))?;
        earlier.insert(k.to_string(), batch);
    }
    let mut ended: HashMap<String, bool> = HashMap::new();
    for batch in earlier.values().flatten().collect::<BTreeSet<_>>() {
        let state = wait(writer, batch, opts, progress, true).await?;
        ended.insert(batch.clone(), matches!(state, BatchState::Ended(_)));
    }
    // 3. Look everything up; what is there is completed.
    let docs: Vec<&W::Doc> = claimed.iter().map(|(i, _)| &i.doc).collect();
    let found = writer
        .find_many(&docs)
        .await
        .map_err(|e| system("looking the documents up", e))?;
    let mut to_send = Vec::new();
    let now = env.clock.now();
    for ((item, entry), f) in claimed.into_iter().zip(found) {
        match f {
            Some(f) => {
                // Ours if an earlier attempt or batch of ours may have written it; else it was
                // there before us (audited as already posted, as the per-record writer does).
                let ours = entry.attempts > 1
                    || entry.target_id.is_some()
                    || earlier
                        .get(&item.subject.key.to_string())
                        .is_some_and(|b| b.is_some());
                if settle_found(env, writer, owner, &item, f, ours).await? {
                    report.found += 1;
                } else {
                    report.parked += 1;
                }
            }
            None => {
                // Sent in a batch that ended and did not land: settled, send again. Else an
                // earlier create (a per-record one, or a batch whose start was sent but is
                // unknown to the target) may still land: only look again later.
                let batch_ended = earlier
                    .get(&item.subject.key.to_string())
                    .and_then(|b| b.as_ref())
                    .is_some_and(|b| ended.get(b).copied().unwrap_or(false));
                if !batch_ended && unsettled_wait(writer.settle_window(), &entry, now).is_some() {
                    claim::release(env, &item.subject.key, owner).await;
                    report.left += 1;
                } else {
                    to_send.push(item);
                }
            }
        }
    }
    // 4. The rest, in batches.
    let mut rest = to_send;
    while !rest.is_empty() {
        let n = opts.batch.max(1).min(rest.len());
        let chunk: Vec<BulkItem<W::Doc>> = rest.drain(..n).collect();
        send_batch(env, writer, owner, chunk, opts, progress, report).await?;
    }
    Ok(())
}

/// Waits until `batch` has ended (or the target does not know it).
async fn wait<W: BulkWriter>(
    writer: &W,
    batch: &str,
    opts: &BulkOptions,
    progress: &(dyn Fn(BulkEvent) + Send + Sync),
    earlier: bool,
) -> Result<BatchState, StepError> {
    loop {
        let state = writer
            .batch_state(batch)
            .await
            .map_err(|e| system("asking for the batch state", e))?;
        match &state {
            BatchState::Running(s) => {
                progress(if earlier {
                    BulkEvent::WaitingForEarlier {
                        batch: batch.to_string(),
                        state: s.clone(),
                    }
                } else {
                    BulkEvent::State {
                        batch: batch.to_string(),
                        state: s.clone(),
                    }
                });
                tokio::time::sleep(opts.poll_every).await;
            }
            _ => return Ok(state),
        }
    }
}

async fn send_batch<W: BulkWriter, Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    writer: &W,
    owner: &str,
    chunk: Vec<BulkItem<W::Doc>>,
    opts: &BulkOptions,
    progress: &(dyn Fn(BulkEvent) + Send + Sync),
    report: &mut BulkReport,
) -> Result<(), StepError> {
    let batch = format!("mlc-{}", uuid::Uuid::new_v4().simple());
    // The batch id first: a run after a crash anywhere below finds it and waits for it.
    for item in &chunk {
        let k = &item.subject.key;
        env.store
            .put_mapping(&batch_table(&k.integration), &k.to_string(), &batch)
            .await
            .map_err(|e| StepError::new("recording the batch", e))?;
    }
    let docs: Vec<&W::Doc> = chunk.iter().map(|i| &i.doc).collect();
    let package = writer
        .upload(&batch, &docs)
        .await
        .map_err(|e| system("uploading the batch", e))?;
    if opts.crash == Some(BulkCrash::AfterUpload) {
        return Err(StepError::retry("crash injected after the upload"));
    }
    // From here the batch may land whatever happens to us: each create is unsettled until
    // the batch has ended.
    let now = env.clock.now();
    for item in &chunk {
        env.store
            .record_unsettled_create(&item.subject.key, owner, now)
            .await
            .map_err(|e| StepError::new("recording an unsettled create", e))?;
    }
    let batch = match writer.start(&batch, &package).await {
        Ok(id) if id == batch => batch,
        // The target runs it under its own id: recorded too, so a later run asks about it.
        Ok(id) => {
            for item in &chunk {
                let k = &item.subject.key;
                env.store
                    .put_mapping(&batch_table(&k.integration), &k.to_string(), &id)
                    .await
                    .map_err(|e| StepError::new("recording the batch", e))?;
            }
            id
        }
        // An answer lost on the way back may hide a started import: wait for it below as for
        // any other; a refusal the target answered leaves nothing running (the documents stay
        // unsettled until the settle window has passed: the conservative side).
        Err(e) if !e.may_have_succeeded() => {
            for item in &chunk {
                claim::release(env, &item.subject.key, owner).await;
            }
            return Err(system("starting the batch", e));
        }
        Err(e) => {
            tracing::warn!(%batch, error = %e, "batch start outcome unknown; waiting for it");
            batch
        }
    };
    report.batches += 1;
    progress(BulkEvent::Sent {
        batch: batch.clone(),
        documents: chunk.len(),
    });
    if opts.crash == Some(BulkCrash::AfterStart) {
        return Err(StepError::retry(
            "crash injected after the batch was started",
        ));
    }
    let state = wait(writer, &batch, opts, progress, false).await?;
    let state_name = match &state {
        BatchState::Ended(s) | BatchState::Running(s) => s.clone(),
        BatchState::Unknown => "Unknown".into(),
    };
    let refused: HashMap<String, String> = if matches!(state, BatchState::Ended(_)) {
        writer
            .refusals(&batch)
            .await
            .map_err(|e| system("reading the batch's errors", e))?
            .into_iter()
            .collect()
    } else {
        HashMap::new()
    };
    let found = writer
        .find_many(&docs)
        .await
        .map_err(|e| system("looking the batch up", e))?;
    let (mut landed, mut parked, mut left) = (0, 0, 0);
    for (item, f) in chunk.into_iter().zip(found) {
        match f {
            Some(f) => {
                if settle_found(env, writer, owner, &item, f, true).await? {
                    landed += 1;
                } else {
                    parked += 1;
                }
            }
            None => match refused.get(&writer.batch_key(&item.doc)) {
                Some(words) => {
                    let why = format!("refused {}: {words}", writer.what(&item.doc));
                    park(env, owner, &item, why).await?;
                    parked += 1;
                }
                None => {
                    claim::release(env, &item.subject.key, owner).await;
                    left += 1;
                }
            },
        }
    }
    report.landed += landed;
    report.parked += parked;
    report.left += left;
    progress(BulkEvent::Reconciled {
        batch,
        state: state_name,
        landed,
        parked,
        left,
    });
    Ok(())
}

/// A document found in the target: finished when partial, then completed in the ledger and
/// audited as the per-record writer does (same once key, so a later poll's repeat is counted
/// on this row). `false`: finishing it was refused, and it was parked.
async fn settle_found<W: BulkWriter, Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    writer: &W,
    owner: &str,
    item: &BulkItem<W::Doc>,
    found: Found<W::Record>,
    ours: bool,
) -> Result<bool, StepError> {
    let written: Written = match found {
        Found::Final(w) => w,
        Found::Partial(record) => {
            let id = writer.id_of(&item.doc, &record);
            env.store
                .record_target(&item.subject.key, owner, &id)
                .await
                .map_err(|e| StepError::new("recording the target id", e))?;
            match writer.finish(&item.doc, record, false).await {
                Ok(w) => w,
                Err(SystemError::Rejected { message, .. }) => {
                    park(env, owner, item, message).await?;
                    return Ok(false);
                }
                Err(e) => {
                    return Err(system(&format!("finishing {}", writer.what(&item.doc)), e));
                }
            }
        }
    };
    let key = &item.subject.key;
    // Parked before (a mapping was missing, a refused row fixed since): it is in now.
    env.store
        .unpark(&key.integration, item.subject.kind.as_str(), &key.source_id)
        .await
        .map_err(|e| StepError::new("unparking", e))?;
    apply_links(env, &item.links).await?;
    claim::complete(env, key, owner, &written.id, &written.number).await?;
    let mut audit = item.subject.audit.clone();
    audit.at = env.clock.now();
    audit.status = if ours {
        AuditStatus::Posted
    } else {
        AuditStatus::AlreadyPosted
    };
    let audit = if written.id.is_empty() {
        audit
    } else {
        audit.with_target(&written.id, Some(&written.number))
    };
    claim::write_once(env, audit, &written_key(key, &writer.target(), &written.id)).await?;
    Ok(true)
}

async fn park<Q: Queue, S: Store, C: Clock, D>(
    env: &Env<Q, S, C>,
    owner: &str,
    item: &BulkItem<D>,
    why: String,
) -> Result<(), StepError> {
    let key = &item.subject.key;
    claim::release(env, key, owner).await;
    let retry = retry_message(&item.subject, key);
    super::map::park(env, &retry, item.subject.number.clone(), why).await?;
    Ok(())
}
