//! The fault-injection suite on the AWS runtime: Coupa invoices through the Lambda functions'
//! own code (poller, webhook and SQS handlers of `mlc-lambda`, over SQS FIFO queues with their
//! dead-letter queues, DynamoDB ledger / watermarks / parking / audit trail and Secrets
//! Manager, all on the local emulator moto over the real AWS SDK) while things fail, each
//! fault in its own scenario and then all mixed. The embedded suite (`fault_suite.rs`) is the
//! same idea on the embedded runtime; this one shares its documents, seeds, verdict and table
//! (`fault_suite/world.rs`), crash boundaries (`fault_suite/driver.rs`) and fault knobs
//! (`fault_suite/faults.rs`).
//!
//! Run it alone: `cargo test -p mlc-e2e --test fault_suite_aws -- --nocapture` (needs
//! `moto_server` on PATH; one scenario: add its name). `MLC_FAULT_SEED` seeds it as the
//! embedded suite; `MLC_FAULT_DOCS` changes the number of mappable invoices per scenario
//! (default [`GOOD`], fewer than the embedded suite's 200: moto answers a few hundred
//! requests a second, and each invoice costs some thirty AWS calls).
//!
//! Each scenario prints the embedded suite's row (documents in, posted exactly once,
//! duplicates, lost, parked, dead-lettered, faults, redeliveries, HTTP retries, requests inside
//! an announced wait) and fails on any duplicate, loss or request inside an announced wait, read
//! from the simulators' final state, the DynamoDB parking table, the
//! DLQs and the audit trail. Rows are appended to `$CARGO_TARGET_TMPDIR/fault_suite_aws-<seed>.txt`.
//!
//! How environments crash and how time passes: see `fault_suite/aws.rs`. What moto does not do
//! as SQS does (`mlc_sandbox::moto`): it forgets a deduplication id once its message is
//! deleted, so a repeat after that reaches the steps (only the ledger stops it), as after
//! SQS's five-minute window; and a stale receipt handle still deletes its message.

mod common;

#[path = "fault_suite/aws.rs"]
mod aws;
#[path = "fault_suite/driver.rs"]
mod driver;
#[path = "fault_suite/faults.rs"]
mod faults;
#[path = "fault_suite/rig.rs"]
mod rig;
#[allow(dead_code)]
#[path = "fault_suite/world.rs"]
mod world;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws::{
    Driver, REDRIVE_MAX_RECEIVES, Stack, VISIBILITY, audit_dead_letters, poll, poll_until_ok,
    webhook_gateway,
};
use driver::{Boundary, CrashPlan};
use faults::{
    BC_TARGETS, COUPA_TARGETS, SLOW, SLOW_HTTP_TIMEOUT, SLOW_VISIBILITY, TOO_SLOW, push, storm,
    token_ticker,
};
use mlc_lambda::Context;
use mlc_sandbox::bc::{BcConfig, RateLimit};
use mlc_sandbox::coupa::CoupaConfig;
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::ports::{AuditStatus, OutgoingMessage, Queue, QueueName};
use mlc_shared::steps::post::CrashPoint;
use rand::Rng;
use world::{Poison, Row, STANDARD_POISON, unlimited};

/// Mappable invoices per scenario (the poison ones come on top).
const GOOD: usize = 60;

/// Longer than the `Hang` faults below (1.5 s): time only jumps once hung requests are done.
const HANG_SETTLE: Duration = Duration::from_millis(2_000);

const REPORT: &str = "fault_suite_aws";

/// Mappable invoices of the scenarios that run on the wall clock (the server's waits, slow
/// answers): fewer by default; `MLC_FAULT_DOCS` sets them as the others.
const GOOD_REAL_TIME: usize = 20;

/// A scenario's documents and seed (`world::Scenario`), with this suite's own steps below.
type World = world::Scenario;

