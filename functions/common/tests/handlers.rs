//! Each Lambda handler on its sample event from `events/`, and the whole Coupa → Business
//! Central slice through the AWS adapters: moto (SQS FIFO, DynamoDB, Secrets Manager) over the
//! real AWS SDK, the sandbox systems over real HTTP.

use std::time::Duration;

mod common;

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use mlc_lambda::Context;
use mlc_sandbox::bc::BcSim;
use mlc_sandbox::coupa::{CoupaSim, NewInvoice, NewInvoiceLine, NewSupplier};
use mlc_shared::config::Config;
use mlc_shared::ports::{Queue, QueueName};
use mlc_shared::steps::post::CrashPoint;

struct World {
    coupa: CoupaSim,
    bc: BcSim,
    ctx: Context,
    sdk: aws_config::SdkConfig,
}

/// A deployment on moto: its own queues, tables and secrets (unique names, so tests run in
/// parallel), and the two simulators with what the sample events refer to.
async fn world() -> World {
    world_with("").await
}

/// As [`world`], with `sync` as the integration's `[integrations.sync]` table.
async fn world_with(sync: &str) -> World {
    let (coupa, bc) = common::simulators(Duration::from_secs(30)).await;
    coupa.add_supplier(NewSupplier::new("First Up Consultants", "SUP-002"));
    let sdk = common::sdk().await;
    let settings = common::deployment(&sdk, "t", &coupa, &bc, &[]).await;
    let text = common::config_text(&coupa, &bc)
        .replace("\"SUP-003\" = \"V30000\"\n\"SUP-004\" = \"V40000\"\n", "")
        .replace(
            "[integrations.mapping]\n",
            &format!("[integrations.sync]\n{sync}\n\n[integrations.mapping]\n"),
        );
    let config = Config::parse(&text).unwrap();
    let ctx = Context::new(config, settings, &sdk).await.unwrap();
    World {
        coupa,
        bc,
        ctx,
        sdk,
    }
}

fn event<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn depth(w: &World, q: QueueName) -> u64 {
    w.ctx.pipeline.env.queue.depth(q).await.unwrap()
}

fn invoice(w: &World, supplier: &str, number: &str) -> i64 {
    let id = w.coupa.supplier_id_by_number(supplier).unwrap();
    w.coupa
        .add_invoice(NewInvoice::approved(id, number).line(NewInvoiceLine::qty(
            "Toner",
            "2",
            "10.1250",
            &["6100", "ADM", "P100"],
        )))
}

/// What Lambda's SQS event source does: receive a batch, hand it to the function, delete what
/// the function did not report as failed.
async fn deliver(w: &World, q: QueueName) -> usize {
    let queue = &w.ctx.pipeline.env.queue;
    let received = queue.receive(q, 10).await.unwrap();
    let n = received.len();
    if n == 0 {
        return 0;
    }
    let mut ev = SqsEvent::default();
    for m in &received {
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
        ev.records.push(r);
    }
    let resp = mlc_lambda::sqs::handle_batch(&w.ctx, q, ev).await;
    let failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    for m in received.iter().filter(|m| !failed.contains(&m.receipt)) {
        queue.ack(q, &m.receipt).await.unwrap();
    }
    n
}

