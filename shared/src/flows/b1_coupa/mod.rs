//! Integration 4: SAP Business One → Coupa. B1 purchase orders become Coupa external purchase
//! orders (natural key: the B1 `DocNum` with the B1 system's prefix; updated on change;
//! cancelled when B1 cancels them), and B1 A/P invoices become Coupa invoices (natural key:
//! supplier + the supplier's invoice number), against the Coupa PO when the B1 invoice was
//! copied from one (`BaseType` 22). Every write goes through the one exactly-once writer.
//!
//! Accounts: a B1 line's `CostingCode` … `CostingCode5` (its lines of business) are Coupa
//! account segments 1–5, position for position. A configurable mapping table (and the G/L
//! `AccountCode` of service lines) is not built yet. The Coupa supplier is the one whose
//! `number` is the B1 `CardCode`. Supplier business partners go to Coupa (`sync.suppliers =
//! "create"`) or both ways (`"both_ways"`: Coupa's suppliers come back to B1, with echo
//! suppression and audited conflicts; see `suppliers.rs`).

mod invoices;
mod orders;
mod payments;
mod suppliers;
mod webhook;

pub use webhook::SIGNATURE_HEADER;

use crate::config::{Config, IntegrationConfig, SupplierSync, SystemConfig};
use crate::flows::{BoxFuture, Flow, SecretLookup, Upkeep, WebhookReply, WebhookRequest};
use crate::model::{AccountCoding, DocumentKind};
use crate::ports::{Clock, Feed, LedgerKey, Namespaced, Queue, Store};
use crate::steps::map::{MapCrash, MapOutcome};
use crate::steps::poll::{self, PollReport};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::webhook::WebhookError;
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError};
use crate::systems::Instances;
use crate::systems::coupa::CoupaClient;
use crate::systems::sap_b1::{self, B1Client};

/// The watermark of one of the integration's B1 feeds.
pub fn watermark_key(integration: &str, feed: &str) -> String {
    format!("{integration}/sap_b1/{feed}")
}

pub struct B1Coupa {
    cfg: IntegrationConfig,
    b1: B1Client,
    coupa: CoupaClient,
    /// The B1 company as a target (`sap_b1:{host}/{CompanyDB}`), for suppliers written back.
    b1_identity: String,
    po_prefix: String,
    /// Name of the secret holding the B1 webhook HMAC key; none: webhooks are refused.
    webhook_secret: Option<String>,
}

impl B1Coupa {
    pub fn new(cfg: &Config, i: &IntegrationConfig, systems: &Instances) -> Result<Self, String> {
        let r = cfg.resolved(&i.name)?;
        let b1 = systems.sap_b1(&r.source.name)?.clone();
        let coupa = systems.coupa(&r.target.name)?.clone();
        let (po_prefix, webhook_secret, company_db) = match &r.source.config {
            SystemConfig::SapB1(c) => (
                c.po_number_prefix.clone(),
                c.webhook_secret.clone(),
                c.company_db.clone(),
            ),
            other => return Err(format!("source is {}, not sap_b1", other.type_name())),
        };
        Ok(Self {
            cfg: i.clone(),
            b1_identity: b1.identity(&company_db),
            b1,
            coupa,
            po_prefix,
            webhook_secret,
        })
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The Coupa PO number of a B1 purchase order number.
    pub(crate) fn po_number(&self, doc_num: &str) -> String {
        format!("{}{doc_num}", self.po_prefix)
    }

    async fn poll_feeds<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
    ) -> Result<PollReport, StepError> {
        let name = self.name();
        let key = |f: &Feed| watermark_key(name, f.name);
        // Suppliers first, then orders, then invoices: what a document names is queued before
        // it (a document that still meets a missing supplier or order is parked with Coupa's
        // words and retried at the end of the poll).
        let mut supplier_count = None;
        if matches!(
            self.cfg.sync.suppliers,
            SupplierSync::Create | SupplierSync::BothWays
        ) {
            let f = &sap_b1::SUPPLIERS;
            supplier_count = Some(
                poll::feed(env, &self.b1, f, &self.cfg, &key(f))
                    .await?
                    .enqueued,
            );
        }
        let mut coupa_supplier_count = None;
        if self.cfg.sync.suppliers == SupplierSync::BothWays {
            // The target's own feed, its ids kept apart from B1's (`coupa:<id>`).
            let coupa = Namespaced {
                prefix: suppliers::COUPA_IDS,
                inner: &self.coupa,
            };
            let f = &crate::systems::coupa::SUPPLIERS;
            let wm = format!("{name}/coupa/{}", f.name);
            coupa_supplier_count = Some(poll::feed(env, &coupa, f, &self.cfg, &wm).await?.enqueued);
        }
        let orders = &sap_b1::PURCHASE_ORDERS;
        let o = poll::feed(env, &self.b1, orders, &self.cfg, &key(orders)).await?;
        let invoices = &sap_b1::INVOICES;
        let mut report = poll::feed(env, &self.b1, invoices, &self.cfg, &key(invoices)).await?;
        report.others.push(("purchase orders".into(), o.enqueued));
        if self.cfg.sync.payments {
            let f = &sap_b1::PAYMENTS;
            let p = poll::feed(env, &self.b1, f, &self.cfg, &key(f)).await?;
            report.others.push(("payments".into(), p.enqueued));
        }
        if let Some(n) = supplier_count {
            report.others.push(("suppliers".into(), n));
        }
        if let Some(n) = coupa_supplier_count {
            report.others.push(("Coupa suppliers".into(), n));
        }
        crate::steps::map::retry_parked(env, Some(name)).await?;
        Ok(report)
    }

