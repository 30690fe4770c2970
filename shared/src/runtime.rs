//! Wiring the steps to the configured systems, and the message handling both runtimes share:
//! decode a queue message, run its step, and say whether it succeeded. The embedded runtime
//! drains its SQLite queues here; the Lambda functions call `handle_*` per SQS record.

use std::sync::Arc;
use std::time::Duration;

use crate::config::SupplierSync;
use crate::config::{Config, IntegrationConfig, IntegrationKind};
use crate::model::DocumentKind;
use crate::ports::{
    AuditFilter, AuditStatus, Clock, Message, Queue, QueueName, Secrets, Step, Store,
};
use crate::steps::map::{self, Clients, MapOutcome};
use crate::steps::poll::{self, Feed, PollReport};
use crate::steps::post::{self, PostOutcome};
use crate::steps::resolve::Lookups;
use crate::steps::subscriptions::{self, RenewReport};
use crate::steps::{
    Env, IngestMessage, PostMessage, StepError, SyncMessage, SyncTask, audit_item, orders,
    payments, suppliers,
};
use crate::systems::business_central::{BcClient, BcSettings};
use crate::systems::coupa::{CoupaClient, CoupaSettings};
use crate::systems::http::{HttpError, HttpSettings};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("secret '{name}' (for {what}): {source}")]
    Secret {
        name: String,
        what: &'static str,
        source: crate::ports::SecretError,
    },
    #[error("{what}: {source}")]
    Client {
        what: &'static str,
        source: HttpError,
    },
}

/// The configured external systems' clients, built once and shared.
#[derive(Clone)]
pub struct Systems {
    pub coupa: Option<CoupaClient>,
    pub bc: Option<BcClient>,
}

impl Systems {
    pub async fn from_config<SE: Secrets>(cfg: &Config, secrets: &SE) -> Result<Self, BuildError> {
        let coupa =
            match cfg.systems.coupa() {
                None => None,
                Some(c) => {
                    let client_secret = secrets.get(&c.client_secret).await.map_err(|source| {
                        BuildError::Secret {
                            name: c.client_secret.clone(),
                            what: "Coupa client secret",
                            source,
                        }
                    })?;
                    let settings = CoupaSettings {
                        base_url: c.base_url.clone(),
                        token_url: c.token_url.clone(),
                        client_id: c.client_id.clone(),
                        client_secret,
                        scopes: coupa_scopes(cfg),
                        api_version: c.api_version.clone(),
                        requests_per_second: c.requests_per_second,
                        http: HttpSettings {
                            timeout: Duration::from_secs(c.http_timeout_secs.max(1)),
                            ..HttpSettings::default()
                        },
                    };
                    Some(
                        CoupaClient::new(settings).map_err(|source| BuildError::Client {
                            what: "Coupa client",
                            source,
                        })?,
                    )
                }
            };
        let bc =
            match cfg.systems.business_central() {
                None => None,
                Some(b) => {
                    let client_secret = secrets.get(&b.client_secret).await.map_err(|source| {
                        BuildError::Secret {
                            name: b.client_secret.clone(),
                            what: "Business Central client secret",
                            source,
                        }
                    })?;
                    let settings = BcSettings {
                        api_url: b.api_url.clone(),
                        token_url: b.token_url.clone(),
                        tenant: b.tenant.clone(),
                        environment: b.environment.clone(),
                        company_id: b.company_id.clone().unwrap_or_default(),
                        client_id: b.client_id.clone(),
                        client_secret,
                        budget: b.rate.clone().unwrap_or_else(BcSettings::default_budget),
                        page_size: b.page_size,
                        http: HttpSettings {
                            timeout: Duration::from_secs(b.http_timeout_secs.max(1)),
                            ..HttpSettings::default()
                        },
                    };
                    Some(
                        BcClient::new(settings).map_err(|source| BuildError::Client {
                            what: "Business Central client",
                            source,
                        })?,
                    )
                }
            };
        Ok(Self { coupa, bc })
    }
}

