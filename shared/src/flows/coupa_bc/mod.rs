//! Integration 1: Coupa → Business Central. Approved invoices and credit notes post as purchase
//! invoices and credit memos; optionally purchase orders become BC orders, suppliers are
//! matched to (or created as) vendors, and BC's paid status goes back to Coupa as a payment.

mod invoices;
mod notifications;
mod orders;
mod payments;
mod resolve;
mod suppliers;

pub use notifications::{NotificationReply, RenewReport};
pub use payments::{
    PaidPollCrash, PaidPollReport, poll_paid_with_crash, reference as payment_reference,
    watermark_key as paid_watermark_key,
};
pub use resolve::{MASTER_DATA_TTL, RECHECK_AFTER};

use crate::config::{Config, IntegrationConfig, SupplierSync, SystemConfig};
use crate::flows::{BoxFuture, Flow, SecretLookup, Upkeep, WebhookReply, WebhookRequest};
use crate::model::{
    DocumentKind, PaymentBack, ResolvedInvoice, ResolvedPurchaseOrder, VendorToCreate,
};
use crate::ports::LedgerKey;
use crate::ports::{Clock, Feed, Queue, SecretString, Store};
use crate::steps::map::{MapCrash, MapOutcome};
use crate::steps::poll::{self, PollReport};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::webhook::{MAX_BODY_BYTES, WebhookError};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError};
use crate::systems::Instances;
use crate::systems::business_central::BcClient;
use crate::systems::coupa::{self, CoupaClient};
use crate::systems::signature::verify_hmac_sha256;

/// The watermark of one of the integration's Coupa feeds.
pub fn watermark_key(integration: &str, feed: &str) -> String {
    format!("{integration}/coupa/{feed}")
}

/// The webhook channels: Coupa's call-outs, BC's change notifications.
const COUPA: &str = "coupa";
const BC: &str = "bc";

pub struct CoupaBc {
    cfg: IntegrationConfig,
    coupa: CoupaClient,
    /// BC, at this integration's company.
    bc: BcClient,
    /// Name of the secret holding Coupa's webhook HMAC key; none: Coupa webhooks are refused.
    webhook_secret: Option<String>,
}

impl CoupaBc {
    pub fn new(cfg: &Config, i: &IntegrationConfig, systems: &Instances) -> Result<Self, String> {
        let r = cfg.resolved(&i.name)?;
        let coupa = systems.coupa(&r.source.name)?.clone();
        let company = r
            .company
            .ok_or_else(|| format!("no company of system '{}'", r.target.name))?;
        // Its own company, on the system's shared token cache and request budget.
        let bc = systems
            .business_central(&r.target.name)?
            .for_company(&company);
        let webhook_secret = match &r.source.config {
            SystemConfig::Coupa(c) => c.webhook_secret.clone(),
            other => return Err(format!("source is {}, not coupa", other.type_name())),
        };
        Ok(Self {
            cfg: i.clone(),
            coupa,
            bc,
            webhook_secret,
        })
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn lookups(&self) -> resolve::Lookups<'_> {
        resolve::Lookups { bc: &self.bc }
    }

