//! The integrations. Each is a flow: which source feeds it polls, how a source document is
//! resolved for its target (vendor, accounts, dimensions), which writers post it, what its
//! webhooks and scheduled upkeep do. The runtime, the Lambda functions and the CLI know flows
//! only through [`Flow`] and [`build`], the one registry that maps (source type, target type)
//! to a flow; adding an integration adds a folder here and one line there
//! (`docs/adding-an-integration.md`).

pub mod b1_coupa;
pub mod basware_bc;
pub mod concur_bc;
pub mod coupa_bc;
pub mod coupa_fo;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use reqwest::header::HeaderMap;

use crate::config::{Config, IntegrationConfig, IntegrationKind};
use crate::ports::{Clock, Queue, SecretError, SecretString, Secrets, Store};
use crate::ports::{LedgerKey, ParkedDoc};
use crate::steps::bulk::{BackfillOptions, BackfillReport, BulkEvent};
use crate::steps::map::{MapCrash, MapOutcome};
use crate::steps::poll::PollReport;
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError};
use crate::systems::Instances;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A built flow, shared by the runtime's workers.
pub type SharedFlow<Q, S, C> = Arc<dyn Flow<Q, S, C>>;

/// Secrets as a flow reads them at request time (a webhook key, a client state), so a rotated
/// secret is picked up without a restart. Every [`Secrets`] store is one.
pub trait SecretLookup: Send + Sync {
    fn secret<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SecretString, SecretError>>;
}

impl<T: Secrets> SecretLookup for T {
    fn secret<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SecretString, SecretError>> {
        Box::pin(self.get(name))
    }
}

/// A request on `/webhooks/<integration>/<channel>`, as both listeners (the `mlc run` listener,
/// the webhook Lambda behind API Gateway) receive it: the raw body, before any parsing.
pub struct WebhookRequest<'a> {
    /// Which of the integration's webhooks: "coupa" (source documents), "bc" (target change
    /// notifications); named by the flow.
    pub channel: &'a str,
    pub method: &'a str,
    pub headers: &'a HeaderMap,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
    /// The subject DN of the client certificate the transport verified (mutual TLS terminated
    /// in front of the flow: API Gateway's custom domain, `mlc run`'s TLS listener); `None`
    /// when the request came without one. Never taken from a header.
    pub client_cert_subject: Option<&'a str>,
}

impl WebhookRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The common name (`CN=`) of the verified client certificate's subject, if any.
    pub fn client_cert_cn(&self) -> Option<&str> {
        self.client_cert_subject?
            .split(',')
            .map(str::trim)
            .find_map(|part| part.strip_prefix("CN="))
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The answer to a webhook request, the same on both listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookReply {
    pub status: u16,
    /// Plain text (a handshake's token is echoed exactly).
    pub body: String,
}

/// The body of [`WebhookReply::refused`].
pub const REFUSED_BODY: &str = "refused: this request is not signed for this webhook\n";

impl WebhookReply {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }

    /// The one answer (401, [`REFUSED_BODY`]) to every request that is not authenticated: a
    /// missing, malformed or wrong signature, a foreign client state, and a path naming an
    /// integration or channel that does not exist or takes no webhooks. The same status and
    /// body for all, with no name echoed, so nobody learns which integrations exist by asking;
    /// the reason is logged (never a secret).
    pub fn refused() -> Self {
        Self::text(401, REFUSED_BODY)
    }
}

/// What one piece of scheduled upkeep did: "BC subscriptions" with (created, 1), (renewed, 0)…
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upkeep {
    pub what: String,
    pub counts: Vec<(&'static str, u32)>,
}

impl std::fmt::Display for Upkeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        write!(f, "{}: {}", self.what, counts.join(", "))
    }
}

/// One configured integration, over one runtime's ports.
pub trait Flow<Q, S, C>: Send + Sync {
    /// The integration's name (part of ledger keys, dedup ids, watermark keys).
    fn name(&self) -> &str;

    /// One poll cycle over every feed the integration reads: enqueue, then advance the
    /// watermarks; then its parked documents are retried.
    fn poll<'a>(&'a self, env: &'a Env<Q, S, C>) -> BoxFuture<'a, Result<PollReport, StepError>>;

