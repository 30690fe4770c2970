//! Integration 5: Basware → Business Central. Accounting documents waiting for transfer (a
//! state queue) are acknowledged, posted as BC purchase invoices or credit memos (one line per
//! coding row) and answered with a transfer response: success with the BC posted number, or
//! failure with why (`[systems.<basware>] failure_response`).
//!
//! Webhooks: Basware's signed notifications on `/webhooks/basware/<integration>` (`webhook.rs`).
//!
//! Paid status: with `[integrations.sync] payments = true`, BC invoices it posted that became
//! paid are answered with a payment response (`payments.rs`).
//!
//! Master data: with `[systems.<basware>.master_data]`, BC vendors, accounts and dimension
//! values go to Basware's coding lists each cycle, only what changed (`masterdata.rs`).
//!
//! Upkeep (`mlc run` with a webhook listener): the Basware subscription of `webhook_url` is
//! created when Basware has none.
//!
//! Give-up: with `failure_response = "park"` an unmappable document waits, parked, with no
//! response; when an operator gives up on it (`mlc replay --give-up <doc> --reason …`), Basware
//! gets a transfer-failure response with the reason, exactly once, and the document is closed
//! (`documents::give_up`).

mod documents;
mod masterdata;
mod payments;
mod resolve;
pub mod webhook;

use crate::config::{BaswareMasterData, Config, FailureResponse, IntegrationConfig, SystemConfig};
use crate::flows::{BoxFuture, Flow, SecretLookup, Upkeep, WebhookReply, WebhookRequest};
use crate::model::DocumentKind;
use crate::ports::{Clock, LedgerKey, ParkedDoc, Queue, Store};
use crate::steps::map::{MapCrash, MapOutcome};
use crate::steps::poll::{self, PollReport};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError};
use crate::systems::Instances;
use crate::systems::basware::{ACCOUNTING_DOCUMENTS, BaswareSource};
use crate::systems::business_central::BcClient;

/// The poll key of the accounting-document feed (a state queue keeps no watermark; the key
/// only names the feed).
pub fn feed_key(integration: &str) -> String {
    format!("{integration}/basware/{}", ACCOUNTING_DOCUMENTS.name)
}

pub struct BaswareBc {
    cfg: IntegrationConfig,
    basware: BaswareSource,
    /// BC, at this integration's company.
    bc: BcClient,
    failure_response: FailureResponse,
    /// Name of the secret holding the subscription's `webhookAuthenticationToken`; none:
    /// Basware webhooks are refused.
    webhook_secret: Option<String>,
    master_data: Option<BaswareMasterData>,
    webhook_url: Option<String>,
}

impl BaswareBc {
    pub fn new(cfg: &Config, i: &IntegrationConfig, systems: &Instances) -> Result<Self, String> {
        let r = cfg.resolved(&i.name)?;
        let basware = systems.basware(&r.source.name)?.clone();
        let company = r
            .company
            .ok_or_else(|| format!("no company of system '{}'", r.target.name))?;
        let bc = systems
            .business_central(&r.target.name)?
            .for_company(&company);
        let (failure_response, webhook_secret, master_data, webhook_url) = match &r.source.config {
            SystemConfig::Basware(b) => (
                b.failure_response,
                b.webhook_secret.clone(),
                b.master_data.clone(),
                b.webhook_url.clone(),
            ),
            other => return Err(format!("source is {}, not basware", other.type_name())),
        };
        Ok(Self {
            cfg: i.clone(),
            basware,
            bc,
            failure_response,
            webhook_secret,
            master_data,
            webhook_url,
        })
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn poll_feeds<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
    ) -> Result<PollReport, StepError> {
        let report = poll::feed(
            env,
            &self.basware,
            &ACCOUNTING_DOCUMENTS,
            &self.cfg,
            &feed_key(self.name()),
        )
        .await?;
        let mut report = report;
        if self.cfg.sync.payments {
            let queued = payments::poll_paid(env, &self.bc, &self.cfg).await?;
            report.others.push(("payment responses".into(), queued));
        }
        if let Some(md) = &self.master_data {
            let r = masterdata::sync(env, &self.basware.client, &self.bc, self.name(), md).await?;
            tracing::info!(
                integration = self.name(),
                sent = r.sent,
                confirmed = r.confirmed,
                refused = r.refused,
                "Basware master data"
            );
            report
                .others
                .push(("master-data records sent".into(), r.sent));
        }
        crate::steps::map::retry_parked(env, Some(self.name())).await?;
        Ok(report)
    }

