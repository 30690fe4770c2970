//! Integration 2: Coupa → Dynamics 365 Finance & Operations. Approved Coupa invoices and credit
//! notes become pending vendor invoices (`VendorInvoiceHeaders` then `VendorInvoiceLines`) in
//! the legal entity the integration's rule names, exactly once.
//!
//! With `sync.payments`, an invoice F&O posted and paid is recorded as a payment on its Coupa
//! invoice, exactly once (change detection: `payments.rs`).
//!
//! First increment: invoices and credit notes, polled and by Coupa call-out; payments back;
//! suppliers.
//! With `sync.suppliers`, Coupa suppliers are matched to or created as vendors in every legal
//! entity of the integration (`suppliers.rs`).
//!
//! With `sync.purchase_orders`, Coupa purchase orders become F&O purchase orders, kept in step
//! line by line with entity tags (`orders.rs`).
//!
//! `mlc backfill` loads many approved invoices at once through F&O's Data Management package
//! API, exactly once with the per-record path (`backfill.rs`).
//!
//! Not yet: removing lines or orders cancelled in Coupa.

mod backfill;
mod invoices;
mod orders;
mod payments;
mod resolve;
mod suppliers;

use crate::config::{Config, IntegrationConfig, SupplierSync, SystemConfig};
use crate::flows::{BoxFuture, Flow, SecretLookup, Upkeep, WebhookReply, WebhookRequest};
use crate::model::{DocumentKind, PaymentBack};
use crate::ports::{Clock, LedgerKey, Queue, Store};
use crate::steps::bulk::{BackfillOptions, BackfillReport, BulkEvent};
use crate::steps::map::{MapCrash, MapOutcome};
use crate::steps::poll::{self, PollReport};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::webhook::WebhookError;
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError};
use crate::systems::Instances;
use crate::systems::coupa::{self, CoupaClient};
use crate::systems::dynamics_fo::{DimensionFormat, FoClient, FoOrder, FoVendor};

pub use payments::{
    PaidPollReport, invoice_key, reference as payment_reference,
    watermark_key as paid_watermark_key,
};
pub use resolve::MAX_INVOICE_NUMBER;

/// The watermark of one of the integration's Coupa feeds.
pub fn watermark_key(integration: &str, feed: &str) -> String {
    format!("{integration}/coupa/{feed}")
}

/// The webhook channel: Coupa's call-outs.
const COUPA: &str = "coupa";

pub struct CoupaFo {
    cfg: IntegrationConfig,
    coupa: CoupaClient,
    fo: FoClient,
    /// The integration's company, else the system's `default_legal_entity`.
    default_legal_entity: Option<String>,
    /// The environment's ledger dimension format (B5).
    format: DimensionFormat,
    webhook_secret: Option<String>,
}

impl CoupaFo {
    pub fn new(cfg: &Config, i: &IntegrationConfig, systems: &Instances) -> Result<Self, String> {
        let r = cfg.resolved(&i.name)?;
        let coupa = systems.coupa(&r.source.name)?.clone();
        let fo = systems.finance_operations(&r.target.name)?.clone();
        let format = match &r.target.config {
            SystemConfig::FinanceOperations(f) => DimensionFormat {
                delimiter: f.dimension_delimiter,
                ledger: f.ledger_dimension_format.clone(),
            },
            other => {
                return Err(format!(
                    "target is {}, not finance_operations",
                    other.type_name()
                ));
            }
        };
        let webhook_secret = match &r.source.config {
            SystemConfig::Coupa(c) => c.webhook_secret.clone(),
            other => return Err(format!("source is {}, not coupa", other.type_name())),
        };
        if r.company.is_none() && i.mapping.legal_entity_segment.is_none() {
            return Err(format!(
                "no legal entity: set `company`, `default_legal_entity` on [systems.{}], or \
                 mapping.legal_entity_segment",
                r.target.name
            ));
        }
        Ok(Self {
            cfg: i.clone(),
            coupa,
            fo,
            default_legal_entity: r.company,
            format,
            webhook_secret,
        })
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn poll_feeds<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
    ) -> Result<PollReport, StepError> {
        let key = watermark_key(self.name(), coupa::INVOICES.name);
        let mut report = poll::feed(env, &self.coupa, &coupa::INVOICES, &self.cfg, &key).await?;
        if self.cfg.sync.purchase_orders {
            let f = &coupa::PURCHASE_ORDERS;
            let key = watermark_key(self.name(), f.name);
            let r = poll::feed(env, &self.coupa, f, &self.cfg, &key).await?;
            report.others.push(("purchase orders".into(), r.enqueued));
        }
        if self.cfg.sync.suppliers != SupplierSync::Off {
            let f = &coupa::SUPPLIERS;
            let key = watermark_key(self.name(), f.name);
            let r = poll::feed(env, &self.coupa, f, &self.cfg, &key).await?;
            report.others.push(("suppliers".into(), r.enqueued));
        }
        if self.cfg.sync.payments {
            let r = payments::poll_paid(env, &self.fo, &self.cfg, &self.legal_entities()).await?;
            report.others.push(("payments".into(), r.queued));
        }
        crate::steps::map::retry_parked(env, Some(self.name())).await?;
        Ok(report)
    }