    /// The map step of one of its ingest messages. `crash`: fault injection in tests only.
    fn map<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        msg: &'a IngestMessage,
        crash: Option<MapCrash>,
    ) -> BoxFuture<'a, Result<MapOutcome, StepError>>;

    /// The post step of one of its post messages. `crash`: fault injection in tests only.
    fn post<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        owner: &'a str,
        msg: &'a PostEnvelope,
        crash: Option<CrashPoint>,
    ) -> BoxFuture<'a, Result<PostOutcome, StepError>>;

    /// The webhook channels it answers (for the listeners to print their URLs).
    fn webhook_channels(&self) -> Vec<&'static str>;

    /// The identities of the targets it writes into (`Writer::target`), for `mlc check` to
    /// compare with the targets the ledger's entries were written for.
    fn targets(&self) -> Vec<String>;

    /// The ledger key a document of audit kind `kind` ("invoice", "credit_note", "payment", …)
    /// is written under, for an operator's explicit re-post. `None`: that kind has no single
    /// entry to forget (a purchase order is written once per content).
    fn ledger_key(&self, kind: &str, source_id: &str) -> Option<LedgerKey>;

    /// A request to one of its webhooks: verified before anything is read from it.
    fn webhook<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        secrets: &'a dyn SecretLookup,
        req: WebhookRequest<'a>,
    ) -> BoxFuture<'a, WebhookReply>;

    /// Of the mapping rows an operator imports (`(kind, target)`, kind as `mlc map import`
    /// takes it: "supplier", "gl_account", "dimension:DEPARTMENT"), what the target system
    /// does not have, each said in a sentence, for a warning (a vendor may be created later).
    /// By default nothing is checked.
    fn unknown_mapping_targets<'a>(
        &'a self,
        rows: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<String>, StepError>> {
        let _ = rows;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// An operator's "give up" on one of its parked documents (`mlc replay --give-up`): the
    /// source is told, exactly once (through `write_once`), that the document will not be
    /// transferred, with the operator's `reason`, so it goes back to the source's own
    /// workflow. `Ok(None)`: this integration offers no give-up for documents of this kind
    /// (its sources have nothing to answer; the document can only be retried or discarded),
    /// which is the default. The runtime closes the document once the answer is written
    /// ([`crate::runtime::Pipeline::give_up`]).
    fn give_up<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        owner: &'a str,
        parked: &'a ParkedDoc,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Option<PostOutcome>, StepError>> {
        let _ = (env, owner, parked, reason);
        Box::pin(async { Ok(None) })
    }

    /// A first load of many documents through the target's bulk API (`mlc backfill`), each
    /// exactly once under the same ledger as the per-record writer (`steps::bulk`). By
    /// default the integration has none.
    fn backfill<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        owner: &'a str,
        opts: &'a BackfillOptions,
        progress: &'a (dyn Fn(BulkEvent) + Send + Sync),
    ) -> BoxFuture<'a, Result<BackfillReport, StepError>> {
        let _ = (env, owner, opts, progress);
        let name = self.name().to_string();
        Box::pin(async move {
            Err(StepError::Poison(format!(
                "integration '{name}' has no bulk backfill (only coupa → finance_operations has one)"
            )))
        })
    }

    /// Scheduled upkeep (renewing webhook subscriptions that expire); empty when the
    /// integration has none.
    fn upkeep<'a>(
        &'a self,
        env: &'a Env<Q, S, C>,
        secrets: &'a dyn SecretLookup,
    ) -> BoxFuture<'a, Result<Vec<Upkeep>, StepError>>;
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("integration '{integration}': {message}")]
    Invalid {
        integration: String,
        message: String,
    },
}

/// The flows of every configured integration, over the built system instances.
pub fn build<Q, S, C>(
    cfg: &Config,
    systems: &Instances,
) -> Result<Vec<SharedFlow<Q, S, C>>, FlowError>
where
    Q: Queue + 'static,
    S: Store + 'static,
    C: Clock + 'static,
{
    cfg.integrations
        .iter()
        .map(|i| flow_of(cfg, i, systems))
        .collect()
}

/// The registry: which flow serves an integration, by the types of its source and target.
fn flow_of<Q, S, C>(
    cfg: &Config,
    i: &IntegrationConfig,
    systems: &Instances,
) -> Result<SharedFlow<Q, S, C>, FlowError>
where
    Q: Queue + 'static,
    S: Store + 'static,
    C: Clock + 'static,
{
    let invalid = |message: String| FlowError::Invalid {
        integration: i.name.clone(),
        message,
    };
    match i.kind {
        Some(IntegrationKind::CoupaToBusinessCentral) => Ok(Arc::new(
            coupa_bc::CoupaBc::new(cfg, i, systems).map_err(invalid)?,
        )),
        Some(IntegrationKind::SapB1ToCoupa) => Ok(Arc::new(
            b1_coupa::B1Coupa::new(cfg, i, systems).map_err(invalid)?,
        )),
        Some(IntegrationKind::CoupaToFinanceOperations) => Ok(Arc::new(
            coupa_fo::CoupaFo::new(cfg, i, systems).map_err(invalid)?,
        )),
        Some(IntegrationKind::BaswareToBusinessCentral) => Ok(Arc::new(
            basware_bc::BaswareBc::new(cfg, i, systems).map_err(invalid)?,
        )),
        Some(IntegrationKind::ConcurToBusinessCentral) => Ok(Arc::new(
            concur_bc::ConcurBc::new(cfg, i, systems).map_err(invalid)?,
        )),
        // `Config::parse` infers the kind from the source and target types, or refuses.
        None => Err(invalid("no kind: name its source and target".into())),
    }
}