async fn world(
    name: &'static str,
    coupa: CoupaConfig,
    bc: BcConfig,
    poison: &[(Poison, usize)],
) -> World {
    world::Scenario::start(name, coupa, bc, poison, "FA", GOOD).await
}

impl World {
    /// A deployment with the contract's redrive policy and a long visibility timeout.
    async fn stack(&self) -> Arc<Stack> {
        Stack::new(
            self.h.clone(),
            self.name,
            VISIBILITY,
            REDRIVE_MAX_RECEIVES,
            None,
        )
        .await
    }

    async fn row(&self, s: &Stack, scenario: &str) -> Row {
        let ctx = s.context().await;
        world::verdict(&self.h, &ctx.pipeline, &self.docs, scenario, self.seed).await
    }

    /// The final state, with the run's counters; prints the table and fails on a duplicate or
    /// a loss.
    async fn finish(&self, s: &Stack, redeliveries: u64, faults: u64) -> Row {
        let mut row = self.row(s, self.name).await;
        row.faults = faults;
        row.http_retries = s.http_retries();
        row.redeliveries = redeliveries;
        row.secs = world::secs(self.started.elapsed());
        world::print_table_to(REPORT, std::slice::from_ref(&row));
        world::assert_clean(std::slice::from_ref(&row));
        row
    }
}

/// A fresh environment's scheduled poll and a drain after the scenario: nothing may be posted
/// again.
async fn nothing_left(s: &Arc<Stack>, seed: u64) {
    let ctx = s.context().await;
    let before = s.audit_count(&ctx, AuditStatus::Posted).await;
    poll_until_ok(&ctx, 5).await;
    Driver::new(s.clone(), CrashPlan::none(), seed, 2)
        .run()
        .await;
    let after = s.audit_count(&ctx, AuditStatus::Posted).await;
    assert_eq!(
        before, after,
        "a clean poll + drain after the scenario posted again"
    );
}

