//! Integration 3: SAP Concur → Business Central. Financial Integration v4 documents READY for
//! integration (invoice payment requests and expense reports, each a state queue) are read,
//! acknowledged at once, resolved and posted as BC purchase invoices (draft →
//! `Microsoft.NAV.post` through the platform writer), then confirmed to Concur with the BC
//! posted numbers and posting dates (`postingconfirmations`, exactly once).
//!
//! Expense reports: one BC purchase invoice against the employee's vendor for what the company
//! owes the employee, and one per configured card issuer (`resolve.rs`).
//!
//! Payment confirmations: with `[integrations.sync] payments = true`, an expense report whose
//! employee invoice BC shows paid is confirmed paid to Concur (`payments.rs`).
//!
//! Webhooks: `readyForIntegration` events on `/webhooks/<integration>/concur`, verified by
//! `Concur-Signature` (`webhook.rs`); an event only queues a read by document id.
//!
//! Vendors: with `[systems.<concur>.vendors]`, BC vendors go to Concur's Invoice Vendor API
//! v3.1 each cycle, only what changed (`vendors.rs`).
//!
//! Mutual TLS is the transport's (API Gateway custom domain, `[runtime.webhook_tls]`); with
//! `webhook_client_cn`, the verified certificate's CN is pinned here.
//!
//! Not built yet (issue #13): backing out the posted part of a report whose later document BC
//! refuses (§2.7.2), payment confirmations of invoice payment requests (FIS takes expense only).

mod backout;
mod documents;
mod payments;
mod resolve;
mod vendors;
pub mod webhook;

use std::collections::BTreeMap;

use crate::config::{ConcurVendorExport, Config, IntegrationConfig, SystemConfig};
use crate::flows::{BoxFuture, Flow, SecretLookup, Upkeep, WebhookReply, WebhookRequest};
use crate::model::DocumentKind;
use crate::ports::{Clock, Feed, LedgerKey, Queue, Store};
use crate::steps::map::{MapCrash, MapOutcome};
use crate::steps::poll::{self, PollReport};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError};
use crate::systems::Instances;
use crate::systems::business_central::BcClient;
use crate::systems::concur::{ConcurSource, EXPENSES, INVOICES};

pub use resolve::{ReportDoc, ResolvedReport};

/// The poll key of a feed (a state queue keeps no watermark; the key only names the feed).
pub fn feed_key(integration: &str, feed: &Feed) -> String {
    format!("{integration}/concur/{}", feed.name)
}

pub struct ConcurBc {
    cfg: IntegrationConfig,
    concur: ConcurSource,
    /// BC, at this integration's company.
    bc: BcClient,
    feeds: Vec<Feed>,
    confirm_unmappable: bool,
    card_vendors: BTreeMap<String, String>,
    /// Name of the secret holding Concur's public key; none: events are refused.
    webhook_public_key: Option<String>,
    /// The CN the events' verified client certificate must carry; none: not checked.
    webhook_client_cn: Option<String>,
    vendors: Option<ConcurVendorExport>,
}

impl ConcurBc {
    pub fn new(cfg: &Config, i: &IntegrationConfig, systems: &Instances) -> Result<Self, String> {
        let r = cfg.resolved(&i.name)?;
        let concur = systems.concur(&r.source.name)?.clone();
        let company = r
            .company
            .ok_or_else(|| format!("no company of system '{}'", r.target.name))?;
        let bc = systems
            .business_central(&r.target.name)?
            .for_company(&company);
        let SystemConfig::Concur(c) = &r.source.config else {
            return Err(format!(
                "source is {}, not concur",
                r.source.config.type_name()
            ));
        };
        let mut feeds = Vec::new();
        for t in &c.document_types {
            match t.as_str() {
                "invoice" => feeds.push(INVOICES),
                "expense" => feeds.push(EXPENSES),
                other => {
                    return Err(format!(
                        "systems.{}: document_types: '{other}' is not read (invoice, expense)",
                        r.source.name
                    ));
                }
            }
        }
        Ok(Self {
            cfg: i.clone(),
            concur,
            bc,
            feeds,
            confirm_unmappable: c.confirm_unmappable,
            card_vendors: c.card_vendors.clone(),
            webhook_public_key: c.webhook_public_key.clone(),
            webhook_client_cn: c.webhook_client_cn.clone(),
            vendors: c.vendors.clone(),
        })
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn poll_feeds<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
    ) -> Result<PollReport, StepError> {
        let mut report: Option<PollReport> = None;
        for feed in &self.feeds {
            let r = poll::feed(
                env,
                &self.concur,
                feed,
                &self.cfg,
                &feed_key(self.name(), feed),
            )
            .await?;
            match &mut report {
                None => report = Some(r),
                Some(first) => {
                    first.pages += r.pages;
                    first.unreadable += r.unreadable;
                    first
                        .others
                        .push((format!("Concur {} documents", feed.name), r.enqueued));
                }
            }
        }
        let mut report = report.unwrap_or(PollReport {
            window: None,
            pages: 0,
            enqueued: 0,
            unreadable: 0,
            watermark_advanced: false,
            others: Vec::new(),
        });
        if self.cfg.sync.payments {
            let queued = payments::poll_paid(env, &self.bc, &self.cfg).await?;
            report.others.push(("payment confirmations".into(), queued));
        }
        if let Some(v) = &self.vendors {
            let r = vendors::sync(env, &self.concur.client, &self.bc, self.name(), v).await?;
            tracing::info!(
                integration = self.name(),
                sent = r.sent,
                unchanged = r.unchanged,
                refused = r.refused,
                "BC vendors to Concur"
            );
            report
                .others
                .push(("Concur invoice vendors sent".into(), r.sent));
        }
        crate::steps::map::retry_parked(env, Some(self.name())).await?;
        Ok(report)
    }

