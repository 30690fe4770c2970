//! Map step, the generic half: fetch the source document as canonical, park what cannot go on
//! (with the reason, retried when someone has acted), hand what is resolved to the post queue.
//! What "resolved" means is the flow's (`flows/`): vendor, accounts, dimensions for its target.

use super::{Env, IngestMessage, PostEnvelope, StepError, audit_item, claim, once_key};
use crate::ports::{
    AuditItem, AuditStatus, Clock, ParkedDoc, Queue, QueueName, Source, SourceDocument, Step,
    Store, SystemError,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOutcome {
    Mapped,
    Parked(String),
    /// Not for us (any more): e.g. no longer approved.
    Skipped(String),
}

/// Where the step stops when a test asks it to crash (fault injection in tests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapCrash {
    /// Before the source document is fetched.
    BeforeSourceRead,
    /// After the source document was fetched, before it is mapped or queued.
    AfterSourceRead,
    /// After the post message was queued, before the document is unparked and audited.
    AfterEnqueue,
}

/// The document `msg` refers to, read from `source`; or the outcome when it cannot go on (it
/// is parked: the source refused the id, no longer has it, or it cannot be read).
pub async fn fetch<Q: Queue, S: Store, C: Clock, Src: Source>(
    env: &Env<Q, S, C>,
    source: &Src,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<Result<SourceDocument, MapOutcome>, StepError> {
    if crash == Some(MapCrash::BeforeSourceRead) {
        return Err(StepError::retry("crash injected before the source read"));
    }
    // The poll's own reading of the document, when it carried one and it is fresh: no second
    // read of what the poll already holds (issue #16 item 5). An older one (the message waited
    // in a backlog) is read again, so a change made meanwhile is seen (see
    // `CARRIED_DOCUMENT_MAX_AGE`).
    let now = env.clock.now();
    let fresh = msg.document.as_ref().filter(|c| {
        c.read_at >= now
            || (now - c.read_at)
                .to_std()
                .is_ok_and(|age| age <= super::CARRIED_DOCUMENT_MAX_AGE)
    });
    let read = match fresh {
        Some(c) => Ok(c.document.clone()),
        None => source.fetch(msg.kind, &msg.source_id).await,
    };
    let doc = match read {
        Ok(SourceDocument::Unreadable { number, reason }) => {
            return park(env, msg, number, reason).await.map(Err);
        }
        Ok(doc) => doc,
        Err(SystemError::Rejected { message, .. }) => {
            return park(env, msg, None, message).await.map(Err);
        }
        // Deleted at the source (or never there): nothing a retry can change; parked, so it
        // is visible and a replay can try again.
        Err(SystemError::NotFound(message)) => {
            let why = format!("the source does not have it: {message}");
            return park(env, msg, None, why).await.map(Err);
        }
        Err(e) => {
            let what = format!(
                "fetching {} {}",
                msg.kind.as_str().replace('_', " "),
                msg.source_id
            );
            return Err(StepError::system(&what, e));
        }
    };
    if crash == Some(MapCrash::AfterSourceRead) {
        return Err(StepError::retry("crash injected after the source read"));
    }
    Ok(Ok(doc))
}

/// Hands a resolved document to the post step: queued, then unparked, then audited as mapped
/// (`audit` is the document's item; its status is set here).
pub async fn hand_over<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    post: &PostEnvelope,
    audit: AuditItem,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    env.queue
        .send(QueueName::Post, vec![post.to_outgoing()])
        .await
        .map_err(|e| StepError::new("enqueueing for posting", e))?;
    if crash == Some(MapCrash::AfterEnqueue) {
        return Err(StepError::retry(
            "crash injected after the post message was queued",
        ));
    }
    let was_parked = claim::unpark(env, msg).await?;
    let mut item = audit;
    item.status = AuditStatus::Mapped;
    if was_parked {
        // Out of the parked list: a change of state, always its own row.
        claim::write(env, item).await?;
    } else {
        // A version mapped again (a redelivery, a poll past the queue's dedup window) is
        // counted on its first row.
        let once = once_key(&[
            "mapped",
            &msg.integration,
            msg.kind.as_str(),
            &msg.source_id,
            post.version.as_deref().unwrap_or_default(),
        ]);
        claim::write_once(env, item, &once).await?;
    }
    Ok(MapOutcome::Mapped)
}