    async fn map_one<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        msg: &IngestMessage,
        crash: Option<MapCrash>,
    ) -> Result<MapOutcome, StepError> {
        match msg.kind {
            DocumentKind::PurchaseOrder => orders::map_order(self, env, msg, crash).await,
            DocumentKind::Invoice => invoices::map_invoice(self, env, msg, crash).await,
            DocumentKind::Supplier => suppliers::map_supplier(self, env, msg, crash).await,
            DocumentKind::Payment => payments::map_payment(self, env, msg, crash).await,
            other => Err(StepError::Poison(format!(
                "integration {} takes no {} documents",
                self.name(),
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
            DocumentKind::PurchaseOrder => orders::post_order(self, env, owner, msg, crash).await,
            DocumentKind::Invoice => invoices::post_invoice(self, env, owner, msg, crash).await,
            DocumentKind::Supplier => suppliers::post_supplier(self, env, owner, msg, crash).await,
            DocumentKind::Payment => payments::post_payment(self, env, owner, msg, crash).await,
            other => Err(StepError::Poison(format!(
                "integration {} posts no {} documents",
                self.name(),
                other.as_str()
            ))),
        }
    }
}

/// The webhook channel of B1 events.
const B1_CHANNEL: &str = "b1";

impl B1Coupa {
    /// `POST /webhooks/<integration>/b1`: verified, then a read of the named document queued.
    async fn b1_webhook<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        secrets: &dyn SecretLookup,
        req: WebhookRequest<'_>,
    ) -> WebhookReply {
        let refuse = |e: WebhookError| {
            tracing::warn!(error = %e, "B1 webhook refused");
            match e {
                WebhookError::Unauthorized(_) => WebhookReply::refused(),
                e => WebhookReply::text(e.http_status(), format!("{e}\n")),
            }
        };
        let (true, Some(name)) = (req.channel == B1_CHANNEL, &self.webhook_secret) else {
            tracing::warn!(channel = ?req.channel, "webhook refused: no such channel or no secret");
            return WebhookReply::refused();
        };
        let secret = match secrets.secret(name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "B1 webhook secret unavailable");
                return WebhookReply::text(500, "the webhook secret is unavailable\n");
            }
        };
        let (kind, key) =
            match webhook::verified_event(&secret, req.header(SIGNATURE_HEADER), req.body) {
                Ok(e) => e,
                Err(e) => return refuse(e),
            };
        if req.method != "POST" {
            return WebhookReply::text(405, "B1 events are POSTed\n");
        }
        // Each event its own read: a second event for the same document within the queue's
        // dedup window must not be dropped as a repeat of the first.
        let trigger = format!("event-{}", uuid::Uuid::new_v4().simple());
        let refs = [(key.clone(), Some(trigger))];
        match crate::steps::webhook::accept(env, self.name(), kind, &refs).await {
            Ok(()) => WebhookReply::text(
                202,
                format!("queued a read of B1 {} {key}\n", kind.as_str()),
            ),
            Err(e) => refuse(e),
        }
    }
}

/// A B1 line's distribution rules as Coupa account segments, in their positions ("" for an
/// empty one); trailing empties dropped.
pub(crate) fn segments(a: &AccountCoding) -> Vec<String> {
    let mut out: Vec<String> = a
        .segments
        .iter()
        .map(|s| s.clone().unwrap_or_default())
        .collect();
    while out.last().is_some_and(|s| s.is_empty()) {
        out.pop();
    }
    out
}

impl<Q, S, C> Flow<Q, S, C> for B1Coupa
where
    Q: Queue + 'static,
    S: Store + 'static,
    C: Clock + 'static,
{
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn targets(&self) -> Vec<String> {
        let mut t = vec![self.coupa.target_identity()];
        if self.cfg.sync.suppliers == SupplierSync::BothWays {
            t.push(self.b1_identity.clone());
        }
        t
    }

    fn ledger_key(&self, kind: &str, source_id: &str) -> Option<LedgerKey> {
        // Orders are written once per content: no single entry to forget.
        (kind == "invoice").then(|| LedgerKey {
            integration: self.cfg.name.clone(),
            kind: invoices::KIND.into(),
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
        if self.webhook_secret.is_some() {
            vec![B1_CHANNEL]
        } else {
            Vec::new()
        }
    }

    fn webhook<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        secrets: &'a dyn SecretLookup,
        req: WebhookRequest<'a>,
    ) -> BoxFuture<'a, WebhookReply> {
        Box::pin(self.b1_webhook(env, secrets, req))
    }

    fn upkeep<'a>(
        &'a self,
        _env: &'a Env<Q, S, C>,
        _secrets: &'a dyn SecretLookup,
    ) -> BoxFuture<'a, Result<Vec<Upkeep>, StepError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