    fn clients(&self) -> Clients<'_> {
        Clients {
            coupa: &self.coupa,
            lookups: Some(self.lookups()),
        }
    }

    async fn poll_feeds<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
    ) -> Result<PollReport, StepError> {
        let name = self.name();
        let feed = |f: &Feed| watermark_key(name, f.name);
        let mut report = poll::feed(
            env,
            &self.coupa,
            &coupa::INVOICES,
            &self.cfg,
            &feed(&coupa::INVOICES),
        )
        .await?;
        if self.cfg.sync.suppliers != SupplierSync::Off {
            let f = &coupa::SUPPLIERS;
            let r = poll::feed(env, &self.coupa, f, &self.cfg, &feed(f)).await?;
            report.others.push(("suppliers".into(), r.enqueued));
        }
        if self.cfg.sync.purchase_orders {
            let f = &coupa::PURCHASE_ORDERS;
            let r = poll::feed(env, &self.coupa, f, &self.cfg, &feed(f)).await?;
            report.others.push(("purchase orders".into(), r.enqueued));
        }
        if self.cfg.sync.payments {
            let r = payments::poll_paid(env, &self.bc, &self.cfg).await?;
            report.others.push(("payments".into(), r.queued));
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
            DocumentKind::Invoice | DocumentKind::CreditNote => {
                invoices::map_invoice(self, env, msg, crash).await
            }
            DocumentKind::PurchaseOrder => {
                orders::map_coupa_order(env, &self.clients(), &self.cfg, msg).await
            }
            DocumentKind::Supplier => {
                suppliers::map_coupa_supplier(env, &self.clients(), &self.cfg, msg).await
            }
            // A BC notification's trigger: run the paid-status poll now.
            DocumentKind::Payment => {
                let r = payments::poll_paid(env, &self.bc, &self.cfg).await?;
                Ok(MapOutcome::Skipped(format!(
                    "paid-status poll: {} payment(s) queued",
                    r.queued
                )))
            }
            DocumentKind::ExpenseReport => Ok(MapOutcome::Skipped(
                "expense reports are not read by this integration".into(),
            )),
        }
    }

    async fn post_one<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        owner: &str,
        msg: &PostEnvelope,
        crash: Option<CrashPoint>,
    ) -> Result<PostOutcome, StepError> {
        let name = self.name();
        match msg.kind {
            DocumentKind::Invoice | DocumentKind::CreditNote => {
                let inv: ResolvedInvoice = msg.payload().map_err(StepError::Poison)?;
                invoices::post_invoice(self, env, owner, &inv, crash).await
            }
            DocumentKind::PurchaseOrder => {
                let order: ResolvedPurchaseOrder = msg.payload().map_err(StepError::Poison)?;
                orders::post_bc_order(env, &self.bc, owner, name, &order).await
            }
            DocumentKind::Supplier => {
                let vendor: VendorToCreate = msg.payload().map_err(StepError::Poison)?;
                suppliers::post_bc_vendor(env, &self.bc, owner, name, &vendor).await
            }
            DocumentKind::Payment => {
                let payment: PaymentBack = msg.payload().map_err(StepError::Poison)?;
                payments::confirm_coupa_payment(env, &self.coupa, owner, name, &payment).await
            }
            DocumentKind::ExpenseReport => Err(StepError::Poison(format!(
                "integration '{name}' posts no expense reports"
            ))),
        }
    }

    /// `POST /webhooks/<integration>/coupa`: Coupa's call-out with an invoice, signed with
    /// `X-Coupa-Signature` over the raw body.
    async fn coupa_webhook<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        secrets: &dyn SecretLookup,
        req: &WebhookRequest<'_>,
    ) -> WebhookReply {
        let refuse = |e: WebhookError| {
            tracing::warn!(error = %e, "webhook refused");
            match e {
                // Every unauthenticated request gets the same answer (no hint of what failed).
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
        let stub = match verified_invoice(&secret, req.header(coupa::SIGNATURE_HEADER), req.body) {
            Ok(s) => s,
            Err(e) => return refuse(e),
        };
        // After the signature: an unsigned GET gets the same answer as an unknown name.
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

    /// `GET|POST /webhooks/<integration>/bc`: BC's subscription handshake and notifications.
    async fn bc_webhook<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        secrets: &dyn SecretLookup,
        req: &WebhookRequest<'_>,
    ) -> WebhookReply {
        // Checked before the handshake too: answering it would validate a subscription that
        // nobody here asked for.
        let Some(n) = &self.cfg.sync.notifications else {
            tracing::warn!(
                integration = self.name(),
                "BC webhook refused: the integration has no sync.notifications"
            );
            return WebhookReply::refused();
        };
        let client_state = match secrets.secret(&n.client_state_secret).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "BC client state secret unavailable");
                return WebhookReply::text(500, "the client state secret is unavailable\n");
            }
        };
        let token = req.query("validationToken");
        match notifications::notification(env, self.name(), &client_state, token, req.body).await {
            Ok(r) => {
                let (status, body) = r.http();
                WebhookReply::text(status, body)
            }
            Err(e) => {
                tracing::error!(error = %e, integration = self.name(), "BC notification not queued");
                WebhookReply::text(500, "the notification could not be queued\n")
            }
        }
    }

    async fn renew<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        secrets: &dyn SecretLookup,
    ) -> Result<Vec<Upkeep>, StepError> {
        let Some(n) = &self.cfg.sync.notifications else {
            return Ok(Vec::new());
        };
        let client_state =
            secrets
                .secret(&n.client_state_secret)
                .await
                .map_err(|e| StepError::Systemic {
                    reason: format!("the client state secret '{}': {e}", n.client_state_secret),
                    after: None,
                })?;
        let r = notifications::renew_subscriptions(&self.bc, n, &client_state, env.clock.now())
            .await
            .map_err(|e| StepError::system("renewing BC subscriptions", e))?;
        tracing::info!(
            integration = self.name(),
            created = r.created,
            renewed = r.renewed,
            current = r.current,
            "BC subscriptions"
        );
        Ok(vec![Upkeep {
            what: "BC subscriptions".into(),
            counts: vec![
                ("created", r.created),
                ("renewed", r.renewed),
                ("current", r.current),
            ],
        }])
    }
}

