//! The AWS runtime under fault: a deployment's queues, tables and secrets on moto (one stack
//! per scenario), Lambda execution environments built as the functions build them
//! (`mlc_lambda::Context::new`), and a driver that plays Lambda's SQS event source: it receives
//! a batch from the FIFO queue, invokes the real handler (`mlc_lambda::sqs::handle_batch`) and
//! deletes what the handler did not report as failed. A failed record is not deleted and comes
//! back after the queue's visibility timeout; after `maxReceiveCount` receives SQS itself moves
//! it to the dead-letter queue.
//!
//! A crash is an execution environment that dies during an invocation: the records before the
//! crashing one ran and finished, the crashing one stops at its boundary
//! (`post_with_crash`, `map_with_crash`, or just before the event source deletes it), nothing
//! of the batch is deleted, and the worker comes back as a NEW environment (a cold start:
//! another ledger owner, cold token caches).
//!
//! Time passing, as in the embedded driver (`driver.rs`), without waiting for it: when no
//! worker is inside an invocation and none has received anything for a while, the queues hold
//! only messages that wait for time (in flight with a dead environment, failed and waiting
//! out the visibility timeout, or delayed by the handler until another owner's lease ends).
//! The coordinator then does what the clock would: every such message becomes visible
//! (`ChangeMessageVisibility` 0 with the receipt it was last delivered with), every claimed
//! ledger item's `lease_until` and every `unsettled_create_at` move into the past. The
//! queue's own visibility timeout (30 s) is longer than any scenario needs, so only these
//! jumps, never wall-clock expiry, bring messages back (except in the scenario that tests the
//! real visibility timeout, which sets its own).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use mlc_lambda::Context;
use mlc_shared::adapters::aws::{AwsSettings, SqsQueue};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, AuditFilter, AuditStatus, Message, Queue, QueueName};
use mlc_shared::steps::{IngestMessage, PostEnvelope};

use super::driver::{Boundary, Counters, CrashPlan};
use super::rig::{Rig, deployment_secrets, own_addresses, shorten_target_timeout};

/// The queues' visibility timeout in the driven scenarios: longer than any invocation, so a
/// message comes back only when the coordinator makes time pass.
pub const VISIBILITY: Duration = Duration::from_secs(30);

/// How long a worker that found nothing waits before it asks the queues again.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// What the contract's redrive policy allows (`ensure_resources`, `infra/template.yaml`:
/// maxReceiveCount 5).
pub const REDRIVE_MAX_RECEIVES: u32 = 5;

