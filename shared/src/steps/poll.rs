//! Poll step: read what changed since the stored watermark, enqueue it, and only then advance
//! the watermark. The poll cannot lose a document: the upper bound is fixed when it starts,
//! pages follow the source's own cursor (keyset or continuation, never an offset over a set
//! that changes mid-read), and the next lower bound overlaps the last watermark.

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};

use super::{Env, IngestMessage, StepError, audit_item, once_key};
use crate::config::IntegrationConfig;
use crate::ports::{
    AuditStatus, Clock, Feed, FeedMode, Queue, QueueName, Source, Step, Store, Watermark, Window,
};

#[derive(Clone, Debug)]
pub struct PollReport {
    /// The window polled (`None` for a state queue).
    pub window: Option<Window>,
    pub pages: u32,
    pub enqueued: u32,
    pub unreadable: u32,
    /// False when another poller moved the watermark first (harmless: the ledger absorbs
    /// the overlap).
    pub watermark_advanced: bool,
    /// The integration's other feeds polled in the same cycle: (feed, documents queued).
    pub others: Vec<(String, u32)>,
}

/// The stored watermark under `key`, and where the next poll starts: the watermark minus the
/// integration's overlap, else its `start_from`, else 30 days ago.
pub(crate) async fn lower_bound<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    key: &str,
    integration: &IntegrationConfig,
) -> Result<(Option<Watermark>, DateTime<Utc>), StepError> {
    let stored = env
        .store
        .watermark(key)
        .await
        .map_err(|e| StepError::new("reading the watermark", e))?;
    let lower = match &stored {
        Some(w) => {
            let at = DateTime::parse_from_rfc3339(&w.value).map_err(|e| {
                StepError::new(&format!("stored watermark '{}' of {key}", w.value), e)
            })?;
            at.with_timezone(&Utc) - Duration::seconds(integration.poll_overlap_secs as i64)
        }
        None => integration
            .start_from
            .unwrap_or_else(|| env.clock.now() - Duration::days(30)),
    };
    Ok((stored, lower))
}

/// Moves the watermark from `stored` to `upper` (compare-and-set); false when another poller
/// moved it first. Call only once everything up to `upper` is queued.
pub(crate) async fn advance<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    key: &str,
    stored: Option<&Watermark>,
    upper: DateTime<Utc>,
) -> Result<bool, StepError> {
    env.store
        .set_watermark(key, stored.map(|w| w.version), &upper.to_rfc3339())
        .await
        .map_err(|e| StepError::new("advancing the watermark", e))
}

/// Polls one feed of a source: a windowed feed from its watermark (minus the overlap) to now,
/// page by page from the source's own cursor; a state queue to its end. Every listed document
/// is enqueued (and audited as received) before the watermark moves.
pub async fn feed<Q: Queue, S: Store, C: Clock, Src: Source>(
    env: &Env<Q, S, C>,
    source: &Src,
    feed: &Feed,
    integration: &IntegrationConfig,
    watermark_key: &str,
) -> Result<PollReport, StepError> {
    let kind = feed.kind;
    let (stored, window, resolution) = match feed.mode {
        FeedMode::Window { resolution } => {
            let (stored, lower) = lower_bound(env, watermark_key, integration).await?;
            let step = TimeDelta::from_std(resolution)
                .ok()
                .filter(|d| *d > TimeDelta::zero())
                .unwrap_or(TimeDelta::seconds(1));
            // The current tick is included (the bound is exclusive): what is written later in
            // it is within the next poll's overlap.
            let upper = env
                .clock
                .now()
                .duration_trunc(step)
                .unwrap_or(env.clock.now())
                + step;
            let lower = lower.duration_trunc(step).unwrap_or(lower);
            (stored, Some(Window { lower, upper }), step)
        }
        FeedMode::StateQueue => (None, None, TimeDelta::zero()),
    };
    let mut report = PollReport {
        window,
        pages: 0,
        enqueued: 0,
        unreadable: 0,
        watermark_advanced: false,
        others: Vec::new(),
    };
    let mut cursor: Option<String> = None;
    loop {
        let page = source
            .page(feed, window, cursor.as_deref())
            .await
            .map_err(|e| StepError::system(&format!("listing {}s", kind.as_str()), e))?;
        report.pages += 1;
        let read_at = env.clock.now();
        for e in &page.unreadable {
            report.unreadable += 1;
            let item = audit_item(
                env.clock.now(),
                &integration.name,
                kind.as_str(),
                "(unknown)",
                Step::Poll,
                AuditStatus::Rejected,
            )
            .with_error(e.clone());
            env.store
                .append_audit(&item)
                .await
                .map_err(|e| StepError::new("writing the audit trail", e))?;
        }
        let messages: Vec<_> = page
            .refs
            .iter()
            .map(|r| {
                IngestMessage {
                    integration: integration.name.clone(),
                    kind,
                    source_id: r.id.clone(),
                    version: r.version.map(|t| match window {
                        // A version in the last tick of the window may change again within that
                        // tick, keeping its timestamp. Such a "hot" version must not share a
                        // dedup id with the next poll's sighting, or the queue would drop the
                        // change.
                        Some(w) if t >= w.upper - resolution => {
                            format!("{}~{}", t.to_rfc3339(), uuid::Uuid::new_v4().simple())
                        }
                        _ => t.to_rfc3339(),
                    }),
                    via: "poll".into(),
                    document: None,
                }
                // What the listing already holds goes along, so the map step does not read it
                // again (issue #16 item 5); a document too large for the queue is read there.
                .carrying(r.document.clone(), read_at)
            })
            .collect();
        if !messages.is_empty() {
            env.queue
                .send(
                    QueueName::Ingest,
                    messages.iter().map(IngestMessage::to_outgoing).collect(),
                )
                .await
                .map_err(|e| StepError::new("enqueueing polled documents", e))?;
            report.enqueued += messages.len() as u32;
            // One row per document version: the overlap each poll reads again is counted on
            // that row, not logged again.
            for r in &page.refs {
                let item = audit_item(
                    env.clock.now(),
                    &integration.name,
                    kind.as_str(),
                    &r.id,
                    Step::Poll,
                    AuditStatus::Received,
                );
                let version = r.version.map(|t| t.to_rfc3339()).unwrap_or_default();
                let once = once_key(&[
                    "received",
                    &integration.name,
                    kind.as_str(),
                    &r.id,
                    &version,
                ]);
                env.store
                    .append_audit_once(&item, &once)
                    .await
                    .map_err(|e| StepError::new("writing the audit trail", e))?;
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // Everything up to the upper bound is enqueued: only now may the watermark move.
    if let Some(w) = window {
        report.watermark_advanced = advance(env, watermark_key, stored.as_ref(), w.upper).await?;
    }
    Ok(report)
}
