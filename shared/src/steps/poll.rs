//! Poll step: read what changed since the stored watermark, enqueue it, and only then advance
//! the watermark. See `CoupaClient::approved_invoices_page` for why the poll cannot lose an
//! invoice (fixed upper bound, keyset paging on id, overlapping lower bound).

use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::{Env, IngestMessage, StepError, audit_item};
use crate::config::IntegrationConfig;
use crate::model::DocumentKind;
use crate::ports::{AuditStatus, Clock, Queue, QueueName, Step, Store, Watermark};
use crate::systems::coupa::{CoupaClient, CoupaError, DocRef, PAGE_SIZE, PollWindow};

#[derive(Clone, Debug)]
pub struct PollReport {
    pub window: PollWindow,
    pub pages: u32,
    pub enqueued: u32,
    pub unreadable: u32,
    /// False when another poller moved the watermark first (harmless: the ledger absorbs
    /// the overlap).
    pub watermark_advanced: bool,
    /// The integration's other feeds polled in the same cycle: (feed, documents queued).
    pub others: Vec<(String, u32)>,
}

pub fn watermark_key(integration: &str) -> String {
    Feed::Invoices.watermark_key(integration)
}

/// What a Coupa poll reads. Each feed has its own watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Approved invoices (and credit notes).
    Invoices,
    PurchaseOrders,
    Suppliers,
}

impl Feed {
    pub fn watermark_key(self, integration: &str) -> String {
        let feed = match self {
            Feed::Invoices => "invoices",
            Feed::PurchaseOrders => "purchase_orders",
            Feed::Suppliers => "suppliers",
        };
        format!("{integration}/coupa/{feed}")
    }

    fn kind(self) -> DocumentKind {
        match self {
            Feed::Invoices => DocumentKind::Invoice,
            Feed::PurchaseOrders => DocumentKind::PurchaseOrder,
            Feed::Suppliers => DocumentKind::Supplier,
        }
    }

    async fn page(
        self,
        coupa: &CoupaClient,
        window: PollWindow,
        after_id: i64,
    ) -> Result<(Vec<DocRef>, Vec<CoupaError>), CoupaError> {
        match self {
            Feed::Invoices => coupa.approved_invoices_page(window, after_id).await,
            Feed::PurchaseOrders => coupa.purchase_orders_page(window, after_id).await,
            Feed::Suppliers => coupa.suppliers_page(window, after_id).await,
        }
    }
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

pub async fn coupa_invoices<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    coupa: &CoupaClient,
    integration: &IntegrationConfig,
) -> Result<PollReport, StepError> {
    coupa_feed(env, coupa, integration, Feed::Invoices).await
}

pub async fn coupa_feed<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    coupa: &CoupaClient,
    integration: &IntegrationConfig,
    feed: Feed,
) -> Result<PollReport, StepError> {
    let key = feed.watermark_key(&integration.name);
    let kind = feed.kind();
    let (stored, lower) = lower_bound(env, &key, integration).await?;
    // Coupa timestamps have whole seconds; so does the window. The current second is included
    // (the bound is exclusive): what is written later in that second is within the next poll's
    // overlap.
    let upper = env.clock.now().trunc_subsecs(0) + Duration::seconds(1);
    let window = PollWindow {
        lower: lower.trunc_subsecs(0),
        upper,
    };

    let mut report = PollReport {
        window,
        pages: 0,
        enqueued: 0,
        unreadable: 0,
        watermark_advanced: false,
        others: Vec::new(),
    };
    let mut after_id = 0i64;
    loop {
        let (refs, unreadable) = feed
            .page(coupa, window, after_id)
            .await
            .map_err(|e| StepError::system(&format!("listing Coupa {}s", kind.as_str()), e))?;
        report.pages += 1;
        let page_len = refs.len() + unreadable.len();
        for e in &unreadable {
            report.unreadable += 1;
            let item = audit_item(
                env.clock.now(),
                &integration.name,
                kind.as_str(),
                "(unknown)",
                Step::Poll,
                AuditStatus::Rejected,
            )
            .with_error(e.to_string());
            env.store
                .append_audit(&item)
                .await
                .map_err(|e| StepError::new("writing the audit trail", e))?;
        }
        if let Some(last) = refs.iter().map(|r| r.id).max() {
            after_id = last;
        }
        let messages: Vec<_> = refs
            .iter()
            .map(|r| IngestMessage {
                integration: integration.name.clone(),
                kind,
                source_id: r.id.to_string(),
                version: r.updated_at.map(|t| {
                    // Coupa's `updated-at` has whole seconds: a document updated in the second
                    // this poll ends may change again within that second, keeping its
                    // `updated-at`. Such a "hot" version must not share a dedup id with the
                    // next poll's sighting, or the queue would drop the change.
                    if t >= upper - Duration::seconds(1) {
                        format!("{}~{}", t.to_rfc3339(), uuid::Uuid::new_v4().simple())
                    } else {
                        t.to_rfc3339()
                    }
                }),
                via: "poll".into(),
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
            for m in &messages {
                let item = audit_item(
                    env.clock.now(),
                    &integration.name,
                    kind.as_str(),
                    &m.source_id,
                    Step::Poll,
                    AuditStatus::Received,
                );
                env.store
                    .append_audit(&item)
                    .await
                    .map_err(|e| StepError::new("writing the audit trail", e))?;
            }
        }
        if page_len < PAGE_SIZE {
            break;
        }
    }
    // Everything up to `upper` is enqueued: only now may the watermark move.
    report.watermark_advanced = advance(env, &key, stored.as_ref(), upper).await?;
    Ok(report)
}
