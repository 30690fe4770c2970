//! The Lambda functions as Lambda runs them (figures, never assertions): each release binary is
//! started under a minimal Lambda Runtime API on loopback, with moto and the sandbox systems
//! behind it, and handles one event. Reports per function: stripped binary size, time from
//! process start to ready-for-first-event (its first `GET /runtime/invocation/next`), time to
//! handle the event, and peak RSS (VmHWM) after handling it. The SQS functions get 10 records.
//!
//! Then the AWS cost per 1,000 invoices, from those measured durations and from the SQS,
//! DynamoDB and Secrets Manager requests each function made (counted by a metering relay in
//! front of the emulator, `support/aws_meter.rs`), priced with the public list prices named
//! in [`PRICES`].
//!
//! `cargo bench -p mlc-lambda --bench lambda` (builds the four functions in release first;
//! `MLC_BENCH_BIN_DIR=<dir>` measures the binaries in `<dir>` instead). The arm64 binaries the
//! template deploys cannot run here: their sizes are shown when `cargo lambda build --release
//! --arm64` has left them in the target directory.

#[path = "support/aws_meter.rs"]
mod aws_meter;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine, NewSupplier};
use serde_json::{Value, json};

const FUNCTIONS: [&str; 4] = [
    "mlc-fn-webhook",
    "mlc-fn-poller",
    "mlc-fn-mapper",
    "mlc-fn-poster",
];

/// One invocation's worth of the Runtime API (2018-06-01): hands out `event` once, then holds
/// further `next` calls open (as Lambda does between invocations), and records the answer.
#[derive(Default)]
struct Stub {
    event: Mutex<Option<Value>>,
    ready: Mutex<Option<Instant>>,
    answer: Mutex<Option<(Instant, String)>>,
}

async fn next(State(s): State<Arc<Stub>>) -> (HeaderMap, String) {
    let event = s.event.lock().unwrap().take();
    match event {
        Some(ev) => {
            s.ready.lock().unwrap().get_or_insert_with(Instant::now);
            let mut h = HeaderMap::new();
            h.insert(
                "lambda-runtime-aws-request-id",
                "bench-request-1".parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-deadline-ms",
                (now_ms() + 300_000).to_string().parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench"
                    .parse()
                    .unwrap(),
            );
            (h, ev.to_string())
        }
        None => std::future::pending().await,
    }
}

async fn answer(
    State(s): State<Arc<Stub>>,
    Path((_id, kind)): Path<(String, String)>,
    body: String,
) -> &'static str {
    *s.answer.lock().unwrap() = Some((Instant::now(), format!("{kind}: {body}")));
    ""
}

async fn init_error(State(s): State<Arc<Stub>>, body: String) -> &'static str {
    *s.answer.lock().unwrap() = Some((Instant::now(), format!("init error: {body}")));
    ""
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn stripped_size_mib(path: &std::path::Path) -> Option<f64> {
    let copy = std::env::temp_dir().join(format!("mlc-bench-strip-{}", std::process::id()));
    std::fs::copy(path, &copy).ok()?;
    let ok = Command::new("strip").arg(&copy).status().ok()?.success();
    let size = std::fs::metadata(&copy).ok()?.len() as f64 / 1024.0 / 1024.0;
    let _ = std::fs::remove_file(&copy);
    ok.then_some(size)
}

/// The arm64 build of `function` that `cargo lambda build --release --arm64` left (what the
/// template deploys: `Architectures: [arm64]`), if any: `<target>/lambda/<fn>/bootstrap` when
/// that file is an aarch64 ELF (the same path holds an x86_64 build after `--x86-64`), else
/// `<target>/aarch64-unknown-linux-gnu/release/<fn>`. Its size as built (the release profile
/// strips it; the host's `strip` does not read aarch64), and whether it is older than the
/// x86_64 binary just built (then it predates the sources measured here). `None` when there
/// is no arm64 build: this machine cannot run one, so only its size is reported.
fn arm64_build(
    target: &std::path::Path,
    function: &str,
    host_binary: &std::path::Path,
) -> Option<(f64, bool)> {
    let is_aarch64 = |p: &std::path::Path| {
        // The ELF magic, then e_machine (offset 18, little-endian): EM_AARCH64 = 183.
        let mut head = [0u8; 20];
        std::fs::File::open(p)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok()
            && head[..4] == *b"\x7fELF"
            && u16::from_le_bytes([head[18], head[19]]) == 183
    };
    let path = [
        target.join("lambda").join(function).join("bootstrap"),
        target
            .join("aarch64-unknown-linux-gnu/release")
            .join(function),
    ]
    .into_iter()
    .find(|p| is_aarch64(p))?;
    let meta = std::fs::metadata(&path).ok()?;
    let stale = match (
        meta.modified(),
        std::fs::metadata(host_binary).and_then(|m| m.modified()),
    ) {
        (Ok(arm), Ok(host)) => arm < host,
        _ => false,
    };
    Some((meta.len() as f64 / 1024.0 / 1024.0, stale))
}