/// Runs the queues like the deployed mapper and poster until both are empty.
async fn drain(w: &World) {
    for _ in 0..200 {
        let worked = deliver(w, QueueName::Post).await + deliver(w, QueueName::Ingest).await;
        if worked == 0 && depth(w, QueueName::Ingest).await + depth(w, QueueName::Post).await == 0 {
            return;
        }
        if worked == 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    panic!("the queues did not drain");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_sample_is_accepted_and_queued() {
    let w = world().await;
    let req: ApiGatewayV2httpRequest = event("webhook-coupa.json");
    let resp = mlc_lambda::webhook::handle(&w.ctx, req).await;
    assert_eq!(resp.status_code, 202, "{:?}", resp.body);
    assert_eq!(depth(&w, QueueName::Ingest).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_new_route_sample_and_the_earlier_route_shapes_reach_the_integrations_flow() {
    let w = world().await;
    // /webhooks/<integration>/<channel>, the form of this version.
    let new: ApiGatewayV2httpRequest = event("webhook-coupa-new-route.json");
    let resp = mlc_lambda::webhook::handle(&w.ctx, new.clone()).await;
    assert_eq!(resp.status_code, 202, "{:?}", resp.body);
    assert_eq!(depth(&w, QueueName::Ingest).await, 1);

    // The earlier URL through a template of an earlier version (its parameter names), and
    // without parameters at all (the raw path): the same call-out, so the same message
    // (FIFO deduplication keeps one).
    let mut earlier: ApiGatewayV2httpRequest = event("webhook-coupa.json");
    earlier.route_key = Some("POST /webhooks/{source}/{integration}".into());
    earlier.path_parameters = [("source", "coupa"), ("integration", "coupa-bc")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut bare = earlier.clone();
    bare.path_parameters.clear();
    for (what, req) in [("earlier parameters", earlier), ("raw path", bare)] {
        let resp = mlc_lambda::webhook::handle(&w.ctx, req).await;
        assert_eq!(resp.status_code, 202, "{what}: {:?}", resp.body);
    }
    assert_eq!(depth(&w, QueueName::Ingest).await, 1);

    // An unknown channel or integration is answered like a bad signature (no name echoed),
    // nothing queued.
    for (first, second) in [("coupa-bc", "nope"), ("nope", "coupa")] {
        let mut req = new.clone();
        req.path_parameters = [("first", first), ("second", second)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let resp = mlc_lambda::webhook::handle(&w.ctx, req).await;
        assert_eq!(resp.status_code, 401, "{first}/{second}: {:?}", resp.body);
        let text = format!("{:?}", resp.body);
        assert!(
            text.contains(mlc_shared::flows::REFUSED_BODY.trim_end()) && !text.contains("nope"),
            "{first}/{second}: {text}"
        );
    }
    assert_eq!(depth(&w, QueueName::Ingest).await, 1);
}

#[test]
fn every_sample_event_is_run_by_a_handler_test() {
    // Here, or the BC samples in notifications.rs: a new sample with no test fails this.
    let sources = [
        include_str!("handlers.rs"),
        include_str!("notifications.rs"),
    ];
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        n += 1;
        let call = format!("event(\"{name}\")");
        assert!(
            sources.iter().any(|src| src.contains(&call)),
            "events/{name}: no test of functions/common/tests/handlers.rs or notifications.rs runs it"
        );
    }
    assert!(n > 0, "{dir} holds no sample events");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_sample_with_a_bad_signature_gets_401_and_nothing_is_queued() {
    let w = world().await;
    let req: ApiGatewayV2httpRequest = event("webhook-coupa-bad-signature.json");
    let resp = mlc_lambda::webhook::handle(&w.ctx, req).await;
    assert_eq!(resp.status_code, 401);
    assert_eq!(depth(&w, QueueName::Ingest).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_samples_poll_every_integration_or_the_one_named() {
    let w = world().await;
    invoice(&w, "SUP-001", "POLL-1");
    invoice(&w, "SUP-002", "POLL-2");
    let out = mlc_lambda::poller::handle(&w.ctx, event("schedule-poll.json"))
        .await
        .unwrap();
    assert_eq!(out["task"], "poll", "{out}");
    assert_eq!(out["failed"], serde_json::json!([]), "{out}");
    let results = out["results"]
        .as_array()
        .expect("one result per integration");
    assert_eq!(results.len(), 1, "{out}");
    assert_eq!(results[0]["integration"], "coupa-bc", "{out}");
    assert_eq!(results[0]["queued"], 2, "{out}");
    assert_eq!(depth(&w, QueueName::Ingest).await, 2);
    // The one-integration form answers as before (its window overlaps the last one: what it
    // queues again, the ledger absorbs).
    let one = mlc_lambda::poller::handle(&w.ctx, event("schedule-poll-one.json"))
        .await
        .unwrap();
    assert_eq!(one["integration"], "coupa-bc", "{one}");
    assert_eq!(one["task"], "poll", "{one}");
    assert!(one["queued"].is_u64(), "{one}");
    let unknown =
        mlc_lambda::poller::handle(&w.ctx, serde_json::json!({"integration": "nope"})).await;
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("'nope' is not configured")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ingest_batch_sample_is_mapped_and_queued_for_posting() {
    let w = world().await;
    let mut ev: SqsEvent = event("sqs-ingest-batch.json");
    // The sample names Coupa ids 92010…; point each record at a real simulator invoice.
    for (i, r) in ev.records.iter_mut().enumerate() {
        let id = invoice(&w, "SUP-001", &format!("ING-{i}"));
        let mut body: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
        body["source_id"] = id.to_string().into();
        r.body = Some(body.to_string());
    }
    let resp = mlc_lambda::sqs::handle_batch(&w.ctx, QueueName::Ingest, ev).await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "{:?}",
        resp.batch_item_failures
    );
    assert_eq!(depth(&w, QueueName::Post).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_post_batch_sample_posts_each_invoice_once() {
    let w = world().await;
    let ev: SqsEvent = event("sqs-post-batch.json");
    let resp = mlc_lambda::sqs::handle_batch(&w.ctx, QueueName::Post, ev.clone()).await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "{:?}",
        resp.batch_item_failures
    );
    let again = mlc_lambda::sqs::handle_batch(&w.ctx, QueueName::Post, ev).await;
    assert!(again.batch_item_failures.is_empty());
    let posted = w.bc.purchase_invoices();
    assert_eq!(posted.len(), 2);
    assert!(
        posted
            .iter()
            .all(|i| i.status == "Open" && i.post_count == 1)
    );
}

/// The post batch sample with an undecodable record inserted after the first one, in the
/// first record's message group.
fn batch_with_poison() -> SqsEvent {
    let mut ev: SqsEvent = event("sqs-post-batch.json");
    let mut poison = ev.records[0].clone();
    poison.message_id = Some("poison".into());
    poison.body = Some("{not json".into());
    ev.records.insert(1, poison);
    ev
}

fn failed_ids(resp: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    resp.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_record_stops_the_rest_of_its_message_group_and_reports_it() {
    let w = world().await;
    let mut ev = batch_with_poison();
    // A later message of the poison's own group must not overtake it.
    let mut same_group = ev.records[2].clone();
    same_group.message_id = Some("same-group-later".into());
    same_group.attributes = ev.records[1].attributes.clone();
    ev.records.push(same_group);
    let resp = mlc_lambda::sqs::handle_batch(&w.ctx, QueueName::Post, ev).await;
    assert_eq!(
        failed_ids(&resp),
        vec!["poison".to_string(), "same-group-later".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_of_other_message_groups_after_a_failure_still_run() {
    let w = world().await;
    let ev = batch_with_poison();
    let resp = mlc_lambda::sqs::handle_batch(&w.ctx, QueueName::Post, ev).await;
    assert_eq!(failed_ids(&resp), vec!["poison".to_string()]);
    assert_eq!(
        w.bc.purchase_invoices().len(),
        2,
        "both sample invoices were posted; only the poison failed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_record_without_a_group_id_stops_the_whole_batch() {
    let w = world().await;
    let mut ev = batch_with_poison();
    ev.records[1].attributes.remove("MessageGroupId");
    let later = ev.records[2].message_id.clone().unwrap();
    let resp = mlc_lambda::sqs::handle_batch(&w.ctx, QueueName::Post, ev).await;
    assert_eq!(failed_ids(&resp), vec!["poison".to_string(), later]);
    assert_eq!(w.bc.purchase_invoices().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_slice_runs_end_to_end_on_aws_exactly_once_even_when_a_poster_dies_after_the_draft() {
    let w = world().await;
    for n in 0..5 {
        invoice(
            &w,
            if n % 2 == 0 { "SUP-001" } else { "SUP-002" },
            &format!("AWS-{n}"),
        );
    }
    mlc_lambda::poller::handle(&w.ctx, event("schedule-poll.json"))
        .await
        .unwrap();
    // Map everything, then let one poster die right after creating its draft.
    while deliver(&w, QueueName::Ingest).await > 0 {}
    let q = &w.ctx.pipeline.env.queue;
    let first = q.receive(QueueName::Post, 1).await.unwrap().remove(0);
    assert!(
        w.ctx
            .pipeline
            .handle_post_crashing(
                &first.body,
                "environment-that-died",
                Some(CrashPoint::AfterDraft)
            )
            .await
            .is_err()
    );
    // Its claim's lease runs out (time passes), and its message comes back after the
    // visibility timeout to a live poster.
    expire_claims(&w).await;
    // A repeat poll and a webhook for the same invoices must change nothing.
    mlc_lambda::poller::handle(&w.ctx, event("schedule-poll.json"))
        .await
        .unwrap();
    drain(&w).await;

    let invoices = w.bc.purchase_invoices();
    assert_eq!(invoices.len(), 5, "{invoices:?}");
    assert!(
        invoices
            .iter()
            .all(|i| i.status == "Open" && i.post_count == 1),
        "{invoices:?}"
    );
    let dlq = q.dead_letters(QueueName::Post).await.unwrap();
    assert!(dlq.is_empty());
}

/// Moves every ledger claim's lease into the past, as the passing of time would.
async fn expire_claims(w: &World) {
    let db = aws_sdk_dynamodb::Client::new(&w.sdk);
    let table = &w.ctx.settings.tables.ledger;
    let items = db
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    for item in items {
        let key = item["ledger_key"].clone();
        db.update_item()
            .table_name(table)
            .key("ledger_key", key)
            .update_expression("SET lease_until = :past")
            .expression_attribute_values(
                ":past",
                AttributeValue::S("2000-01-01T00:00:00.000000000Z".into()),
            )
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_vendors_and_payments_sync_on_aws_exactly_once() {
    use mlc_sandbox::coupa::{NewOrderLine, NewPurchaseOrder};
    let w = world_with("purchase_orders = true\nsuppliers = \"create\"\npayments = true").await;
    let fabrikam = w.coupa.supplier_id_by_number("SUP-001").unwrap();
    w.coupa
        .add_purchase_order(NewPurchaseOrder::issued(fabrikam, "PO-AWS-1").line(
            NewOrderLine::qty("Toner", "3", "20.00", &["6100", "OPS", "P100"]),
        ));
    let tailspin = w
        .coupa
        .add_supplier(NewSupplier::new("Tailspin Toys", "SUP-077"));
    let _ = tailspin;
    let inv = invoice(&w, "SUP-077", "AWS-NEW-1");
    let poll =
        || mlc_lambda::poller::handle(&w.ctx, serde_json::json!({"integration": "coupa-bc"}));
    // Cycle 1 creates the order and the vendor; cycle 2 posts the parked invoice.
    for _ in 0..2 {
        poll().await.unwrap();
        drain(&w).await;
    }
    let orders = w.bc.purchase_orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].lines[0].description2, "Coupa PO PO-AWS-1");
    assert_eq!(
        w.bc.vendors()
            .iter()
            .filter(|v| v.number == "SUP-077")
            .count(),
        1
    );
    let posted = w.bc.purchase_invoices();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].vendor_number, "SUP-077");

    w.bc.mark_paid(posted[0].id);
    for _ in 0..3 {
        poll().await.unwrap();
        drain(&w).await;
    }
    let payments = w.coupa.invoice_json(inv).unwrap()["payments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(
        w.bc.purchase_orders().len(),
        1,
        "polled again, created once"
    );
}

// ------------------------------------------------------------------- every integration

/// The sandbox configuration with a second integration, `broken`, before `coupa-bc` (a copy of
/// it under another name), and `retry_base_delay_ms` = 25.
fn two_integrations(coupa: &CoupaSim, bc: &BcSim) -> String {
    let text = common::config_text(coupa, bc)
        .replace("[runtime]\n", "[runtime]\nretry_base_delay_ms = 25\n");
    let at = text.find("[[integrations]]").unwrap();
    let block = &text[at..];
    format!(
        "{}{}\n{block}",
        &text[..at],
        block.replace("name = \"coupa-bc\"", "name = \"broken\"")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_of_every_integration_reports_each_and_one_failure_stops_no_other() {
    use mlc_shared::ports::Watermarks;
    let (coupa, bc) = common::simulators(Duration::from_secs(30)).await;
    let sdk = common::sdk().await;
    let settings = common::deployment(&sdk, "all", &coupa, &bc, &[]).await;
    let config = Config::parse(&two_integrations(&coupa, &bc)).unwrap();
    let ctx = Context::new(config, settings, &sdk).await.unwrap();
    // The Lambda composition root takes the configured retry delay (it was fixed at 500 ms).
    assert_eq!(ctx.pipeline.retry.base_delay, Duration::from_millis(25));
    // `broken`, polled first, cannot read its watermark; `coupa-bc` must still be polled.
    let key = mlc_shared::flows::coupa_bc::watermark_key("broken", "invoices");
    ctx.pipeline
        .env
        .store
        .set_watermark(&key, None, "not a time")
        .await
        .unwrap();
    let supplier = coupa.supplier_id_by_number("SUP-001").unwrap();
    for n in ["ALL-1", "ALL-2"] {
        coupa.add_invoice(NewInvoice::approved(supplier, n).line(NewInvoiceLine::qty(
            "Toner",
            "2",
            "10.1250",
            &["6100", "ADM", "P100"],
        )));
    }

    let out = mlc_lambda::poller::handle(&ctx, event("schedule-poll.json"))
        .await
        .expect("one integration's failure does not fail the invocation");
    assert_eq!(out["failed"], serde_json::json!(["broken"]), "{out}");
    let results = out["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["integration"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "coupa-bc"], "in configuration order");
    let error = results[0]["error"].as_str().expect("the failure's reason");
    assert!(
        error.contains("watermark") && error.contains("not a time"),
        "{error}"
    );
    assert_eq!(results[1]["queued"], 2, "{out}");
    assert!(results[1].get("error").is_none(), "{out}");
    assert_eq!(
        ctx.pipeline
            .env
            .queue
            .depth(QueueName::Ingest)
            .await
            .unwrap(),
        2
    );

    // A list runs the named ones; the one-integration form still fails its invocation.
    let listed = mlc_lambda::poller::handle(
        &ctx,
        serde_json::json!({"integrations": ["coupa-bc", "nope"]}),
    )
    .await
    .unwrap();
    assert_eq!(listed["failed"], serde_json::json!(["nope"]), "{listed}");
    let one = mlc_lambda::poller::handle(&ctx, serde_json::json!({"integration": "broken"})).await;
    assert!(one.unwrap_err().to_string().contains("watermark"));

    // The renewal over every integration: neither has sync.notifications, both are no-ops.
    let renew = mlc_lambda::poller::handle(&ctx, event("schedule-renew-subscriptions.json"))
        .await
        .unwrap();
    assert_eq!(renew["failed"], serde_json::json!([]), "{renew}");
    assert_eq!(renew["results"].as_array().unwrap().len(), 2, "{renew}");
    assert!(renew["results"][0]["skipped"].is_string(), "{renew}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_of_several_integrations_audits_the_dead_letters_once() {
    use mlc_shared::ports::{Audit, AuditFilter, AuditStatus};
    let (coupa, bc) = common::simulators(Duration::from_secs(30)).await;
    let sdk = common::sdk().await;
    let settings = common::deployment(&sdk, "dl", &coupa, &bc, &[]).await;
    let config = Config::parse(&two_integrations(&coupa, &bc)).unwrap();
    let ctx = Context::new(config, settings, &sdk).await.unwrap();
    // A dead letter whose worker died during every delivery, so nobody audited it.
    let sample: SqsEvent = event("sqs-ingest-batch.json");
    let r = &sample.records[0];
    aws_sdk_sqs::Client::new(&sdk)
        .send_message()
        .queue_url(&ctx.settings.ingest_dlq_url)
        .message_body(r.body.clone().unwrap())
        .message_group_id(r.attributes["MessageGroupId"].clone())
        .message_deduplication_id(r.attributes["MessageDeduplicationId"].clone())
        .send()
        .await
        .unwrap();
    // An audit peeks at every dead letter once (received, then visible again at once), so a
    // dead letter's receive count counts the audits; this read is one more.
    let q = &ctx.pipeline.env.queue;
    let receives = || async {
        let dead = q.dead_letters(QueueName::Ingest).await.unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        dead[0].receive_count
    };
    let before = receives().await;

    let out = mlc_lambda::poller::handle(&ctx, event("schedule-poll.json"))
        .await
        .unwrap();
    assert_eq!(out["failed"], serde_json::json!([]), "{out}");
    assert_eq!(out["results"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(out["dead_letters"], 1, "{out}");
    let after = receives().await;
    assert_eq!(
        after - before,
        2,
        "two integrations polled together, one audit (and this read)"
    );

    // One integration by name: its poll, then the audit, as before.
    let one = mlc_lambda::poller::handle(&ctx, serde_json::json!({"integration": "coupa-bc"}))
        .await
        .unwrap();
    assert_eq!(one["integration"], "coupa-bc", "{one}");
    assert_eq!(receives().await - after, 2);

    // The renewal does not audit.
    let renew = mlc_lambda::poller::handle(&ctx, event("schedule-renew-subscriptions.json"))
        .await
        .unwrap();
    assert!(renew.get("dead_letters").is_none(), "{renew}");

    let audited = ctx
        .pipeline
        .env
        .store
        .query_audit(&AuditFilter {
            status: Some(AuditStatus::DeadLettered),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
}

// ------------------------------------------------------------------- the configuration secret

#[tokio::test(flavor = "multi_thread")]
async fn the_configuration_is_read_from_the_stacks_secret_and_an_upload_reaches_warm_functions() {
    use mlc_lambda::config_source::{ConfigSource, ConfigStore, Origin};
    let (coupa, bc) = common::simulators(Duration::from_secs(30)).await;
    let sdk = common::sdk().await;
    let mut settings = common::deployment(&sdk, "cfg", &coupa, &bc, &[]).await;
    let arn = mlc_lambda::local::config_secret(&sdk, &settings)
        .await
        .unwrap();
    assert!(
        arn.contains(&format!("{}mlc-config", settings.secret_prefix)),
        "{arn}"
    );
    let store = ConfigStore::new(aws_sdk_secretsmanager::Client::new(&sdk), &arn);
    let one = common::config_text(&coupa, &bc);
    let env_text = one.replace("name = \"coupa-bc\"", "name = \"from-env\"");

    // Nothing uploaded yet (the stack's placeholder): MLC_CONFIG, else an error naming both.
    let none = ConfigSource::new(Some(store.clone()), None)
        .load()
        .await
        .unwrap_err();
    let none = format!("{none:#}");
    assert!(
        none.contains("holds none yet") && none.contains("MLC_CONFIG"),
        "{none}"
    );
    let both = ConfigSource::new(Some(store.clone()), Some(env_text.clone()));
    let loaded = both.load().await.unwrap();
    assert_eq!(loaded.origin, Origin::Env);
    assert_eq!(loaded.config.integrations[0].name, "from-env");

    // An invalid configuration is refused with the parse error, and nothing is written.
    let bad = store
        .upload("[[integrations]]\nname = 7\n")
        .await
        .unwrap_err();
    assert!(
        format!("{bad:#}").contains("not a valid configuration"),
        "{bad:#}"
    );
    assert_eq!(store.read().await.unwrap(), None, "still the placeholder");

    // Uploaded: the secret wins over MLC_CONFIG.
    store.upload(&one).await.unwrap();
    let loaded = both.load().await.unwrap();
    assert_eq!(loaded.origin, Origin::Secret(arn.clone()));
    assert_eq!(loaded.config.integrations[0].name, "coupa-bc");

    // A function's context from the secret alone, re-read after the TTL (0 here: every
    // invocation) and rebuilt when the text changed.
    settings.secret_ttl = Duration::ZERO;
    let source = ConfigSource::new(Some(store.clone()), None);
    let live = mlc_lambda::LiveContext::new(source, settings, sdk.clone())
        .await
        .unwrap();
    let first = live.current().await;
    assert_eq!(first.config.integrations.len(), 1);
    assert_eq!(first.pipeline.retry.base_delay, Duration::from_secs(240));
    let same = live.current().await;
    assert!(
        std::sync::Arc::ptr_eq(&first, &same),
        "an unchanged configuration keeps the context (connections, tokens)"
    );
    store.upload(&two_integrations(&coupa, &bc)).await.unwrap();
    let second = live.current().await;
    let names: Vec<&str> = second
        .config
        .integrations
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["broken", "coupa-bc"]);
    assert_eq!(second.pipeline.retry.base_delay, Duration::from_millis(25));
    // It runs: a poll over the uploaded integrations.
    let out = mlc_lambda::poller::handle(&second, serde_json::json!({"integrations": "*"}))
        .await
        .unwrap();
    assert_eq!(out["results"].as_array().unwrap().len(), 2, "{out}");

    // A broken value written behind the tool's back: the warm context stays.
    aws_sdk_secretsmanager::Client::new(&sdk)
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("[[integrations]\n")
        .send()
        .await
        .unwrap();
    let kept = live.current().await;
    assert!(std::sync::Arc::ptr_eq(&second, &kept));
}