async fn crash_scenario(name: &'static str, boundaries: &[Boundary]) {
    let (c, b) = unlimited();
    let w = world(name, c, b, STANDARD_POISON).await;
    let s = w.stack().await;
    poll_until_ok(&*s.context().await, 1).await;
    let plan = CrashPlan {
        boundaries: boundaries.to_vec(),
        probability: 0.4,
    };
    let d = Driver::new(s.clone(), plan, w.seed, 3);
    d.run().await;
    nothing_left(&s, w.seed).await;
    let crashes = d.counters.crashes.load(Ordering::Relaxed);
    assert!(crashes > 0, "no crash was injected at {boundaries:?}");
    w.finish(&s, d.counters.total_redeliveries(), crashes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_crash_after_claim() {
    crash_scenario(
        "aws_crash_after_claim",
        &[Boundary::Post(CrashPoint::AfterClaim)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_crash_after_draft() {
    crash_scenario(
        "aws_crash_after_draft",
        &[Boundary::Post(CrashPoint::AfterDraft)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_crash_after_post_action() {
    crash_scenario(
        "aws_crash_after_post_action",
        &[Boundary::Post(CrashPoint::AfterPost)],
    )
    .await;
}

/// Sends 0 to `max` webhooks per document (seeded) through API Gateway to the webhook
/// function; returns how many.
async fn webhooks(w: &World, url: &str, what: &str, max: u32) -> u64 {
    let mut rng = w.rng(what);
    let mut sent = 0;
    for d in &w.docs.all {
        for _ in 0..rng.random_range(0..=max) {
            assert_eq!(
                w.h.coupa
                    .send_invoice_webhook(url, d.coupa_id)
                    .await
                    .unwrap(),
                202
            );
            sent += 1;
        }
    }
    sent
}

/// Webhook repeats, two pollers overlapping, new versions of a third of the invoices and more
/// repeats after the first messages were deleted (past the dedup window).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_same_document_delivered_many_times() {
    let (c, b) = unlimited();
    let w = world(
        "aws_same_document_delivered_many_times",
        c,
        b,
        STANDARD_POISON,
    )
    .await;
    let s = w.stack().await;
    let (a, b) = (s.context().await, s.context().await);
    let url = webhook_gateway(a.clone()).await;
    let mut faults = webhooks(&w, &url, "webhooks-1", 3).await;
    let (ra, rb) = tokio::join!(poll(&a), poll(&b));
    assert!(ra && rb);
    assert!(poll(&a).await);
    faults += 3;
    let d = Driver::new(s.clone(), CrashPlan::none(), w.seed, 3);
    d.run().await;

    let mut rng = w.rng("touch");
    for doc in &w.docs.all {
        if rng.random_bool(0.33) {
            w.h.coupa.touch_invoice(doc.coupa_id);
            faults += 1;
        }
    }
    faults += webhooks(&w, &url, "webhooks-2", 2).await;
    let (ra, rb) = tokio::join!(poll(&a), poll(&b));
    assert!(ra && rb);
    faults += 2;
    d.run().await;
    let repeats = s.audit_repeats(&a, AuditStatus::Posted).await;
    assert!(repeats > 0, "no repeat reached the post step");
    println!("aws_same_document_delivered_many_times: {repeats} repeats stopped by the ledger");
    w.finish(&s, d.counters.total_redeliveries(), faults).await;
}

/// The queue's real visibility timeout (2 s): environment A takes every message and sits on
/// half of them past the timeout; B receives them again, and both work their copies at once.
#[ignore = "unreliable on moto: with a real 2 s visibility timeout, receiving until every held message is back does not always get them all within the deadline; redelivery after a visibility timeout is exercised by every crash scenario (the driver lets the timeout pass), and at the adapter level by the queue contract (shared/tests/contract/queue.rs)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_redelivery_after_visibility_timeout() {
    let name = "aws_redelivery_after_visibility_timeout";
    let (c, b) = unlimited();
    let w = world(name, c, b, STANDARD_POISON).await;
    let visibility = Duration::from_secs(2);
    // Receiving until every held message is back also receives the others again and again
    // every 2 s; with the template's 5 receives they would be dead-lettered for that alone.
    // This scenario is about redelivery, so its redrive allows more receives.
    let s = Stack::new(w.h.clone(), name, visibility, 20, None).await;
    let (a, b) = (s.context().await, s.context().await);
    poll_until_ok(&a, 1).await;
    let d = Driver::new(s.clone(), CrashPlan::none(), w.seed, 3);
    let mut held_total = 0u64;
    for queue in [QueueName::Ingest, QueueName::Post] {
        let mut rng = w.rng(queue.as_str());
        let mut held = Vec::new();
        let mut worked = Vec::new();
        loop {
            let batch = s.source.receive(queue, 10).await.unwrap();
            if batch.is_empty() {
                break;
            }
            for m in batch {
                if rng.random_bool(0.5) {
                    held.push(m);
                } else {
                    worked.push(m);
                }
            }
        }
        for chunk in worked.chunks(5) {
            d.deliver(&a, queue, chunk).await;
        }
        held_total += held.len() as u64;
        tokio::time::sleep(visibility + Duration::from_millis(500)).await;
        let mut again: Vec<mlc_shared::ports::Message> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && !held
                .iter()
                .all(|h| again.iter().any(|m| m.dedup_id == h.dedup_id))
        {
            let batch = s.source.receive(queue, 10).await.unwrap();
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            again.extend(batch);
        }
        let redelivered = held
            .iter()
            .filter(|h| again.iter().any(|m| m.dedup_id == h.dedup_id))
            .count();
        assert_eq!(
            redelivered,
            held.len(),
            "every held message comes back after the visibility timeout"
        );
        // A wakes up and works its stale copies while B works the fresh ones.
        let stale = async {
            for chunk in held.chunks(5) {
                d.deliver(&a, queue, chunk).await;
            }
        };
        let fresh = async {
            for chunk in again.chunks(5) {
                d.deliver(&b, queue, chunk).await;
            }
        };
        tokio::join!(stale, fresh);
    }
    // The redeliveries are proven; the rest drains with the deployment's timeout (≥ 6× the
    // function timeout), not 2 s, which moto's slowness would turn into spurious redeliveries.
    s.set_visibility(VISIBILITY).await;
    d.run().await;
    w.finish(&s, d.counters.total_redeliveries(), held_total)
        .await;
}

/// Polls (retrying a failed poll) with a fresh environment and drains with `workers`.
async fn fault_run(s: &Arc<Stack>, seed: u64, workers: usize, settle: Duration) -> Arc<Driver> {
    let ctx = s.context().await;
    for _ in 0..10 {
        if poll(&ctx).await {
            break;
        }
    }
    let d = Driver::settling(s.clone(), CrashPlan::none(), seed, workers, settle);
    d.run().await;
    d
}

async fn throttle_scenario(name: &'static str, retry_after: Option<u64>) {
    let coupa = CoupaConfig {
        rate_per_sec: None,
        ..CoupaConfig::default()
    };
    let bc = BcConfig {
        rate_limit: Some(RateLimit {
            requests: 400,
            window: Duration::from_secs(1),
        }),
        retry_after_secs: retry_after,
        ..BcConfig::default()
    };
    let w = world(name, coupa, bc, STANDARD_POISON).await;
    let mut rng = w.rng("storm");
    let kind = FaultKind::TooManyRequests { retry_after };
    let faults = push(
        &w.h,
        storm(&mut rng, 12, BC_TARGETS, std::slice::from_ref(&kind), 4),
        storm(&mut rng, 4, COUPA_TARGETS, &[kind], 4),
    );
    let s = w.stack().await;
    let d = fault_run(&s, w.seed, 4, Duration::ZERO).await;
    let row = w.finish(&s, d.counters.total_redeliveries(), faults).await;
    assert!(w.h.bc.throttled_count() > 0, "no 429 was served");
    assert!(row.http_retries > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_throttle_storm_with_retry_after() {
    throttle_scenario("aws_throttle_storm_with_retry_after", Some(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_throttle_storm_without_retry_after() {
    throttle_scenario("aws_throttle_storm_without_retry_after", None).await;
}

/// Four execution environments, each with its own HTTP clients, working batches at once.
/// BC answers bursts of 429 with `Retry-After: 1` or `2` on different endpoints, Coupa a 429 or
/// 503 with `Retry-After: 1`, while the other environments are mid-batch: an environment's
/// client waits each one out, for the rest of its batch too, and sends nothing inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_client_wide_throttle() {
    let (c, b) = unlimited();
    let name = "aws_client_wide_throttle";
    let w = world::Scenario::start(name, c, b, STANDARD_POISON, "FA", GOOD_REAL_TIME).await;
    let faults = faults::announced_throttles(&w.h, &mut w.rng("throttles"));
    let s = w.stack().await;
    let d = fault_run(&s, w.seed, 4, Duration::ZERO).await;
    nothing_left(&s, w.seed).await;
    let row = w.finish(&s, d.counters.total_redeliveries(), faults).await;
    assert!(faults::announced_waits(&w.h) > 0, "no wait was announced");
    assert_eq!(row.in_wait, 0);
}

/// Queues with a 2 s visibility timeout, one record per invocation, four environments: BC
/// answers creates, post actions and reads, Coupa invoice reads, only after 2.5 s; the
/// function renews the record's lease meanwhile, so no other environment takes it. A few
/// creates and post actions take 4 s, longer than BC's 3 s HTTP timeout: the client gives up,
/// BC commits anyway, and the function finds what it wrote instead of writing it again.
/// (One record per invocation: in production the visibility timeout is six times the
/// function's, so the records waiting behind the one running never lapse; at 2 s they would.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_slow_answers() {
    let (c, b) = unlimited();
    let name = "aws_slow_answers";
    let w = world::Scenario::start(name, c, b, STANDARD_POISON, "FA", GOOD_REAL_TIME).await;
    let faults = faults::slow_answers(&w.h, &mut w.rng("slow"));
    let s = Stack::new(
        w.h.clone(),
        name,
        SLOW_VISIBILITY,
        REDRIVE_MAX_RECEIVES,
        Some(SLOW_HTTP_TIMEOUT),
    )
    .await;
    poll_until_ok(&*s.context().await, 10).await;
    // Time may jump only once no hung request is still being worked on by the server.
    let settle = TOO_SLOW.max(SLOW) + Duration::from_millis(500);
    let d = Driver::batched(s.clone(), CrashPlan::none(), w.seed, 4, settle, 1);
    d.run().await;
    nothing_left(&s, w.seed).await;
    w.finish(&s, d.counters.total_redeliveries(), faults).await;
    let (creates, posts) = faults::given_up(&w.h);
    assert!(
        creates > 0 && posts > 0,
        "no client gave up on a create and a post action: {creates}, {posts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_server_error_bursts() {
    let (c, b) = unlimited();
    let w = world("aws_server_error_bursts", c, b, STANDARD_POISON).await;
    let mut rng = w.rng("bursts");
    let kinds = [500, 502, 503, 504].map(FaultKind::Status);
    let faults = push(
        &w.h,
        storm(&mut rng, 16, BC_TARGETS, &kinds, 4),
        storm(&mut rng, 6, COUPA_TARGETS, &kinds, 4),
    );
    let s = w.stack().await;
    let d = fault_run(&s, w.seed, 3, Duration::ZERO).await;
    w.finish(&s, d.counters.total_redeliveries(), faults).await;
}

/// Creates (and posts) that BC commits but whose answer the function never sees: lost to a
/// 500 after the commit, and lost to the client's timeout while the server goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_created_but_response_lost() {
    let name = "aws_created_but_response_lost";
    let (c, b) = unlimited();
    let w = world(name, c, b, STANDARD_POISON).await;
    let mut rng = w.rng("lost");
    let bc_rules = (0..24)
        .map(|i| {
            let (m, p) = if i % 3 == 2 {
                ("POST", "Microsoft.NAV.post")
            } else {
                ("POST", "/purchaseInvoices")
            };
            let kind = if rng.random_bool(0.5) {
                FaultKind::LoseResponse
            } else {
                FaultKind::Hang { millis: 1_500 }
            };
            FaultRule::new(m, p, 1, kind)
        })
        .collect();
    let faults = push(&w.h, bc_rules, Vec::new());
    let s = Stack::new(
        w.h.clone(),
        name,
        VISIBILITY,
        REDRIVE_MAX_RECEIVES,
        Some(Duration::from_millis(1_000)),
    )
    .await;
    let d = fault_run(&s, w.seed, 3, HANG_SETTLE).await;
    w.finish(&s, d.counters.total_redeliveries(), faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_tokens_expire_mid_run() {
    let (c, b) = unlimited();
    let w = world("aws_tokens_expire_mid_run", c, b, STANDARD_POISON).await;
    let expired_mid_poll = Arc::new(AtomicU64::new(0));
    // After the first list page: the next page needs a new token. (The map step no longer
    // reads Coupa again, the poll carries each invoice, so the list pages are this scenario's
    // Coupa requests; about two pages at this size.)
    let n = expired_mid_poll.clone();
    w.h.coupa.after_list_page(
        1,
        Box::new(move |coupa| {
            coupa.expire_tokens();
            n.fetch_add(1, Ordering::Relaxed);
        }),
    );
    let s = w.stack().await;
    // One expiry a second: a request refreshes its token once on a 401 (DESIGN), so two
    // expiries within one refresh-and-retry would fail it; 150 ms apart they did on a loaded
    // machine.
    let (ticker, fired) = token_ticker(&w.h, Duration::from_secs(1));
    let d = fault_run(&s, w.seed, 3, Duration::ZERO).await;
    ticker.abort();
    let faults = fired.load(Ordering::Relaxed) + expired_mid_poll.load(Ordering::Relaxed);
    assert!(fired.load(Ordering::Relaxed) > 0);
    assert!(w.h.bc.tokens_issued() > 1 && w.h.coupa.tokens_issued() > 1);
    let row = w.finish(&s, d.counters.total_redeliveries(), faults).await;
    assert_eq!(
        d.counters.redeliveries.load(Ordering::Relaxed),
        0,
        "a token refresh is not a failed record"
    );
    assert!(row.http_retries > 0);
}

/// Messages no step can read, sent straight to the ingest queue.
async fn garbage_messages(ctx: &Context, n: usize) {
    let msgs = (0..n)
        .map(|i| OutgoingMessage {
            group_id: format!("garbage-{i}"),
            dedup_id: format!("garbage-{i}"),
            body: format!("{{not json {i}"),
        })
        .collect();
    ctx.pipeline
        .env
        .queue
        .send(QueueName::Ingest, msgs)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_poison_documents() {
    let (c, b) = unlimited();
    // No credit notes: they are not poison any more (they post as credit memos).
    let poison = [
        (Poison::Unmappable, 8),
        (Poison::Malformed, 6),
        (Poison::RefusedByBc, 4),
    ];
    let w = world("aws_poison_documents", c, b, &poison).await;
    let s = w.stack().await;
    let ctx = s.context().await;
    garbage_messages(&ctx, 3).await;
    let mut redeliveries = 0;
    // A second poll cycle: parked documents are retried and stay parked.
    for _ in 0..2 {
        let d = fault_run(&s, w.seed, 3, Duration::ZERO).await;
        redeliveries += d.counters.total_redeliveries();
    }
    let dead_letters = ctx
        .pipeline
        .env
        .queue
        .dead_letters(QueueName::Ingest)
        .await
        .unwrap();
    let garbage = dead_letters
        .iter()
        .filter(|m| m.body.starts_with("{not json"))
        .count();
    // A failed record stops only its own message group: nothing else in its batches spent
    // its deliveries on it.
    assert_eq!(
        dead_letters.len(),
        garbage,
        "only the unreadable messages are dead-lettered"
    );
    let row = w.finish(&s, redeliveries, 3 + 18).await;
    assert_eq!(row.parked, 18, "every poison document is parked");
    assert_eq!(garbage, 3, "the unreadable messages are in the ingest DLQ");
    let dead = s.audit_count(&ctx, AuditStatus::DeadLettered).await;
    assert_eq!(dead, 3, "one dead-lettered audit item per dead letter");
}

/// Four environments polling at once (overlapping windows) while webhooks arrive, and four
/// workers on the same queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_workers_racing_on_one_queue() {
    let (c, b) = unlimited();
    let w = world("aws_workers_racing_on_one_queue", c, b, STANDARD_POISON).await;
    let s = w.stack().await;
    let mut pollers = Vec::new();
    for _ in 0..4 {
        pollers.push(s.context().await);
    }
    let url = webhook_gateway(pollers[0].clone()).await;
    let d = Driver::new(s.clone(), CrashPlan::none(), w.seed, 4);
    let polls = async {
        for _ in 0..2 {
            let mut set = tokio::task::JoinSet::new();
            for p in pollers.clone() {
                set.spawn(async move { poll(&p).await });
            }
            while let Some(r) = set.join_next().await {
                assert!(r.unwrap());
            }
        }
    };
    let (hooks, ()) = tokio::join!(webhooks(&w, &url, "webhooks", 2), polls);
    let drain = d.run();
    let again = async {
        for p in &pollers {
            assert!(poll(p).await);
        }
    };
    tokio::join!(drain, again);
    d.run().await;
    w.finish(&s, d.counters.total_redeliveries(), hooks + 12)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_all_faults_mixed() {
    let name = "aws_all_faults_mixed";
    let coupa = CoupaConfig {
        rate_per_sec: None,
        ..CoupaConfig::default()
    };
    let bc = BcConfig {
        rate_limit: Some(RateLimit {
            requests: 500,
            window: Duration::from_secs(1),
        }),
        retry_after_secs: Some(1),
        ..BcConfig::default()
    };
    let poison = [
        (Poison::Unmappable, 6),
        (Poison::Malformed, 4),
        (Poison::RefusedByBc, 2),
    ];
    let w = world(name, coupa, bc, &poison).await;
    let mut rng = w.rng("faults");
    // More deliveries than the contract's 5 (the redrive policy too): crashes, 5xx and lost
    // answers all land on the same documents here, and a dead-lettered mappable invoice would
    // count as lost.
    let s = Stack::new(
        w.h.clone(),
        name,
        VISIBILITY,
        8,
        Some(Duration::from_millis(1_000)),
    )
    .await;
    let http_kinds = [
        FaultKind::Status(500),
        FaultKind::Status(503),
        FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
        FaultKind::TooManyRequests { retry_after: None },
        FaultKind::LoseResponse,
        FaultKind::Hang { millis: 1_500 },
    ];
    let mut faults = push(
        &w.h,
        storm(&mut rng, 15, BC_TARGETS, &http_kinds, 2),
        storm(&mut rng, 4, COUPA_TARGETS, &http_kinds[..4], 2),
    );
    // Sparser than the embedded mix: every expiry costs a token round trip, and every crash a
    // cold start against moto, which is what makes this scenario slow.
    let (ticker, fired) = token_ticker(&w.h, Duration::from_secs(2));
    let first = s.context().await;
    garbage_messages(&first, 2).await;
    let url = webhook_gateway(first.clone()).await;
    faults += webhooks(&w, &url, "webhooks-1", 2).await;
    let second = s.context().await;
    for _ in 0..5 {
        if let (true, true) = tokio::join!(poll(&first), poll(&second)) {
            break;
        }
    }
    let plan = CrashPlan {
        boundaries: Boundary::ALL.to_vec(),
        probability: 0.08,
    };
    let d = Driver::settling(s.clone(), plan, w.seed, 4, HANG_SETTLE);
    d.run().await;
    // The scheduled poll audits dead letters nobody audited (records stopped behind a failure).
    poll_until_ok(&first, 5).await;
    d.run().await;
    audit_dead_letters(&first).await;
    let mut rows = vec![w.row(&s, "aws_all_faults_mixed: first pass").await];

    // Then repeats: new versions, more webhooks and polls, with crashes still on.
    for doc in &w.docs.all {
        if rng.random_bool(0.25) {
            w.h.coupa.touch_invoice(doc.coupa_id);
            faults += 1;
        }
    }
    faults += webhooks(&w, &url, "webhooks-2", 1).await;
    for _ in 0..5 {
        if poll(&first).await {
            break;
        }
    }
    d.run().await;
    ticker.abort();
    nothing_left(&s, w.seed).await;
    audit_dead_letters(&first).await;
    faults += d.counters.crashes.load(Ordering::Relaxed) + fired.load(Ordering::Relaxed);
    rows.push(w.row(&s, "aws_all_faults_mixed: after repeats").await);
    for r in &mut rows {
        r.faults = faults;
        r.redeliveries = d.counters.total_redeliveries();
        r.http_retries = s.http_retries();
        r.secs = world::secs(w.started.elapsed());
    }
    println!(
        "aws_all_faults_mixed: {} crashes ({} cold starts), {} token expiries, {} time jumps",
        d.counters.crashes.load(Ordering::Relaxed),
        d.counters.restarts.load(Ordering::Relaxed),
        fired.load(Ordering::Relaxed),
        d.counters.time_jumps.load(Ordering::Relaxed),
    );
    world::print_table_to(REPORT, &rows);
    world::assert_clean(&rows);
    assert!(rows[1].dead_lettered >= 2, "the unreadable messages");
}