/// The configured Coupa scopes plus what the integrations' sync settings need (coupa.md §1.1:
/// `service.object.right`; the order and supplier scope names follow that pattern, unconfirmed).
fn coupa_scopes(cfg: &Config) -> Vec<String> {
    let mut scopes = cfg
        .systems
        .coupa()
        .map(|c| c.scopes.clone())
        .unwrap_or_default();
    for i in &cfg.integrations {
        let s = &i.sync;
        let needed = [
            (s.purchase_orders, "core.purchase_order.read"),
            (s.suppliers != SupplierSync::Off, "core.supplier.read"),
            (s.payments, "core.invoice.write"),
        ];
        for (on, scope) in needed {
            if on && !scopes.iter().any(|x| x == scope) {
                scopes.push(scope.to_string());
            }
        }
    }
    scopes
}

/// Loads the mapping tables given in the configuration into the store (config wins over
/// earlier values of the same key; rows added with `mlc map import` stay).
pub async fn load_config_mappings<S: Store>(
    cfg: &Config,
    store: &S,
) -> Result<usize, crate::ports::StoreError> {
    use crate::config::tables;
    let mut n = 0;
    for i in &cfg.integrations {
        let m = &i.mapping;
        let rows = m
            .suppliers
            .iter()
            .map(|(k, v)| (tables::supplier(&i.name), k, v))
            .chain(
                m.account_codes
                    .iter()
                    .map(|(k, v)| (tables::account_code(&i.name), k, v)),
            )
            .chain(
                m.gl_accounts
                    .iter()
                    .map(|(k, v)| (tables::gl_account(&i.name), k, v)),
            )
            .chain(m.dimension_values.iter().flat_map(|(dim, vals)| {
                vals.iter()
                    .map(move |(k, v)| (tables::dimension(&i.name, dim), k, v))
            }));
        // Collected first: an iterator of closures held across an await makes the future !Send.
        let rows: Vec<(String, &String, &String)> = rows.collect();
        for (table, source, target) in rows {
            store.put_mapping(&table, source, target).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// One runtime's pipeline: the ports, the clients, the integrations.
pub struct Pipeline<Q, S, C> {
    pub env: Env<Q, S, C>,
    pub systems: Systems,
    pub integrations: Vec<IntegrationConfig>,
    /// Names this worker in ledger claims.
    pub owner: String,
    pub max_receives: u32,
    pub retry: crate::systems::http::RetryPolicy,
    /// Integrations backed off after a systemic failure (per process or Lambda environment).
    pub backoffs: Backoffs,
}

/// What to do with a delivered message after its step ran.
#[derive(Debug)]
pub enum Delivery {
    /// Finished (posted, parked, skipped…): delete it.
    Done,
    /// Not now (another worker holds the document): deliver again after this long.
    RetryIn(Duration),
    /// The step failed: deliver again after `retry_in` (backoff, never shorter than the
    /// server's `Retry-After`); `dead_lettered` on the last allowed delivery.
    Failed {
        error: StepError,
        dead_lettered: bool,
        retry_in: Duration,
    },
    /// No retry can help (poison): moved to the dead-letter queue now, audited.
    DeadLetterNow { error: StepError },
    /// The integration is backed off (a systemic failure): the message comes back after
    /// `wait` without spending one of its deliveries.
    Deferred { error: StepError, wait: Duration },
}

/// How long an integration backs off after a systemic failure when the server named no wait:
/// doubling per failure in a row, from the first to the cap.
const SYSTEMIC_FIRST: Duration = Duration::from_secs(30);
const SYSTEMIC_CAP: Duration = Duration::from_secs(15 * 60);

/// Integrations backed off after a systemic failure: until when, how many in a row, and why.
#[derive(Default)]
pub struct Backoffs {
    inner: std::sync::Mutex<std::collections::HashMap<String, Backoff>>,
}

struct Backoff {
    until: std::time::Instant,
    streak: u32,
    reason: String,
}

impl Backoffs {
    /// Whether any integration is backed off now.
    pub fn any(&self) -> bool {
        !self.active().is_empty()
    }

    /// The integrations backed off now: (name, time left, why), by name.
    pub fn active(&self) -> Vec<(String, Duration, String)> {
        let map = self.inner.lock().expect("backoff lock");
        let now = std::time::Instant::now();
        let mut out: Vec<_> = map
            .iter()
            .filter_map(|(name, b)| {
                let left = b.until.checked_duration_since(now)?;
                Some((name.clone(), left, b.reason.clone()))
            })
            .collect();
        out.sort();
        out
    }

    /// How much longer `integration` is backed off, if it is.
    pub fn remaining(&self, integration: &str) -> Option<Duration> {
        let map = self.inner.lock().expect("backoff lock");
        map.get(integration)?
            .until
            .checked_duration_since(std::time::Instant::now())
    }

    /// Backs `integration` off after a systemic failure (`reason`); returns for how long: the
    /// server's wait when it named one, else doubling per failure in a row up to the cap.
    pub fn back_off(&self, integration: &str, asked: Option<Duration>, reason: &str) -> Duration {
        let mut map = self.inner.lock().expect("backoff lock");
        let now = std::time::Instant::now();
        let b = map.entry(integration.to_string()).or_insert(Backoff {
            until: now,
            streak: 0,
            reason: String::new(),
        });
        b.streak += 1;
        b.reason = reason.to_string();
        let doubling = SYSTEMIC_FIRST
            .saturating_mul(1 << (b.streak - 1).min(10))
            .min(SYSTEMIC_CAP);
        let wait = asked.unwrap_or(doubling);
        b.until = b.until.max(now + wait);
        b.until - now
    }

    /// `integration` worked again: forget its failures.
    pub fn clear(&self, integration: &str) {
        self.inner.lock().expect("backoff lock").remove(integration);
    }
}

/// What one drain did, for progress lines and the demo's summary.
#[derive(Clone, Debug, Default)]
pub struct DrainStats {
    pub mapped: u64,
    pub parked: u64,
    pub skipped: u64,
    pub posted: u64,
    pub already_posted: u64,
    pub failed_attempts: u64,
    pub dead_lettered: u64,
    /// Deliveries given back because their integration was backed off.
    pub deferred: u64,
}

impl<Q: Queue + 'static, S: Store + 'static, C: Clock + 'static> Pipeline<Q, S, C> {
    fn integration(&self, name: &str) -> Result<&IntegrationConfig, StepError> {
        self.integrations
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| StepError::Poison(format!("integration '{name}' is not configured")))
    }

    fn coupa(&self) -> Result<&CoupaClient, StepError> {
        self.systems
            .coupa
            .as_ref()
            .ok_or_else(|| StepError::retry("Coupa is not configured"))
    }

    fn bc(&self) -> Result<&BcClient, StepError> {
        self.systems
            .bc
            .as_ref()
            .ok_or_else(|| StepError::retry("Business Central is not configured"))
    }

    fn clients(&self) -> Result<Clients<'_>, StepError> {
        Ok(Clients {
            coupa: self.coupa()?,
            lookups: self.systems.bc.as_ref().map(|bc| Lookups { bc }),
        })
    }

    /// Creates or renews the integration's BC subscriptions (the scheduled renewer; also run by
    /// `mlc run` each cycle). `client_state` is the configured secret's value.
    pub async fn renew_subscriptions(
        &self,
        name: &str,
        client_state: &crate::ports::SecretString,
    ) -> Result<Option<RenewReport>, StepError> {
        let i = self.integration(name)?;
        let Some(cfg) = &i.sync.notifications else {
            return Ok(None);
        };
        subscriptions::renew_subscriptions(self.bc()?, cfg, client_state, self.env.clock.now())
            .await
            .map(Some)
            .map_err(|e| StepError::system("renewing BC subscriptions", e))
    }

    /// A request to the BC notification URL of an integration (handshake or notification).
    pub async fn handle_bc_notification(
        &self,
        name: &str,
        client_state: &crate::ports::SecretString,
        validation_token: Option<&str>,
        body: &[u8],
    ) -> Result<subscriptions::NotificationReply, StepError> {
        self.integration(name)?;
        subscriptions::notification(&self.env, name, client_state, validation_token, body).await
    }

    /// Polls every integration once and re-enqueues parked documents.
    pub async fn poll_all(&self) -> Result<Vec<(String, PollReport)>, StepError> {
        let mut out = Vec::new();
        for i in &self.integrations {
            if self.backoffs.remaining(&i.name).is_some() {
                tracing::warn!(integration = %i.name, "backed off: not polled this cycle");
                continue;
            }
            match self.poll_one(i).await {
                Ok(r) => out.push((i.name.clone(), r)),
                // This integration cannot work now; the others can.
                Err(StepError::Systemic { reason, after }) => {
                    let wait = self.backoffs.back_off(&i.name, after, &reason);
                    tracing::error!(integration = %i.name, error = %reason, ?wait, "poll failed; integration backed off");
                }
                Err(e) => return Err(e),
            }
        }
        map::retry_parked(&self.env).await?;
        self.audit_dead_letters().await?;
        Ok(out)
    }

    /// Polls one integration by name and re-enqueues parked documents (the scheduled poller).
    pub async fn poll_integration(&self, name: &str) -> Result<PollReport, StepError> {
        let report = self.poll_one(self.integration(name)?).await?;
        map::retry_parked(&self.env).await?;
        self.audit_dead_letters().await?;
        Ok(report)
    }

    /// Writes a `dead_lettered` audit item for every document in a dead-letter queue that has
    /// none: a worker that died during every delivery never got to write it, and finance must
    /// see every document that stopped. Returns how many documents are dead-lettered.
    pub async fn audit_dead_letters(&self) -> Result<usize, StepError> {
        let mut count = 0;
        for queue in [QueueName::Ingest, QueueName::Post] {
            let dead = self
                .env
                .queue
                .dead_letters(queue)
                .await
                .map_err(|e| StepError::new("reading the dead-letter queue", e))?;
            for m in dead {
                count += 1;
                let (integration, kind, source_id) = message_identity(&m.body);
                let filter = AuditFilter {
                    integration: Some(integration.clone()),
                    document: Some(source_id.clone()),
                    status: Some(AuditStatus::DeadLettered),
                    ..AuditFilter::default()
                };
                let audited = self
                    .env
                    .store
                    .query_audit(&filter)
                    .await
                    .map_err(|e| StepError::new("reading the audit trail", e))?;
                if audited.is_empty() {
                    let step = if queue == QueueName::Ingest {
                        Step::Map
                    } else {
                        Step::Post
                    };
                    let text = format!(
                        "moved to the dead-letter queue after {} deliveries without a recorded failure (the worker stopped during each)",
                        m.receive_count
                    );
                    let item = audit_item(
                        self.env.clock.now(),
                        &integration,
                        &kind,
                        &source_id,
                        step,
                        AuditStatus::DeadLettered,
                    )
                    .with_error(text);
                    self.env
                        .store
                        .append_audit(&item)
                        .await
                        .map_err(|e| StepError::new("writing the audit trail", e))?;
                }
            }
        }
        Ok(count)
    }

    /// Polls every feed the integration syncs; the report is the invoices' with the other
    /// feeds' counts added.
    async fn poll_one(&self, i: &IntegrationConfig) -> Result<PollReport, StepError> {
        match i.kind.expect("set by Config::parse") {
            IntegrationKind::CoupaToBusinessCentral => {
                let coupa = self.coupa()?;
                let mut report = poll::coupa_invoices(&self.env, coupa, i).await?;
                if i.sync.suppliers != SupplierSync::Off {
                    let r = poll::coupa_feed(&self.env, coupa, i, Feed::Suppliers).await?;
                    report.others.push(("suppliers".into(), r.enqueued));
                }
                if i.sync.purchase_orders {
                    let r = poll::coupa_feed(&self.env, coupa, i, Feed::PurchaseOrders).await?;
                    report.others.push(("purchase orders".into(), r.enqueued));
                }
                if i.sync.payments {
                    let r = payments::poll_paid(&self.env, self.bc()?, i).await?;
                    report.others.push(("payments".into(), r.queued));
                }
                Ok(report)
            }
        }
    }

    /// The map step for one ingest message body.
    pub async fn handle_ingest(&self, body: &str) -> Result<MapOutcome, StepError> {
        let msg: IngestMessage = serde_json::from_str(body)
            .map_err(|e| StepError::Poison(format!("undecodable ingest message: {e}")))?;
        let integration = self.integration(&msg.integration)?;
        match (integration.kind.expect("set by Config::parse"), msg.kind) {
            (
                IntegrationKind::CoupaToBusinessCentral,
                DocumentKind::Invoice | DocumentKind::CreditNote,
            ) => map::coupa_invoice(&self.env, &self.clients()?, integration, &msg).await,
            (IntegrationKind::CoupaToBusinessCentral, DocumentKind::PurchaseOrder) => {
                orders::map_coupa_order(&self.env, &self.clients()?, integration, &msg).await
            }
            (IntegrationKind::CoupaToBusinessCentral, DocumentKind::Supplier) => {
                suppliers::map_coupa_supplier(&self.env, &self.clients()?, integration, &msg).await
            }
            // A BC notification's trigger: run the paid-status poll now.
            (IntegrationKind::CoupaToBusinessCentral, DocumentKind::Payment) => {
                let r = payments::poll_paid(&self.env, self.bc()?, integration).await?;
                Ok(MapOutcome::Skipped(format!(
                    "paid-status poll: {} payment(s) queued",
                    r.queued
                )))
            }
        }
    }

    /// The post step for one post message body.
    pub async fn handle_post(&self, body: &str) -> Result<PostOutcome, StepError> {
        let v: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| StepError::Poison(format!("undecodable post message: {e}")))?;
        if v.get("task").is_some() {
            let msg: SyncMessage = serde_json::from_value(v)
                .map_err(|e| StepError::Poison(format!("undecodable sync message: {e}")))?;
            self.integration(&msg.integration)?;
            let (env, owner, name) = (&self.env, self.owner.as_str(), msg.integration.as_str());
            return match &msg.task {
                SyncTask::PurchaseOrder { order } => {
                    orders::post_bc_order(env, self.bc()?, owner, name, order).await
                }
                SyncTask::Vendor { vendor } => {
                    suppliers::post_bc_vendor(env, self.bc()?, owner, name, vendor).await
                }
                SyncTask::Payment { payment } => {
                    payments::confirm_coupa_payment(env, self.coupa()?, owner, name, payment).await
                }
            };
        }
        let msg: PostMessage = serde_json::from_value(v)
            .map_err(|e| StepError::Poison(format!("undecodable post message: {e}")))?;
        self.integration(&msg.integration)?;
        post::bc_purchase_invoice(&self.env, self.bc()?, &self.owner, &msg).await
    }

    /// Runs the step of one delivered message (the `receive_count`-th delivery) and says what
    /// the runtime must do with it. Failures are audited here, as `dead_lettered` on the last
    /// allowed delivery, so both runtimes leave the same trail.
    pub async fn run_message(
        &self,
        queue: QueueName,
        body: &str,
        receive_count: u32,
        stats: &mut DrainStats,
    ) -> Delivery {
        let integration = message_identity(body).0;
        if let Some(wait) = self.backoffs.remaining(&integration) {
            // Backed off after a systemic failure: do not spend a request, nor a delivery.
            stats.deferred += 1;
            return Delivery::Deferred {
                error: StepError::Systemic {
                    reason: format!("integration '{integration}' is backed off"),
                    after: Some(wait),
                },
                wait,
            };
        }
        let result = match queue {
            QueueName::Ingest => self.handle_ingest(body).await.map(|o| {
                match o {
                    MapOutcome::Mapped => stats.mapped += 1,
                    MapOutcome::Parked(_) => stats.parked += 1,
                    MapOutcome::Skipped(_) => stats.skipped += 1,
                }
                Delivery::Done
            }),
            QueueName::Post => self.handle_post(body).await.and_then(|o| {
                Ok(match o {
                    PostOutcome::Posted { .. } => {
                        stats.posted += 1;
                        Delivery::Done
                    }
                    PostOutcome::AlreadyPosted { .. } => {
                        stats.already_posted += 1;
                        Delivery::Done
                    }
                    PostOutcome::Parked(_) => {
                        stats.parked += 1;
                        Delivery::Done
                    }
                    PostOutcome::Busy { owner, retry_in } if receive_count < self.max_receives => {
                        tracing::info!(%owner, ?retry_in, "document claimed by another worker; retrying after its lease");
                        Delivery::RetryIn(retry_in)
                    }
                    PostOutcome::Unsettled { retry_in } if receive_count < self.max_receives => {
                        tracing::info!(?retry_in, "an earlier create may still land in BC; looking again later");
                        Delivery::RetryIn(retry_in)
                    }
                    PostOutcome::Unsettled { .. } => {
                        return Err(StepError::retry("an earlier create's outcome was still unknown at the last allowed delivery"));
                    }
                    PostOutcome::Busy { owner, .. } => {
                        return Err(StepError::retry(format!("still claimed by {owner} at the last allowed delivery")));
                    }
                })
            }),
        };
        let error = match result {
            Ok(d) => {
                self.backoffs.clear(&integration);
                return d;
            }
            Err(error) => error,
        };
        stats.failed_attempts += 1;
        match error {
            StepError::Poison(_) => {
                stats.dead_lettered += 1;
                self.audit_failure(queue, body, receive_count, &error, true)
                    .await;
                Delivery::DeadLetterNow { error }
            }
            StepError::Systemic { after, ref reason } => {
                let wait = self.backoffs.back_off(&integration, after, reason);
                let text = StepError::Systemic {
                    reason: format!(
                        "integration '{integration}' backed off for {} s: {error}",
                        wait.as_secs()
                    ),
                    after: Some(wait),
                };
                self.audit_failure(queue, body, receive_count, &text, false)
                    .await;
                Delivery::Deferred { error, wait }
            }
            StepError::Retry { after, .. } => {
                let dead_lettered = receive_count >= self.max_receives;
                if dead_lettered {
                    stats.dead_lettered += 1;
                }
                self.audit_failure(queue, body, receive_count, &error, dead_lettered)
                    .await;
                let retry_in = self
                    .retry
                    .backoff(receive_count)
                    .max(after.unwrap_or_default());
                Delivery::Failed {
                    error,
                    dead_lettered,
                    retry_in,
                }
            }
        }
    }

    /// Puts a delivered message where its [`Delivery`] says. `delete_done`: the embedded
    /// runtime deletes finished messages itself; on Lambda the event source does.
    pub async fn settle(
        &self,
        queue: QueueName,
        m: &Message,
        delivery: &Delivery,
        delete_done: bool,
    ) -> Result<(), crate::ports::QueueError> {
        let q = &self.env.queue;
        match delivery {
            Delivery::Done if delete_done => q.ack(queue, &m.receipt).await,
            Delivery::Done => Ok(()),
            Delivery::RetryIn(wait) => q.retry_later(queue, &m.receipt, *wait).await,
            Delivery::Failed { retry_in, .. } => q.retry_later(queue, &m.receipt, *retry_in).await,
            Delivery::DeadLetterNow { .. } => q.dead_letter(queue, m).await,
            Delivery::Deferred { wait, .. } => q.defer(queue, m, *wait).await,
        }
    }

    /// The embedded runtime's handling of one received message: run it, then settle it on the
    /// queue.
    async fn process(
        &self,
        queue: QueueName,
        m: Message,
        stats: &mut DrainStats,
    ) -> Result<(), StepError> {
        let d = self
            .run_message(queue, &m.body, m.receive_count, stats)
            .await;
        self.settle(queue, &m, &d, true)
            .await
            .map_err(|e| StepError::new("queue", e))
    }

    async fn audit_failure(
        &self,
        queue: QueueName,
        body: &str,
        receive_count: u32,
        e: &StepError,
        last: bool,
    ) {
        let (integration, kind, source_id) = message_identity(body);
        let step = if queue == QueueName::Ingest {
            Step::Map
        } else {
            Step::Post
        };
        let status = if last {
            AuditStatus::DeadLettered
        } else {
            AuditStatus::Failed
        };
        let text = format!("attempt {receive_count} of {}: {e}", self.max_receives);
        let item = audit_item(
            self.env.clock.now(),
            &integration,
            &kind,
            &source_id,
            step,
            status,
        )
        .with_error(text);
        if let Err(err) = self.env.store.append_audit(&item).await {
            tracing::error!(error = %err, "could not write the audit trail");
        }
        tracing::warn!(queue = queue.as_str(), %source_id, attempt = receive_count, error = %e, "step failed");
    }

    /// Works the queues with `workers` concurrent tasks until both are empty (nothing visible,
    /// nothing in flight, nothing waiting for a retry). `progress` is called after each message.
    pub async fn drain(
        self: &Arc<Self>,
        workers: usize,
        progress: Arc<dyn Fn(&DrainStats) + Send + Sync>,
    ) -> Result<DrainStats, StepError> {
        let total = Arc::new(tokio::sync::Mutex::new(DrainStats::default()));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers.max(1) {
            let me = self.clone();
            let total = total.clone();
            let progress = progress.clone();
            tasks.spawn(async move { me.worker(total, progress).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| StepError::new("worker task", e))??;
        }
        let stats = total.lock().await.clone();
        Ok(stats)
    }

    async fn worker(
        self: Arc<Self>,
        total: Arc<tokio::sync::Mutex<DrainStats>>,
        progress: Arc<dyn Fn(&DrainStats) + Send + Sync>,
    ) -> Result<(), StepError> {
        let qerr = |e: crate::ports::QueueError| StepError::new("queue", e);
        loop {
            let mut worked = false;
            // Post first: finishing documents beats starting new ones.
            for queue in [QueueName::Post, QueueName::Ingest] {
                let batch = self.env.queue.receive(queue, 1).await.map_err(qerr)?;
                for m in batch {
                    worked = true;
                    let mut local = DrainStats::default();
                    self.process(queue, m, &mut local).await?;
                    let mut t = total.lock().await;
                    add(&mut t, &local);
                    progress(&t);
                }
            }
            if !worked {
                let depth = self
                    .env
                    .queue
                    .depth(QueueName::Ingest)
                    .await
                    .map_err(qerr)?
                    + self.env.queue.depth(QueueName::Post).await.map_err(qerr)?;
                // Nothing left, or what is left waits for a backed-off integration: that wait
                // is minutes, so this drain ends and the next run (or cycle) picks it up.
                if depth == 0 || self.backoffs.any() {
                    return Ok(());
                }
                // Something is in flight elsewhere or waiting for its retry time.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn add(t: &mut DrainStats, l: &DrainStats) {
    t.mapped += l.mapped;
    t.parked += l.parked;
    t.skipped += l.skipped;
    t.posted += l.posted;
    t.already_posted += l.already_posted;
    t.failed_attempts += l.failed_attempts;
    t.dead_lettered += l.dead_lettered;
    t.deferred += l.deferred;
}

/// (integration, document kind, source id) of a message body, best effort, for audit items
/// about failures.
fn message_identity(body: &str) -> (String, String, String) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let integration = v["integration"].as_str().unwrap_or("(unknown)").to_string();
    if let Ok(sync) = serde_json::from_value::<SyncMessage>(v.clone()) {
        return (
            integration,
            sync.task.kind().as_str().to_string(),
            sync.task.source_id().to_string(),
        );
    }
    let kind = v["kind"]
        .as_str()
        .or_else(|| v["invoice"]["kind"].as_str())
        .unwrap_or("invoice")
        .to_string();
    let source = v["source_id"]
        .as_str()
        .or_else(|| v["invoice"]["source_id"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| unreadable_id(body));
    (integration, kind, source)
}

/// A name for a message whose document cannot be read from it: one per body, so each such
/// message in a dead-letter queue gets its own audit item (not one for all "(unknown)" ones).
fn unreadable_id(body: &str) -> String {
    format!(
        "(unreadable message {})",
        crate::digest::short_hex(body.as_bytes(), 16)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_messages_get_one_identity_each() {
        let a = message_identity("{not json");
        let b = message_identity("{not json either");
        assert_ne!(a.2, b.2);
        assert!(a.2.starts_with("(unreadable message "), "{}", a.2);
        assert_eq!(message_identity("{not json").2, a.2, "stable per body");
    }
    use crate::adapters::embedded::{Db, SqliteStore};
    use crate::ports::Mappings;

    fn is_send<T: Send>(_: &T) {}

    #[tokio::test]
    async fn loading_the_configured_mappings_can_run_on_any_task() {
        let cfg = Config::parse(include_str!("../../examples/mlc.toml")).unwrap();
        let store = SqliteStore::new(Db::open_in_memory().unwrap());
        let fut = load_config_mappings(&cfg, &store);
        is_send(&fut);
        assert_eq!(fut.await.unwrap(), 2);
        assert_eq!(
            store
                .mapping("coupa-bc/supplier", "SUP-002")
                .await
                .unwrap()
                .as_deref(),
            Some("V20000")
        );
    }
}
