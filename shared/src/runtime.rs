//! Wiring the steps to the configured flows, and the message handling both runtimes share:
//! decode a queue message, hand it to its integration's flow, and say what the queue must do
//! with it. The embedded runtime drains its SQLite queues here; the Lambda functions call
//! `run_message` per SQS record. Nothing here names a system: the flows do.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::flows::{self, SecretLookup, SharedFlow, Upkeep, WebhookReply, WebhookRequest};
use crate::ports::{
    AuditFilter, AuditStatus, Clock, Message, ParkedDoc, Queue, QueueError, QueueName, Secrets,
    Step, Store,
};
use crate::steps::map::{MapCrash, MapOutcome};
use crate::steps::poll::PollReport;
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::Instances;
use crate::systems::http::{RetryPolicy, TokenStore};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Systems(#[from] crate::systems::BuildError),
    #[error(transparent)]
    Flows(#[from] flows::FlowError),
    #[error("loading the mapping tables of the configuration: {0}")]
    Mappings(#[from] crate::ports::StoreError),
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

/// One runtime's pipeline: the ports, the system instances, one flow per integration.
pub struct Pipeline<Q, S, C> {
    pub env: Env<Q, S, C>,
    pub systems: Instances,
    pub flows: Vec<SharedFlow<Q, S, C>>,
    /// Names this worker in ledger claims.
    pub owner: String,
    pub max_receives: u32,
    /// How a failed message's redeliveries back off (`runtime.retry_base_delay_ms`).
    pub retry: RetryPolicy,
    /// Integrations backed off after a systemic failure (per process or Lambda environment).
    pub backoffs: Backoffs,
    /// How long a received message stays hidden; a running step's lease is renewed every
    /// third of it.
    pub visibility: Duration,
    /// The longest `Retry-After` honoured for one message; a longer one backs the integration
    /// off (`runtime.max_server_wait_secs`).
    pub max_server_wait: Duration,
}

/// What an operator's give-up did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// The source was answered (now, or by an earlier give-up: `AlreadyPosted`); the document
    /// is closed.
    Answered(PostOutcome),
    /// The integration offers no give-up for this document: it stays parked.
    NotOffered,
    /// The answer was not written (the source refused it, another worker holds it): the
    /// document stays parked, with why.
    NotYet(PostOutcome),
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

/// How far ahead a drain looks for retries to wait for (at least the visibility timeout, so an
/// in-flight message is always waited for).
const DRAIN_LINGER: Duration = Duration::from_secs(60);

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
    /// Deliveries whose receipt was no longer valid when settled (delivered again meanwhile).
    pub lost_receipts: u64,
}

impl<Q: Queue + 'static, S: Store + 'static, C: Clock + 'static> Pipeline<Q, S, C> {
    /// The one builder of both runtimes: every configured system's client (reading its
    /// secrets), one flow per integration, the configuration's mapping rows loaded.
    /// `token_store`: where client-credentials tokens are kept across processes (the embedded
    /// runtime passes its secrets file); `None` keeps them in memory (Lambda: warm instances
    /// keep them, and Secrets Manager is never written for a cache).
    pub async fn build<SE: Secrets + Clone + 'static>(
        cfg: &Config,
        env: Env<Q, S, C>,
        secrets: &SE,
        owner: String,
        token_store: Option<Arc<dyn TokenStore>>,
    ) -> Result<Self, BuildError> {
        let systems = Instances::from_config_caching_tokens(cfg, secrets, token_store).await?;
        Self::with_systems(cfg, env, systems, owner).await
    }

    /// As [`Pipeline::build`], over system instances built by the caller (tests that need a
    /// client with other settings).
    pub async fn with_systems(
        cfg: &Config,
        env: Env<Q, S, C>,
        systems: Instances,
        owner: String,
    ) -> Result<Self, BuildError> {
        load_config_mappings(cfg, &env.store).await?;
        let flows = flows::build(cfg, &systems)?;
        Ok(Self {
            env,
            systems,
            flows,
            owner,
            max_receives: cfg.runtime.max_receives,
            retry: RetryPolicy {
                max_attempts: cfg.runtime.max_receives,
                base_delay: Duration::from_millis(cfg.runtime.retry_base_delay_ms),
                max_delay: Duration::from_secs(cfg.runtime.retry_max_delay_secs),
            },
            backoffs: Backoffs::default(),
            visibility: Duration::from_secs(cfg.runtime.visibility_timeout_secs.max(1)),
            max_server_wait: Duration::from_secs(cfg.runtime.max_server_wait_secs),
        })
    }

    /// The flow of integration `name`.
    pub fn flow(&self, name: &str) -> Option<&SharedFlow<Q, S, C>> {
        self.flows.iter().find(|f| f.name() == name)
    }

    /// The configured integrations' names, in configuration order.
    pub fn integration_names(&self) -> Vec<&str> {
        self.flows.iter().map(|f| f.name()).collect()
    }

    fn flow_of(&self, name: &str) -> Result<&SharedFlow<Q, S, C>, StepError> {
        self.flow(name)
            .ok_or_else(|| StepError::Poison(format!("integration '{name}' is not configured")))
    }

    /// An operator gives up on a parked document (`mlc replay --give-up`): its flow answers
    /// the source (exactly once, through `write_once`) that it will not be transferred, with
    /// `reason`; once that answer is written the document is closed: unparked, never retried,
    /// audited as `discarded` with the reason. A flow that offers no give-up for it, or an
    /// answer that is not written yet (refused, another worker holds it), leaves it parked.
    pub async fn give_up(&self, parked: &ParkedDoc, reason: &str) -> Result<GiveUp, StepError> {
        let flow = self.flow_of(&parked.integration)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StepError::Poison(
                "a give-up needs a reason (it is sent to the source and audited)".into(),
            ));
        }
        let outcome = match flow.give_up(&self.env, &self.owner, parked, reason).await? {
            None => return Ok(GiveUp::NotOffered),
            Some(o) => o,
        };
        let (id, number) = match &outcome {
            PostOutcome::Posted { id, number } | PostOutcome::AlreadyPosted { id, number } => {
                (id.clone(), number.clone())
            }
            _ => return Ok(GiveUp::NotYet(outcome)),
        };
        self.env
            .store
            .unpark(&parked.integration, &parked.kind, &parked.source_id)
            .await
            .map_err(|e| StepError::new("closing the parked document", e))?;
        let mut item = audit_item(
            self.env.clock.now(),
            &parked.integration,
            &parked.kind,
            &parked.source_id,
            Step::Replay,
            AuditStatus::Discarded,
        )
        .with_error(format!(
            "given up by hand: {reason} (the source was answered; was parked: {})",
            parked.reason
        ));
        item.source_document_number = parked.source_document_number.clone();
        if !id.is_empty() {
            item = item.with_target(&id, Some(&number));
        }
        self.env
            .store
            .append_audit(&item)
            .await
            .map_err(|e| StepError::new("writing the audit trail", e))?;
        Ok(GiveUp::Answered(outcome))
    }

    /// Scheduled upkeep of one integration (renewing webhook subscriptions); one line per
    /// thing done.
    pub async fn upkeep(
        &self,
        name: &str,
        secrets: &dyn SecretLookup,
    ) -> Result<Vec<Upkeep>, StepError> {
        self.flow_of(name)?.upkeep(&self.env, secrets).await
    }

    /// A request on `/webhooks/<integration>/<channel>`.
    pub async fn webhook(
        &self,
        integration: &str,
        secrets: &dyn SecretLookup,
        req: WebhookRequest<'_>,
    ) -> WebhookReply {
        // Before the name is looked up, so the answer is the same for every name.
        if req.body.len() > crate::steps::webhook::MAX_BODY_BYTES {
            let e = crate::steps::webhook::WebhookError::TooLarge(req.body.len());
            return WebhookReply::text(e.http_status(), format!("{e}\n"));
        }
        match self.flow(integration) {
            Some(f) => f.webhook(&self.env, secrets, req).await,
            // Answered like a bad signature: no enumeration, no reflection of the name.
            None => {
                tracing::warn!(integration = ?integration, "webhook refused: no such integration");
                WebhookReply::refused()
            }
        }
    }

    /// Polls every integration that is not backed off once (each retries its own parked
    /// documents), and audits dead letters.
    pub async fn poll_all(&self) -> Result<Vec<(String, PollReport)>, StepError> {
        let mut out = Vec::new();
        for f in &self.flows {
            if let Some(r) = self.poll_flow(f).await? {
                out.push((f.name().to_string(), r));
            }
        }
        self.audit_dead_letters().await?;
        Ok(out)
    }

    /// Polls one integration by name (the scheduled poller).
    pub async fn poll_integration(&self, name: &str) -> Result<PollReport, StepError> {
        let f = self.flow_of(name)?;
        let report = self.poll_flow(f).await?;
        self.audit_dead_letters().await?;
        report.ok_or_else(|| StepError::Systemic {
            reason: format!("integration '{name}' is backed off: not polled"),
            after: self.backoffs.remaining(name),
        })
    }

    /// One integration's poll; `None` when it is (or just became) backed off.
    async fn poll_flow(&self, f: &SharedFlow<Q, S, C>) -> Result<Option<PollReport>, StepError> {
        let name = f.name();
        if self.backoffs.remaining(name).is_some() {
            tracing::warn!(integration = %name, "backed off: not polled this cycle");
            return Ok(None);
        }
        match f.poll(&self.env).await {
            Ok(r) => Ok(Some(r)),
            // This integration cannot work now; the others can.
            Err(StepError::Systemic { reason, after }) => {
                let wait = self.backoffs.back_off(name, after, &reason);
                tracing::error!(integration = %name, error = %reason, ?wait, "poll failed; integration backed off");
                self.audit_backoff(name, &reason, wait).await;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes that `integration` backed off after a systemic failure of its poll (credentials
    /// refused, a refresh token revoked or spent): one row per reason, later cycles counted on
    /// it, so finance sees why nothing moves. Best effort: a failed write is logged.
    pub async fn audit_backoff(&self, integration: &str, reason: &str, wait: Duration) {
        let item = audit_item(
            self.env.clock.now(),
            integration,
            "integration",
            integration,
            Step::Poll,
            AuditStatus::Failed,
        )
        .with_error(format!(
            "the integration backs off (next attempt in {} s; nothing is dead-lettered): {reason}",
            wait.as_secs()
        ));
        let once = crate::steps::once_key(&["backoff", integration, reason]);
        if let Err(e) = self.env.store.append_audit_once(&item, &once).await {
            tracing::error!(integration, error = %e, "cannot audit the back-off");
        }
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

    /// The map step for one ingest message body.
    pub async fn handle_ingest(&self, body: &str) -> Result<MapOutcome, StepError> {
        self.handle_ingest_crashing(body, None).await
    }

    /// As [`Pipeline::handle_ingest`], abandoning the step at `crash` as a killed worker
    /// would: for the tests that prove a restart neither duplicates nor loses.
    pub async fn handle_ingest_crashing(
        &self,
        body: &str,
        crash: Option<MapCrash>,
    ) -> Result<MapOutcome, StepError> {
        let msg: IngestMessage = serde_json::from_str(body)
            .map_err(|e| StepError::Poison(format!("undecodable ingest message: {e}")))?;
        self.flow_of(&msg.integration)?
            .map(&self.env, &msg, crash)
            .await
    }

    /// The post step for one post message body.
    pub async fn handle_post(&self, body: &str) -> Result<PostOutcome, StepError> {
        self.handle_post_crashing(body, &self.owner, None).await
    }

    /// As [`Pipeline::handle_post`] on behalf of ledger owner `owner`, abandoning the step at
    /// `crash` as a killed worker would.
    pub async fn handle_post_crashing(
        &self,
        body: &str,
        owner: &str,
        crash: Option<CrashPoint>,
    ) -> Result<PostOutcome, StepError> {
        let msg = PostEnvelope::decode(body)
            .map_err(|e| StepError::Poison(format!("undecodable post message: {e}")))?;
        self.flow_of(&msg.integration)?
            .post(&self.env, owner, &msg, crash)
            .await
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
        let integration = message_integration(body);
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
                        tracing::info!(?retry_in, "an earlier create may still land in the target; looking again later");
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
        let error = self.too_long_a_wait_is_systemic(error);
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
                    .spaced(receive_count)
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
        let d = self.run_leased(queue, &m, stats).await;
        match self.settle(queue, &m, &d, true).await {
            Ok(()) => Ok(()),
            // Another delivery took over (the lease could not be kept): what this one did is
            // recorded in the ledger, so the other ends as already done. Counted, not fatal.
            Err(QueueError::UnknownReceipt { .. }) => {
                stats.lost_receipts += 1;
                tracing::warn!(
                    queue = queue.as_str(),
                    "receipt no longer valid when settling: the message was delivered again meanwhile"
                );
                Ok(())
            }
            Err(e) => Err(StepError::new("queue", e)),
        }
    }

    /// A server that asks for a wait longer than `max_server_wait` (maintenance, an exhausted
    /// daily quota) is down for every document of the integration, not just this one: the whole
    /// integration backs off for the wait it asked, audited, and no delivery is spent on it.
    fn too_long_a_wait_is_systemic(&self, error: StepError) -> StepError {
        match error {
            StepError::Retry {
                after: Some(asked),
                reason,
            } if asked > self.max_server_wait => StepError::Systemic {
                reason: format!(
                    "the server asked for a wait of {} s, more than runtime.max_server_wait_secs \
                     ({} s): {reason}",
                    asked.as_secs(),
                    self.max_server_wait.as_secs()
                ),
                after: Some(asked),
            },
            e => e,
        }
    }

    /// Runs a delivered message's step while keeping its lease: every third of the visibility
    /// timeout the message is hidden again for a whole timeout, so a step that outlives one
    /// (a slow answer) never runs on two workers at once.
    pub async fn run_leased(
        &self,
        queue: QueueName,
        m: &Message,
        stats: &mut DrainStats,
    ) -> Delivery {
        let step = self.run_message(queue, &m.body, m.receive_count, stats);
        crate::steps::lease::renewing(self.visibility, step, || async {
            if let Err(e) = self.env.queue.extend(queue, &m.receipt, self.visibility).await {
                tracing::warn!(queue = queue.as_str(), error = %e, "could not extend the message's lease");
            }
        })
        .await
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
                // What is due before long: visible, in flight (its lease ends within the
                // horizon), or a retry due soon. A retry due later (the schedule spaces them by
                // minutes) is left for the next run or cycle, as is what waits for a
                // backed-off integration.
                let horizon = self.visibility.max(DRAIN_LINGER);
                let q = &self.env.queue;
                let due = q
                    .due_within(QueueName::Ingest, horizon)
                    .await
                    .map_err(qerr)?
                    + q.due_within(QueueName::Post, horizon).await.map_err(qerr)?;
                if due == 0 || self.backoffs.any() {
                    return Ok(());
                }
                // Something is in flight elsewhere or waiting for its retry time: sleep until
                // the queue changes or it is due, not asking again and again meanwhile.
                self.env.queue.idle(IDLE_AT_MOST).await;
            }
        }
    }
}

/// The longest an idle worker sleeps without looking: what another process does to the
/// queues (a `mlc replay` beside `mlc run`) is seen within this.
const IDLE_AT_MOST: Duration = Duration::from_secs(1);

impl DrainStats {
    /// Adds what `other` did to this.
    pub fn add(&mut self, other: &DrainStats) {
        add(self, other);
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
    t.lost_receipts += l.lost_receipts;
}

/// (integration, document kind, source id) of a message body, best effort, for audit items
/// about failures.
fn message_identity(body: &str) -> (String, String, String) {
    if let Ok(m) = serde_json::from_str::<IngestMessage>(body) {
        return (m.integration, m.kind.as_str().to_string(), m.source_id);
    }
    if let Ok(m) = PostEnvelope::decode(body) {
        return (m.integration, m.kind.as_str().to_string(), m.source_id);
    }
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let integration = v["integration"].as_str().unwrap_or("(unknown)").to_string();
    (integration, "(unknown)".into(), unreadable_id(body))
}

/// The integration a message body names, as [`message_identity`] reads it, without decoding
/// the document: both message types name it at the top level, and the step decodes the body
/// anyway (a carried invoice decoded twice per message was a fiftieth of the CPU per invoice).
fn message_integration(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Head {
        integration: String,
    }
    match serde_json::from_str::<Head>(body) {
        Ok(h) => h.integration,
        Err(_) => message_identity(body).0,
    }
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
    fn the_integration_is_read_as_the_full_identity_reads_it() {
        let post = PostEnvelope {
            integration: "coupa-bc".into(),
            kind: crate::model::DocumentKind::Invoice,
            source_id: "7".into(),
            version: None,
            per_run: false,
            payload: serde_json::json!({"lines": [1, 2]}),
        };
        let bodies = [
            serde_json::to_string(&post).unwrap(),
            r#"{"integration":"b1-coupa","task":"payment","payment":{"source_id":"9"}}"#.into(),
            r#"{"integration":7}"#.into(),
            "{not json".into(),
        ];
        for body in &bodies {
            assert_eq!(
                message_integration(body),
                message_identity(body).0,
                "{body}"
            );
        }
    }

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