    /// Every legal entity this integration writes into: the default and the rule's.
    fn legal_entities(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .default_legal_entity
            .iter()
            .chain(self.cfg.mapping.legal_entities.values())
            .map(|le| le.to_lowercase())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    async fn map_one<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        msg: &IngestMessage,
        crash: Option<MapCrash>,
    ) -> Result<MapOutcome, StepError> {
        match msg.kind {
            DocumentKind::Invoice | DocumentKind::CreditNote => {
                invoices::map_invoice(self, env, msg, crash).await
            }
            DocumentKind::Supplier => suppliers::map_supplier(self, env, msg).await,
            DocumentKind::PurchaseOrder => orders::map_order(self, env, msg).await,
            other => Ok(MapOutcome::Skipped(format!(
                "{} are not synced to F&O yet",
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
            DocumentKind::Invoice | DocumentKind::CreditNote => {
                let p: invoices::Posting = msg.payload().map_err(StepError::Poison)?;
                invoices::post_invoice(self, env, owner, &p, crash).await
            }
            DocumentKind::PurchaseOrder => {
                let o: FoOrder = msg.payload().map_err(StepError::Poison)?;
                orders::post_order(self, env, owner, &o).await
            }
            DocumentKind::Supplier => {
                let v: FoVendor = msg.payload().map_err(StepError::Poison)?;
                suppliers::post_vendor(self, env, owner, &v).await
            }
            DocumentKind::Payment => {
                let payment: PaymentBack = msg.payload().map_err(StepError::Poison)?;
                payments::confirm_coupa_payment(env, &self.coupa, owner, self.name(), &payment)
                    .await
            }
            DocumentKind::ExpenseReport => Err(StepError::Poison(format!(
                "integration '{}' posts no expense reports",
                self.name()
            ))),
        }
    }

    /// `POST /webhooks/<integration>/coupa`: Coupa's call-out, verified as integration 1 does
    /// (`X-Coupa-Signature` over the raw body, constant time, before any parsing).
    async fn coupa_webhook<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        secrets: &dyn SecretLookup,
        req: &WebhookRequest<'_>,
    ) -> WebhookReply {
        let refuse = |e: WebhookError| {
            tracing::warn!(error = %e, "webhook refused");
            match e {
                WebhookError::Unauthorized(_) => WebhookReply::refused(),
                e => WebhookReply::text(e.http_status(), format!("{e}\n")),
            }
        };
        let Some(name) = &self.webhook_secret else {
            tracing::warn!("webhook refused: no webhook_secret configured");
            return WebhookReply::refused();
        };
        let secret = match secrets.secret(name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "webhook secret unavailable");
                return WebhookReply::text(500, "the webhook secret is unavailable\n");
            }
        };
        let stub = match super::coupa_bc::verified_invoice(
            &secret,
            req.header(coupa::SIGNATURE_HEADER),
            req.body,
        ) {
            Ok(s) => s,
            Err(e) => return refuse(e),
        };
        if req.method != "POST" {
            return WebhookReply::text(405, "Coupa webhooks are POSTed\n");
        }
        let id = stub.id.to_string();
        let refs = [(id.clone(), stub.updated_at.clone())];
        match crate::steps::webhook::accept(env, self.name(), DocumentKind::Invoice, &refs).await {
            Ok(()) => WebhookReply::text(202, format!("queued Coupa invoice {id}\n")),
            Err(e) => refuse(e),
        }
    }
}

impl<Q, S, C> Flow<Q, S, C> for CoupaFo
where
    Q: Queue + 'static,
    S: Store + 'static,
    C: Clock + 'static,
{
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn targets(&self) -> Vec<String> {
        // Invoices go to each legal entity; payments back to Coupa.
        let mut out: Vec<String> = self
            .legal_entities()
            .iter()
            .map(|le| self.fo.target_identity(le))
            .collect();
        if self.cfg.sync.payments {
            out.push(self.coupa.target_identity());
        }
        out
    }

    fn ledger_key(&self, kind: &str, source_id: &str) -> Option<LedgerKey> {
        match kind {
            "invoice" | "credit_note" => Some(LedgerKey {
                integration: self.cfg.name.clone(),
                kind: invoices::LEDGER_KIND.into(),
                source_id: source_id.into(),
            }),
            // A vendor is written once per legal entity and content: no single entry.
            "payment" => Some(LedgerKey {
                integration: self.cfg.name.clone(),
                kind: payments::KIND.into(),
                source_id: source_id.into(),
            }),
            _ => None,
        }
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
        vec![COUPA]
    }

    fn webhook<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        secrets: &'a dyn SecretLookup,
        req: WebhookRequest<'a>,
    ) -> BoxFuture<'a, WebhookReply> {
        Box::pin(async move {
            match req.channel {
                COUPA => self.coupa_webhook(env, secrets, &req).await,
                other => {
                    tracing::warn!(channel = ?other, "webhook refused: no such channel");
                    WebhookReply::refused()
                }
            }
        })
    }

    fn backfill<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        owner: &'a str,
        opts: &'a BackfillOptions,
        progress: &'a (dyn Fn(BulkEvent) + Send + Sync),
    ) -> BoxFuture<'a, Result<BackfillReport, StepError>> {
        Box::pin(backfill::backfill(self, env, owner, opts, progress))
    }

    fn upkeep<'a>(
        &'a self,
        _env: &'a Env<Q, S, C>,
        _secrets: &'a dyn SecretLookup,
    ) -> BoxFuture<'a, Result<Vec<Upkeep>, StepError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