    async fn map_one<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        msg: &IngestMessage,
        crash: Option<MapCrash>,
    ) -> Result<MapOutcome, StepError> {
        match msg.kind {
            DocumentKind::Invoice | DocumentKind::ExpenseReport => {
                documents::map_document(self, env, msg, crash).await
            }
            other => Ok(MapOutcome::Skipped(format!(
                "Concur {} are not read by this integration",
                other.as_str()
            ))),
        }
    }

    async fn post_one<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        owner: &str,
        msg: &PostEnvelope,
        crash: Option<CrashPoint>,
    ) -> Result<PostOutcome, StepError> {
        match msg.kind {
            DocumentKind::Invoice | DocumentKind::ExpenseReport => {
                documents::post_document(self, env, owner, msg, crash).await
            }
            DocumentKind::Payment => {
                let task: payments::PaidTask = msg.payload().map_err(StepError::Poison)?;
                payments::confirm(
                    env,
                    &self.concur.client,
                    self.bc.company_id(),
                    owner,
                    self.name(),
                    &task,
                )
                .await
            }
            other => Err(StepError::Poison(format!(
                "integration '{}' posts no {}",
                self.name(),
                other.as_str()
            ))),
        }
    }
}

impl<Q, S, C> Flow<Q, S, C> for ConcurBc
where
    Q: Queue + 'static,
    S: Store + 'static,
    C: Clock + 'static,
{
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn targets(&self) -> Vec<String> {
        // Documents go to BC; posting confirmations back to Concur.
        vec![
            self.bc.target_identity(),
            self.concur.client.target_identity(),
        ]
    }

    fn ledger_key(&self, kind: &str, source_id: &str) -> Option<LedgerKey> {
        let ledger_kind = match kind {
            "invoice" => documents::INVOICE_KIND,
            documents::CONFIRM_KIND => documents::CONFIRM_KIND,
            payments::KIND => payments::KIND,
            // An expense report is several BC documents, each its own entry.
            _ => return None,
        };
        Some(LedgerKey {
            integration: self.cfg.name.clone(),
            kind: ledger_kind.into(),
            source_id: source_id.into(),
        })
    }

    fn poll<'a>(&'a self, env: &'a Env<Q, S, C>) -> BoxFuture<'a, Result<PollReport, StepError>> {
        Box::pin(self.poll_feeds(env))
    }

    fn map<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        msg: &'a IngestMessage,
        crash: Option<MapCrash>,
    ) -> BoxFuture<'a, Result<MapOutcome, StepError>> {
        Box::pin(self.map_one(env, msg, crash))
    }

    fn post<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        owner: &'a str,
        msg: &'a PostEnvelope,
        crash: Option<CrashPoint>,
    ) -> BoxFuture<'a, Result<PostOutcome, StepError>> {
        Box::pin(self.post_one(env, owner, msg, crash))
    }

    fn webhook_channels(&self) -> Vec<&'static str> {
        vec![webhook::CHANNEL]
    }

    fn webhook<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        secrets: &'a dyn SecretLookup,
        req: WebhookRequest<'a>,
    ) -> BoxFuture<'a, WebhookReply> {
        Box::pin(async move {
            match req.channel {
                webhook::CHANNEL => webhook::receive(self, env, secrets, &req).await,
                other => {
                    tracing::warn!(channel = ?other, "webhook refused: no such channel");
                    WebhookReply::refused()
                }
            }
        })
    }

    fn upkeep<'a>(
        &'a self,
        _env: &'a Env<Q, S, C>,
        _secrets: &'a dyn SecretLookup,
    ) -> BoxFuture<'a, Result<Vec<Upkeep>, StepError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