    /// The subscription of `webhook_url` to waiting documents, created when Basware has none.
    async fn ensure_subscription(
        &self,
        secrets: &dyn SecretLookup,
    ) -> Result<Vec<Upkeep>, StepError> {
        let (Some(url), Some(secret_name)) = (&self.webhook_url, &self.webhook_secret) else {
            return Ok(Vec::new());
        };
        let client = &self.basware.client;
        let current = client
            .subscriptions()
            .await
            .map_err(|e| StepError::system("listing Basware subscriptions", e))?;
        let has = current.iter().any(|s| {
            s.task_type.as_deref() == Some("AccountingDocuments")
                && s.notification_webhook_url.as_deref() == Some(url.as_str())
        });
        let (created, kept) = if has {
            (0, 1)
        } else {
            let token = secrets
                .secret(secret_name)
                .await
                .map_err(|e| StepError::Systemic {
                    reason: format!("the Basware webhook secret '{secret_name}': {e}"),
                    after: None,
                })?;
            let sub = crate::systems::basware::wire::NewSubscription {
                task_type: "AccountingDocuments".into(),
                task_sub_type: "WaitingForTransfer".into(),
                subscription_type: "Webhook".into(),
                notification_webhook_url: url.clone(),
                webhook_authentication_token: token.expose().to_string(),
            };
            client
                .subscribe(&[sub])
                .await
                .map_err(|e| StepError::system("creating the Basware subscription", e))?;
            (1, 0)
        };
        Ok(vec![Upkeep {
            what: "Basware subscription".into(),
            counts: vec![("created", created), ("current", kept)],
        }])
    }

    async fn map_one<Q: Queue, S: Store, C: Clock>(
        &self,
        env: &Env<Q, S, C>,
        msg: &IngestMessage,
        crash: Option<MapCrash>,
    ) -> Result<MapOutcome, StepError> {
        match msg.kind {
            DocumentKind::Invoice | DocumentKind::CreditNote => {
                documents::map_document(self, env, msg, crash).await
            }
            other => Ok(MapOutcome::Skipped(format!(
                "Basware {} are not read by this integration",
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
                documents::post_document(self, env, owner, msg, crash).await
            }
            DocumentKind::Payment => {
                let payment: crate::model::PaymentBack =
                    msg.payload().map_err(StepError::Poison)?;
                payments::respond(env, &self.basware.client, owner, self.name(), &payment).await
            }
            other => Err(StepError::Poison(format!(
                "integration '{}' posts no {}",
                self.name(),
                other.as_str()
            ))),
        }
    }
}

impl<Q, S, C> Flow<Q, S, C> for BaswareBc
where
    Q: Queue + 'static,
    S: Store + 'static,
    C: Clock + 'static,
{
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn targets(&self) -> Vec<String> {
        // Documents go to BC; transfer responses back to Basware.
        vec![
            self.bc.target_identity(),
            self.basware.client.target_identity(),
        ]
    }

    fn ledger_key(&self, kind: &str, source_id: &str) -> Option<LedgerKey> {
        let ledger_kind = match kind {
            "invoice" | "credit_note" => documents::LEDGER_KIND,
            documents::RESPONSE_KIND => documents::RESPONSE_KIND,
            payments::KIND => payments::KIND,
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

    fn give_up<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        owner: &'a str,
        parked: &'a ParkedDoc,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Option<PostOutcome>, StepError>> {
        Box::pin(documents::give_up(self, env, owner, parked, reason))
    }

    fn upkeep<'a>(
        &'a self,
        _env: &'a Env<Q, S, C>,
        secrets: &'a dyn SecretLookup,
    ) -> BoxFuture<'a, Result<Vec<Upkeep>, StepError>> {
        Box::pin(self.ensure_subscription(secrets))
    }
}