/// A fixed-width timestamp (the store's format) `ago` before now.
fn past(ago: chrono::Duration) -> String {
    (chrono::Utc::now() - ago)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

fn unique_prefix(scenario: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let short: String = scenario
        .split('_')
        .filter_map(|w| w.chars().next())
        .collect();
    format!(
        "fs{short}{:x}{}",
        nanos ^ std::process::id() as u64,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One deployment on moto, and the execution environments built on it.
pub struct Stack {
    /// The simulators, alive as long as the stack.
    pub rig: Arc<dyn Rig>,
    pub sdk: aws_config::SdkConfig,
    pub settings: AwsSettings,
    /// The deployment's configuration (`MLC_CONFIG`); `runtime.max_receives` matches the
    /// queues' redrive policy.
    pub cfg: Config,
    /// A shorter HTTP timeout for the target than the product's 60 s (the lost-answer
    /// scenario), as the embedded suite does.
    pub target_timeout: Option<Duration>,
    /// The event source's view of the queues: no long poll.
    pub source: SqsQueue,
    pub ddb: aws_sdk_dynamodb::Client,
    created: Mutex<Vec<Arc<Context>>>,
}

impl Stack {
    /// Changes both queues' visibility timeout, as an operator would in the template.
    pub async fn set_visibility(&self, visibility: Duration) {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        for url in [
            &self.settings.ingest_queue_url,
            &self.settings.post_queue_url,
        ] {
            sqs.set_queue_attributes()
                .queue_url(url)
                .attributes(
                    QueueAttributeName::VisibilityTimeout,
                    visibility.as_secs().to_string(),
                )
                .send()
                .await
                .unwrap();
        }
    }

    /// Queues (FIFO, with FIFO DLQs; redrive after `max_receives`), tables and secrets of a
    /// fresh deployment named after the scenario.
    pub async fn new(
        rig: Arc<dyn Rig>,
        scenario: &str,
        visibility: Duration,
        max_receives: u32,
        target_timeout: Option<Duration>,
    ) -> Arc<Self> {
        let sdk = mlc_lambda::local::emulator_sdk_config(mlc_sandbox::moto::endpoint()).await;
        let settings = mlc_lambda::local::stack(&sdk, &unique_prefix(scenario), visibility)
            .await
            .unwrap();
        let secrets = deployment_secrets(rig.as_ref());
        for (name, value) in secrets {
            mlc_lambda::local::put_secret(&sdk, &settings, &name, &value)
                .await
                .unwrap();
        }
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        if max_receives != REDRIVE_MAX_RECEIVES {
            // The deployment's redrive policy, changed as an operator would in the template.
            for (queue, dlq) in [
                (&settings.ingest_queue_url, &settings.ingest_dlq_url),
                (&settings.post_queue_url, &settings.post_dlq_url),
            ] {
                let arn = sqs
                    .get_queue_attributes()
                    .queue_url(dlq)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send()
                    .await
                    .unwrap()
                    .attributes
                    .unwrap()
                    .remove(&QueueAttributeName::QueueArn)
                    .unwrap();
                let policy = serde_json::json!({
                    "deadLetterTargetArn": arn,
                    "maxReceiveCount": max_receives.to_string(),
                });
                sqs.set_queue_attributes()
                    .queue_url(queue)
                    .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
                    .send()
                    .await
                    .unwrap();
            }
        }
        let mut cfg = rig.config().clone();
        cfg.runtime.max_receives = max_receives;
        // The functions know their queues' visibility timeout: a running step renews its
        // message's lease every third of it.
        cfg.runtime.visibility_timeout_secs = visibility.as_secs().max(1);
        let source = SqsQueue::new(sqs, &settings).with_wait_time(Duration::ZERO);
        Arc::new(Self {
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            rig,
            sdk,
            settings,
            cfg,
            target_timeout,
            source,
            created: Mutex::new(Vec::new()),
        })
    }

    /// A new execution environment (a cold start): what the function's `main` builds, with
    /// clients of its own that reach the simulators through their own addresses.
    pub async fn context(&self) -> Arc<Context> {
        let mut cfg = self.cfg.clone();
        own_addresses(self.rig.as_ref(), &mut cfg).await;
        if let Some(timeout) = self.target_timeout {
            shorten_target_timeout(&mut cfg, timeout);
        }
        let ctx = Context::new(cfg, self.settings.clone(), &self.sdk)
            .await
            .unwrap();
        let ctx = Arc::new(ctx);
        self.created.lock().unwrap().push(ctx.clone());
        ctx
    }

    /// Requests the HTTP clients of every environment built here repeated.
    pub fn http_retries(&self) -> u64 {
        let mut n = 0;
        for c in self.created.lock().unwrap().iter() {
            for (_, system) in c.pipeline.systems.iter() {
                let stats = system.stats();
                n += stats.retries.load(Ordering::Relaxed)
                    + stats.token_refreshes.load(Ordering::Relaxed);
            }
        }
        n
    }

    /// Messages in both queues (visible, in flight, delayed).
    pub async fn depth(&self) -> u64 {
        self.source.depth(QueueName::Ingest).await.unwrap()
            + self.source.depth(QueueName::Post).await.unwrap()
    }

    /// Audit items of `status` (all documents).
    pub async fn audit_count(&self, ctx: &Context, status: AuditStatus) -> usize {
        let f = AuditFilter {
            status: Some(status),
            ..AuditFilter::default()
        };
        ctx.pipeline.env.store.query_audit(&f).await.unwrap().len()
    }

    /// The repeats counted on the audit rows of `status` (each is a delivery that found its
    /// work done already).
    pub async fn audit_repeats(&self, ctx: &Context, status: AuditStatus) -> u64 {
        let f = AuditFilter {
            status: Some(status),
            ..AuditFilter::default()
        };
        let items = ctx.pipeline.env.store.query_audit(&f).await.unwrap();
        items.iter().map(|i| i.repeats).sum()
    }

    /// Every claimed ledger item's lease runs out; every create whose answer was lost has had
    /// BC's whole settle window. Call only when no step is running.
    pub async fn leases_run_out(&self) {
        let table = &self.settings.tables.ledger;
        let mut start = None;
        loop {
            let out = self
                .ddb
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in out.items() {
                let key = item["ledger_key"].clone();
                let claimed =
                    item.get("state").and_then(|s| s.as_s().ok()) == Some(&"claimed".to_string());
                if claimed {
                    self.ddb
                        .update_item()
                        .table_name(table)
                        .key("ledger_key", key.clone())
                        .update_expression("SET lease_until = :past")
                        .expression_attribute_values(
                            ":past",
                            AttributeValue::S(past(chrono::Duration::seconds(1))),
                        )
                        .send()
                        .await
                        .unwrap();
                }
                if item.contains_key("unsettled_create_at") {
                    self.ddb
                        .update_item()
                        .table_name(table)
                        .key("ledger_key", key)
                        .update_expression("SET unsettled_create_at = :past")
                        .condition_expression("attribute_exists(unsettled_create_at)")
                        .expression_attribute_values(
                            ":past",
                            AttributeValue::S(past(chrono::Duration::days(1))),
                        )
                        .send()
                        .await
                        .ok();
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
    }
}

/// The scheduled poll, as EventBridge invokes the poller function. A poll can fail under
/// faults; the next one covers the same window.
pub async fn poll(ctx: &Context) -> bool {
    for i in &ctx.config.integrations {
        let input = serde_json::json!({ "integration": i.name });
        if let Err(e) = mlc_lambda::poller::handle(ctx, input).await {
            eprintln!("poll of {} failed: {e:#}", i.name);
            return false;
        }
    }
    true
}

/// The dead-letter audit that every scheduled poll runs, alone: SQS moves a message to its
/// dead-letter queue by itself (a worker that stopped during each delivery never recorded a
/// failure), so what the last run dead-lettered is audited at the next schedule.
pub async fn audit_dead_letters(ctx: &Context) {
    ctx.pipeline
        .audit_dead_letters()
        .await
        .expect("auditing the dead-letter queues");
}

/// Polls until one succeeds (at most `tries`).
pub async fn poll_until_ok(ctx: &Context, tries: usize) {
    for _ in 0..tries {
        if poll(ctx).await {
            return;
        }
    }
    panic!("no poll succeeded in {tries} tries");
}

/// API Gateway (HTTP API, payload v2) in front of the webhook function, on a loopback port:
/// returns the URL Coupa posts to.
pub async fn webhook_gateway(ctx: Arc<Context>) -> String {
    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};

    async fn invoke(
        State(ctx): State<Arc<Context>>,
        Path((source, integration)): Path<(String, String)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let mut req = aws_lambda_events::event::apigw::ApiGatewayV2httpRequest::default();
        req.path_parameters = HashMap::from([
            ("source".to_string(), source.clone()),
            ("integration".to_string(), integration.clone()),
        ]);
        req.raw_path = Some(format!("/webhooks/{source}/{integration}"));
        // The gateway's route is POST only, as the template's.
        req.request_context.http.method = aws_lambda_events::http::Method::POST;
        for (k, v) in &headers {
            if let Ok(v) = v.to_str() {
                req.headers.insert(k.clone(), v.parse().unwrap());
            }
        }
        req.body = Some(String::from_utf8_lossy(&body).into_owned());
        let resp = mlc_lambda::webhook::handle(&ctx, req).await;
        let status = StatusCode::from_u16(resp.status_code as u16).unwrap();
        (status, String::new())
    }

    let app = axum::Router::new()
        .route(
            "/webhooks/{source}/{integration}",
            axum::routing::post(invoke),
        )
        .with_state(ctx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/webhooks/coupa/coupa-bc")
}

/// Lambda's SQS event source over both queues, with `workers` execution environments, until
/// the queues are empty; crashes environments per the plan.
pub struct Driver {
    pub stack: Arc<Stack>,
    pub plan: CrashPlan,
    pub seed: u64,
    pub workers: usize,
    /// Records per invocation (the event source's batch size).
    pub batch: usize,
    pub counters: Arc<Counters>,
    /// How long nothing must have been received before time may jump: longer than any request
    /// a simulator is still working on (a `Hang` fault).
    pub server_settle: Duration,
    gate: tokio::sync::RwLock<()>,
    /// Receipts of delivered messages not deleted yet: what time passing makes visible.
    outstanding: Mutex<HashMap<String, QueueName>>,
    last_work: Mutex<Instant>,
}

impl Driver {
    pub fn new(stack: Arc<Stack>, plan: CrashPlan, seed: u64, workers: usize) -> Arc<Self> {
        Self::settling(stack, plan, seed, workers, Duration::ZERO)
    }

    pub fn settling(
        stack: Arc<Stack>,
        plan: CrashPlan,
        seed: u64,
        workers: usize,
        server_settle: Duration,
    ) -> Arc<Self> {
        Self::batched(stack, plan, seed, workers, server_settle, 10)
    }

    /// As [`Driver::settling`], with `batch` records per invocation.
    pub fn batched(
        stack: Arc<Stack>,
        plan: CrashPlan,
        seed: u64,
        workers: usize,
        server_settle: Duration,
        batch: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            stack,
            plan,
            seed,
            workers,
            batch,
            counters: Arc::default(),
            server_settle,
            gate: tokio::sync::RwLock::new(()),
            outstanding: Mutex::new(HashMap::new()),
            last_work: Mutex::new(Instant::now()),
        })
    }

    /// Works both queues until they are empty.
    pub async fn run(self: &Arc<Self>) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.workers.max(1) {
            let me = self.clone();
            tasks.spawn(async move { me.worker().await });
        }
        let coordinator = {
            let me = self.clone();
            tokio::spawn(async move { me.coordinate().await })
        };
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        coordinator.abort();
    }

    async fn coordinate(&self) {
        let quiet = self.server_settle.max(IDLE_POLL * 3);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _all_idle = self.gate.write().await;
            let idle = self.last_work.lock().unwrap().elapsed() >= quiet;
            let waiting: Vec<(String, QueueName)> = if idle {
                self.outstanding.lock().unwrap().drain().collect()
            } else {
                Vec::new()
            };
            if waiting.is_empty() {
                continue;
            }
            for (receipt, queue) in waiting {
                // A receipt of a message SQS has moved to the DLQ meanwhile is refused: fine.
                let _ = self
                    .stack
                    .source
                    .client()
                    .change_message_visibility()
                    .queue_url(self.stack.source.url(queue))
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await;
            }
            self.stack.leases_run_out().await;
            self.stack.rig.time_passed();
            self.counters.time_jumps.fetch_add(1, Ordering::Relaxed);
            *self.last_work.lock().unwrap() = Instant::now();
        }
    }

    async fn worker(self: Arc<Self>) {
        let mut ctx = self.stack.context().await;
        loop {
            let mut worked = false;
            let mut crashed = false;
            {
                let _in_invocation = self.gate.read().await;
                for queue in [QueueName::Post, QueueName::Ingest] {
                    let batch = self.stack.source.receive(queue, self.batch).await.unwrap();
                    if batch.is_empty() {
                        continue;
                    }
                    worked = true;
                    *self.last_work.lock().unwrap() = Instant::now();
                    {
                        let mut o = self.outstanding.lock().unwrap();
                        for m in &batch {
                            o.insert(m.receipt.clone(), queue);
                        }
                    }
                    crashed = self.invoke(&ctx, queue, batch).await;
                    *self.last_work.lock().unwrap() = Instant::now();
                    if crashed {
                        break;
                    }
                }
            }
            if crashed {
                // The environment died; Lambda starts a new one.
                ctx = self.stack.context().await;
                self.counters.restarts.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !worked {
                if self.stack.depth().await == 0 {
                    return;
                }
                // moto is the bottleneck of this suite: an idle worker asks rarely.
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }

    /// One invocation of the function with `batch`; true when its environment died.
    async fn invoke(&self, ctx: &Arc<Context>, queue: QueueName, batch: Vec<Message>) -> bool {
        let max = ctx.pipeline.max_receives;
        let crash = batch.iter().enumerate().find_map(|(i, m)| {
            self.plan
                .crash_for(self.seed, queue, m, max)
                .map(|b| (i, b))
        });
        let Some((at, boundary)) = crash else {
            self.handle(ctx, queue, &batch, true).await;
            return false;
        };
        // The records before the crashing one ran to the end, but the invocation never
        // answered: the event source deletes nothing.
        if at > 0 {
            self.handle(ctx, queue, &batch[..at], false).await;
        }
        let m = &batch[at];
        let p = &ctx.pipeline;
        match boundary {
            Boundary::MapBeforeAck | Boundary::PostBeforeAck => {
                self.handle(ctx, queue, std::slice::from_ref(m), false)
                    .await;
            }
            Boundary::Map(point) => {
                // Finishing before the boundary (parked, skipped) or stopping at it: either
                // way the environment dies before the answer.
                if serde_json::from_str::<IngestMessage>(&m.body).is_ok() {
                    let _ = p.handle_ingest_crashing(&m.body, Some(point)).await;
                }
            }
            Boundary::Post(point) => {
                if PostEnvelope::decode(&m.body).is_ok() {
                    let _ = p.handle_post_crashing(&m.body, &p.owner, Some(point)).await;
                }
            }
        }
        self.counters.crashes.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The real handler on `msgs`; with `delete`, what the event source does with the answer.
    async fn handle(&self, ctx: &Context, queue: QueueName, msgs: &[Message], delete: bool) {
        let mut ev = SqsEvent::default();
        for m in msgs {
            let mut r = SqsMessage::default();
            r.message_id = Some(m.receipt.clone());
            r.receipt_handle = Some(m.receipt.clone());
            r.body = Some(m.body.clone());
            r.attributes.insert(
                "ApproximateReceiveCount".into(),
                m.receive_count.to_string(),
            );
            r.attributes
                .insert("MessageGroupId".into(), m.group_id.clone());
            r.attributes
                .insert("MessageDeduplicationId".into(), m.dedup_id.clone());
            ev.records.push(r);
        }
        let resp = mlc_lambda::sqs::handle_batch(ctx, queue, ev).await;
        let failed: Vec<String> = resp
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        self.counters
            .redeliveries
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        if !delete {
            return;
        }
        // As the event source does: one DeleteMessageBatch for what succeeded.
        let done: Vec<&Message> = msgs
            .iter()
            .filter(|m| !failed.contains(&m.receipt))
            .collect();
        for chunk in done.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt)
                        .build()
                        .unwrap()
                })
                .collect();
            let out = self
                .stack
                .source
                .client()
                .delete_message_batch()
                .queue_url(self.stack.source.url(queue))
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "DeleteMessageBatch: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                });
            self.counters
                .stale_acks
                .fetch_add(out.failed().len() as u64, Ordering::Relaxed);
            let mut o = self.outstanding.lock().unwrap();
            for m in chunk {
                o.remove(&m.receipt);
            }
        }
    }

    /// Hands `msgs` to the handler as one invocation and deletes what succeeded (a worker that
    /// got them itself, outside the driver's loop).
    pub async fn deliver(&self, ctx: &Context, queue: QueueName, msgs: &[Message]) {
        self.handle(ctx, queue, msgs, true).await;
    }
}