/// Leaves a document alone (not for the target, e.g. not approved): unparked, audited as
/// rejected with why.
pub async fn skip<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    audit: AuditItem,
    why: String,
) -> Result<MapOutcome, StepError> {
    claim::unpark(env, msg).await?;
    let mut item = audit.with_error(why.clone());
    item.status = AuditStatus::Rejected;
    claim::write(env, item).await?;
    Ok(MapOutcome::Skipped(why))
}

/// Parks the document; the audit trail gets an item only when the reason is new, so a
/// document retried every poll does not flood it.
pub async fn park<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    number: Option<String>,
    reason: String,
) -> Result<MapOutcome, StepError> {
    let kind = msg.kind.as_str();
    let already = env
        .store
        .parked()
        .await
        .map_err(|e| StepError::new("reading parked documents", e))?
        .into_iter()
        .any(|p| {
            p.integration == msg.integration
                && p.kind == kind
                && p.source_id == msg.source_id
                && p.reason == reason
        });
    let mut retry = msg.clone();
    retry.via = "retry".into();
    let doc = ParkedDoc {
        integration: msg.integration.clone(),
        kind: kind.to_string(),
        source_id: msg.source_id.clone(),
        source_document_number: number.clone(),
        reason: reason.clone(),
        message: serde_json::to_string(&retry).expect("serialisable"),
        at: env.clock.now(),
    };
    env.store
        .park(&doc)
        .await
        .map_err(|e| StepError::new("parking", e))?;
    if !already {
        let mut item = audit_item(
            env.clock.now(),
            &msg.integration,
            kind,
            &msg.source_id,
            Step::Map,
            AuditStatus::Parked,
        )
        .with_error(reason.clone());
        item.source_document_number = number;
        claim::write(env, item).await?;
    }
    Ok(MapOutcome::Parked(reason))
}

/// Re-enqueues the parked documents of `integration` (after a mapping was added, and on each
/// of its poll cycles); every integration's when `None`.
pub async fn retry_parked<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    integration: Option<&str>,
) -> Result<usize, StepError> {
    let parked = env
        .store
        .parked()
        .await
        .map_err(|e| StepError::new("reading parked documents", e))?;
    let mut out = Vec::new();
    for p in &parked {
        if integration.is_some_and(|i| i != p.integration) {
            continue;
        }
        if let Ok(msg) = serde_json::from_str::<IngestMessage>(&p.message) {
            out.push(msg.to_outgoing());
        }
    }
    let n = out.len();
    if n > 0 {
        env.queue
            .send(QueueName::Ingest, out)
            .await
            .map_err(|e| StepError::new("re-enqueueing parked documents", e))?;
    }
    Ok(n)
}

/// The audit trail's document kind of an invoice-type document.
pub fn kind_name(kind: crate::model::InvoiceKind) -> &'static str {
    match kind {
        crate::model::InvoiceKind::Invoice => "invoice",
        crate::model::InvoiceKind::CreditNote => "credit_note",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{Db, SqliteQueue, SqliteStore};
    use crate::model::DocumentKind;
    use crate::ports::SystemClock;

    fn message(integration: &str, id: &str) -> IngestMessage {
        IngestMessage {
            integration: integration.into(),
            kind: DocumentKind::Invoice,
            source_id: id.into(),
            version: None,
            via: "poll".into(),
            document: None,
        }
    }

    #[tokio::test]
    async fn a_poll_retries_only_its_own_integrations_parked_documents() {
        let db = Db::open_in_memory().unwrap();
        let env = Env::new(
            SqliteQueue::with_defaults(db.clone()),
            SqliteStore::new(db),
            SystemClock,
        );
        park(&env, &message("a", "1"), None, "no vendor".into())
            .await
            .unwrap();
        park(&env, &message("b", "2"), None, "no vendor".into())
            .await
            .unwrap();
        assert_eq!(retry_parked(&env, Some("a")).await.unwrap(), 1);
        let queued = env.queue.receive(QueueName::Ingest, 10).await.unwrap();
        assert_eq!(queued.len(), 1);
        let m: IngestMessage = serde_json::from_str(&queued[0].body).unwrap();
        assert_eq!((m.integration.as_str(), m.via.as_str()), ("a", "retry"));
    }
}