/// The invoice a Coupa call-out names, once its `X-Coupa-Signature` (HMAC-SHA256 of the raw
/// body with `secret`) is verified in constant time; nothing is parsed before.
pub fn verified_invoice(
    secret: &SecretString,
    signature: Option<&str>,
    body: &[u8],
) -> Result<coupa::wire::InvoiceStub, WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge(body.len()));
    }
    verify_hmac_sha256(
        coupa::SIGNATURE_HEADER,
        secret.expose().as_bytes(),
        body,
        signature,
    )
    .map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
    serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not a Coupa invoice: {e}")))
}

/// What the map steps of this flow read through: Coupa, and BC's lookups (vendors, orders,
/// master data).
pub(super) struct Clients<'a> {
    pub coupa: &'a CoupaClient,
    pub lookups: Option<resolve::Lookups<'a>>,
}

impl<Q, S, C> Flow<Q, S, C> for CoupaBc
where
    Q: Queue + 'static,
    S: Store + 'static,
    C: Clock + 'static,
{
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn targets(&self) -> Vec<String> {
        // Documents, orders and vendors go to BC; payments back to Coupa.
        vec![self.bc.target_identity(), self.coupa.target_identity()]
    }

    fn ledger_key(&self, kind: &str, source_id: &str) -> Option<LedgerKey> {
        let ledger_kind = match kind {
            // Credit notes share Coupa's invoice ids and the invoice entry.
            "invoice" | "credit_note" => invoices::LEDGER_KIND,
            "payment" => payments::KIND,
            "supplier" => suppliers::KIND,
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
        let mut out = vec![COUPA];
        if self.cfg.sync.notifications.is_some() {
            out.push(BC);
        }
        out
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
                BC => self.bc_webhook(env, secrets, &req).await,
                other => {
                    tracing::warn!(channel = ?other, "webhook refused: no such channel");
                    WebhookReply::refused()
                }
            }
        })
    }

    fn upkeep<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        secrets: &'a dyn SecretLookup,
    ) -> BoxFuture<'a, Result<Vec<Upkeep>, StepError>> {
        Box::pin(self.renew(env, secrets))
    }

    /// Suppliers mapped to a vendor number Business Central does not have.
    fn unknown_mapping_targets<'a>(
        &'a self,
        rows: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<String>, StepError>> {
        Box::pin(async move {
            let vendors: std::collections::BTreeSet<&str> = rows
                .iter()
                .filter(|(kind, _)| kind == "supplier")
                .map(|(_, target)| target.as_str())
                .collect();
            let mut unknown = Vec::new();
            for v in vendors {
                let found = self
                    .bc
                    .vendor_by_number(v)
                    .await
                    .map_err(|e| StepError::system("looking up a vendor", e))?;
                if found.is_none() {
                    unknown.push(format!(
                        "vendor {v} is not in Business Central: invoices of the suppliers \
                         mapped to it stay parked until it exists"
                    ));
                }
            }
            Ok(unknown)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{SecretFile, SecretKey};

    const TWO_COMPANIES: &str = r#"
        [systems.coupa-prod]
        type = "coupa"
        base_url = "https://acme.coupahost.com"
        client_id = "c"
        client_secret = "coupa-secret"
        api_version = "R40"

        [systems.bc-main]
        type = "business_central"
        tenant = "t"
        environment = "production"
        client_id = "b"
        client_secret = "bc-secret"

        [[integrations]]
        name = "us"
        source = "coupa-prod"
        target = "bc-main"
        company = "11111111-1111-1111-1111-111111111111"

        [[integrations]]
        name = "eu"
        source = "coupa-prod"
        target = "bc-main"
        company = "22222222-2222-2222-2222-222222222222"
    "#;

    #[tokio::test]
    async fn two_integrations_on_two_companies_of_one_bc_share_its_tokens_and_budget() {
        let cfg = Config::parse(TWO_COMPANIES).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretFile::open(dir.path().join("s"), SecretKey::generate()).unwrap();
        secrets.set("coupa-secret", "x").unwrap();
        secrets.set("bc-secret", "y").unwrap();
        let systems = Instances::from_config(&cfg, &secrets).await.unwrap();
        let us = CoupaBc::new(&cfg, &cfg.integrations[0], &systems).unwrap();
        let eu = CoupaBc::new(&cfg, &cfg.integrations[1], &systems).unwrap();
        assert_eq!(us.bc.company_id(), "11111111-1111-1111-1111-111111111111");
        assert_eq!(eu.bc.company_id(), "22222222-2222-2222-2222-222222222222");
        assert!(us.bc.shares_budget_with(&eu.bc));
    }
}