fn sqs_event(queue: &str, bodies: &[String]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "messageId": format!("bench-{i}"), "receiptHandle": format!("bench-receipt-{i}"), "body": b,
                "attributes": { "ApproximateReceiveCount": "1", "MessageGroupId": format!("g{i}"), "MessageDeduplicationId": format!("d{i}"),
                                "SentTimestamp": "1711927802011", "SequenceNumber": "1" },
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"), "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::main]
async fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Where the build below puts the binaries: CARGO_TARGET_DIR when set (the bench inherits
    // the caller's environment; a relative one is taken from the workspace root, where the
    // build runs), else the workspace's `target`.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| root.join(d))
        .unwrap_or_else(|| root.join("target"));
    // MLC_BENCH_BIN_DIR: measure the four binaries already in that directory instead of
    // building them (to compare builds of other profiles or revisions side by side).
    let prebuilt = std::env::var_os("MLC_BENCH_BIN_DIR").map(std::path::PathBuf::from);
    if prebuilt.is_none() {
        let mut build = Command::new(env!("CARGO"));
        build
            .current_dir(&root)
            .args(["build", "--release", "--quiet"]);
        for f in FUNCTIONS {
            build.args(["-p", f]);
        }
        assert!(
            build.status().expect("cargo build").success(),
            "building the functions failed"
        );
    }
    let bin_dir = prebuilt.unwrap_or_else(|| target.join("release"));

    // The systems the functions talk to.
    let coupa = CoupaSim::start(CoupaConfig {
        rate_per_sec: None,
        ..CoupaConfig::default()
    })
    .await
    .unwrap();
    let bc = BcSim::start(BcConfig {
        rate_limit: None,
        ..BcConfig::default()
    })
    .await
    .unwrap();
    mlc_sandbox::demo::seed_bc(&bc);
    let sup = coupa.add_supplier(NewSupplier::new("Fabrikam, Inc.", "SUP-001"));
    let ids: Vec<i64> = (0..10)
        .map(|n| {
            coupa.add_invoice(
                NewInvoice::approved(sup, &format!("BENCH-{n}"))
                    .line(NewInvoiceLine::qty(
                        "a",
                        "2",
                        "10.1250",
                        &["6100", "ADM", "P-100"],
                    ))
                    .line(NewInvoiceLine::qty(
                        "b",
                        "1",
                        "99.00",
                        &["6200", "SALES", "P-200"],
                    ))
                    .line(NewInvoiceLine::qty(
                        "c",
                        "3",
                        "1.5000",
                        &["6300", "PROD", "P-300"],
                    )),
            )
        })
        .collect();
    let sdk = mlc_lambda::local::emulator_sdk_config(mlc_sandbox::moto::endpoint()).await;
    let settings =
        mlc_lambda::local::stack(&sdk, &format!("bench{}", now_ms()), Duration::from_secs(60))
            .await
            .unwrap();
    for (name, value) in [
        ("coupa-client-secret", &coupa.config().client_secret),
        ("bc-client-secret", &bc.config().client_secret),
        ("coupa-webhook-secret", &coupa.config().webhook_secret),
    ] {
        mlc_lambda::local::put_secret(&sdk, &settings, name, value)
            .await
            .unwrap();
    }
    let config = mlc_cli::cmd::sandbox::config_toml(&coupa, &bc, "unused", "unused")
        .replace("api_version = \"R40\"\n", "api_version = \"R40\"\nrequests_per_second = 1000\n")
        .replace("client_secret = \"bc-client-secret\"\n", "client_secret = \"bc-client-secret\"\nrate = { requests = 1000000, window_secs = 1, concurrent = 5 }\n");

    // The events: the webhook and schedule samples, 10 ingest records, and the 10 post records
    // the mapper produced (read back from the post queue).
    let webhook: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("events/webhook-coupa.json")).unwrap(),
    )
    .unwrap();
    let ingest: Vec<String> = ids
        .iter()
        .map(|id| json!({"integration": "coupa-bc", "kind": "invoice", "source_id": id.to_string(), "version": null, "via": "poll"}).to_string())
        .collect();

    // The functions reach the emulator through the meter, which counts their requests.
    let meter = aws_meter::Meter::start(mlc_sandbox::moto::endpoint()).await;
    let mut env: Vec<(&str, String)> = settings.to_env();
    env.extend([
        ("MLC_CONFIG", config),
        ("AWS_ENDPOINT_URL", meter.url.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("RUST_LOG", "warn".into()),
    ]);

    println!(
        "{:<16} {:>12} {:>10} {:>14} {:>12} {:>14}  answer",
        "function", "stripped MiB", "arm64 MiB", "start→ready ms", "handle ms", "peak RSS MiB"
    );
    let mut stale_arm64 = false;
    let mut post_bodies: Vec<String> = Vec::new();
    let mut measured: Vec<Measured> = Vec::new();
    for f in FUNCTIONS {
        let event = match f {
            "mlc-fn-webhook" => webhook.clone(),
            "mlc-fn-poller" => json!({"integration": "coupa-bc"}),
            "mlc-fn-mapper" => sqs_event("ingest.fifo", &ingest),
            _ => sqs_event("post.fifo", &post_bodies),
        };
        let stub = Arc::new(Stub::default());
        *stub.event.lock().unwrap() = Some(event);
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(stub.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let binary = bin_dir.join(f);
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_LAMBDA_FUNCTION_NAME", f)
            .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = started + Duration::from_secs(120);
        let (done_at, answer) = loop {
            if let Some(a) = stub.answer.lock().unwrap().clone() {
                break a;
            }
            assert!(Instant::now() < deadline, "{f} gave no answer within 120 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let rss = peak_rss_mib(child.id());
        let _ = child.kill();
        let _ = child.wait();
        server.abort();
        let ready = stub.ready.lock().unwrap().expect("asked for an event");
        let size = stripped_size_mib(&binary)
            .map(|s| format!("{s:.1}"))
            .unwrap_or_else(|| "?".into());
        let arm64 = match arm64_build(&target, f, &binary) {
            Some((mib, stale)) => {
                stale_arm64 |= stale;
                format!("{mib:.1}{}", if stale { "*" } else { "" })
            }
            None => "-".into(),
        };
        let short: String = answer.chars().take(90).collect();
        let (init_ms, handle_ms) = (
            (ready - started).as_secs_f64() * 1000.0,
            (done_at - ready).as_secs_f64() * 1000.0,
        );
        println!(
            "{f:<16} {size:>12} {arm64:>10} {init_ms:>14.1} {handle_ms:>12.1} {rss:>14.1}  {short}"
        );
        measured.push(Measured {
            function: f,
            init_ms,
            handle_ms,
            requests: meter.take(),
        });
        if f == "mlc-fn-mapper" {
            post_bodies = drain_post_queue(&sdk, &settings).await;
            assert_eq!(
                post_bodies.len(),
                10,
                "the mapper should have queued 10 invoices for posting"
            );
        }
    }
    let posted = bc
        .purchase_invoices()
        .iter()
        .filter(|i| i.status == "Open")
        .count();
    println!("BC invoices posted by the poster: {posted}");
    println!(
        "arm64 MiB: `cargo lambda build --release --arm64` (what the template deploys), size only \
         (not run here); - when there is no arm64 build{}",
        if stale_arm64 {
            "; * older than the x86_64 binary measured (predates these sources)"
        } else {
            ""
        }
    );
    print_cost(&measured, ids.len());
}

/// One function's invocation as measured.
struct Measured {
    function: &'static str,
    init_ms: f64,
    handle_ms: f64,
    /// AWS requests it made, by operation.
    requests: std::collections::BTreeMap<String, u64>,
}

/// Public list prices, us-east-1, as published on the AWS pricing pages in 2026 (Lambda:
/// aws.amazon.com/lambda/pricing, Arm; SQS: aws.amazon.com/sqs/pricing, FIFO, per 64 KiB
/// chunk; DynamoDB: aws.amazon.com/dynamodb/pricing/on-demand, after the November 2024
/// reduction; Secrets Manager: aws.amazon.com/secrets-manager/pricing). Free tiers ignored.
const PRICES: Prices = Prices {
    lambda_gb_second_arm: 0.000_013_333_4,
    lambda_per_million_invocations: 0.20,
    sqs_fifo_per_million: 0.50,
    ddb_per_million_wru: 0.625,
    ddb_per_million_rru: 0.125,
    secrets_per_10k_calls: 0.05,
};

struct Prices {
    lambda_gb_second_arm: f64,
    lambda_per_million_invocations: f64,
    sqs_fifo_per_million: f64,
    ddb_per_million_wru: f64,
    ddb_per_million_rru: f64,
    secrets_per_10k_calls: f64,
}

/// The template's memory size for every function (infra/template.yaml, `Globals`).
const MEMORY_GB: f64 = 0.25;

/// Cost per 1,000 invoices of the steady flow (poll → map → post), from one measured
/// invocation per function handling `batch` invoices. Assumptions, printed with the figures:
/// every SQS-triggered invocation carries a full batch of `batch`; one DynamoDB request is one
/// request unit (items under 1 KiB written, 4 KiB read); each message under 64 KiB; Lambda's
/// event source mapping adds one ReceiveMessage and one DeleteMessageBatch per batch (its idle
/// long polls are a fixed cost, not per invoice); the poll that found them is one invocation
/// per `batch` invoices; warm environments (the secrets the measured cold invocation read are
/// counted once per cold start, shown apart).
fn print_cost(measured: &[Measured], batch: usize) {
    let per_1000 = 1000.0 / batch as f64;
    let p = &PRICES;
    let (mut lambda_gb_s, mut invocations, mut sqs, mut wru, mut rru, mut secrets) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for m in measured.iter().filter(|m| m.function != "mlc-fn-webhook") {
        invocations += per_1000;
        lambda_gb_s += per_1000 * m.handle_ms.ceil() / 1000.0 * MEMORY_GB;
        for (op, n) in &m.requests {
            let n = *n as f64;
            match op.split('.').next_back().unwrap_or_default() {
                _ if op.starts_with("secretsmanager.") => secrets += n,
                _ if op.starts_with("AmazonSQS.") => sqs += n * per_1000,
                "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" => wru += n * per_1000,
                "TransactWriteItems" => wru += 2.0 * n * per_1000,
                "GetItem" | "Query" | "Scan" | "BatchGetItem" => rru += n * per_1000,
                _ => {}
            }
        }
        if m.function != "mlc-fn-poller" {
            sqs += 2.0 * per_1000;
        }
    }
    println!();
    println!("requests per invocation (metered):");
    for m in measured {
        let ops: Vec<String> = m.requests.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("  {:<16} {}", m.function, ops.join(", "));
    }
    let rows = [
        (
            "Lambda compute (arm64, 256 MB)",
            lambda_gb_s,
            "GB-s",
            lambda_gb_s * p.lambda_gb_second_arm,
        ),
        (
            "Lambda invocations",
            invocations,
            "invocations",
            invocations / 1e6 * p.lambda_per_million_invocations,
        ),
        (
            "SQS FIFO requests",
            sqs,
            "requests",
            sqs / 1e6 * p.sqs_fifo_per_million,
        ),
        (
            "DynamoDB writes",
            wru,
            "WRU",
            wru / 1e6 * p.ddb_per_million_wru,
        ),
        (
            "DynamoDB reads",
            rru,
            "RRU",
            rru / 1e6 * p.ddb_per_million_rru,
        ),
    ];
    println!();
    println!("AWS cost per 1,000 invoices (poll → map → post, warm, batches of {batch}):");
    let mut total = 0.0;
    for (what, qty, unit, usd) in rows {
        total += usd;
        println!("  {what:<32} {qty:>10.1} {unit:<12} ${usd:.5}");
    }
    println!("  {:<32} {:>23} ${total:.5}", "total", "");
    let init_gb_s: f64 = measured
        .iter()
        .map(|m| m.init_ms.ceil() / 1000.0 * MEMORY_GB)
        .sum();
    println!(
        "  per cold start of all four functions: {init_gb_s:.3} GB-s of init (${:.6}) and {secrets} \
         Secrets Manager calls (${:.6})",
        init_gb_s * p.lambda_gb_second_arm,
        secrets / 10_000.0 * p.secrets_per_10k_calls
    );
}

async fn drain_post_queue(
    sdk: &aws_config::SdkConfig,
    settings: &mlc_lambda::mlc_shared::adapters::aws::AwsSettings,
) -> Vec<String> {
    use mlc_lambda::mlc_shared::ports::{Queue, QueueName};
    let q = mlc_lambda::mlc_shared::adapters::aws::SqsQueue::from_conf(sdk, settings);
    let mut out = Vec::new();
    for _ in 0..20 {
        let batch = q.receive(QueueName::Post, 10).await.unwrap();
        if batch.is_empty() && out.len() >= 10 {
            break;
        }
        for m in batch {
            q.ack(QueueName::Post, &m.receipt).await.unwrap();
            out.push(m.body);
        }
    }
    out
}
