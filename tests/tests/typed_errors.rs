//! A step's failure says what the runtime must do: retry no earlier than the server asked,
//! dead-letter a poison message at once, or back the whole integration off without spending
//! the messages' deliveries.

mod common;

use std::time::Duration;

use common::Harness;
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::ports::{AuditStatus, Message, OutgoingMessage, Queue, QueueName};
use mlc_shared::runtime::{Delivery, DrainStats};
use mlc_shared::steps::StepError;

async fn receive_one(h: &Harness, queue: QueueName) -> Message {
    let mut got = h.pipeline.env.queue.receive(queue, 1).await.unwrap();
    assert_eq!(got.len(), 1, "one message on the {} queue", queue.as_str());
    got.remove(0)
}

/// Runs one delivery and settles it on the queue, as a worker does.
async fn deliver(h: &Harness, queue: QueueName, m: &Message) -> Delivery {
    let d = h
        .pipeline
        .run_message(queue, &m.body, m.receive_count, &mut DrainStats::default())
        .await;
    h.pipeline.settle(queue, m, &d, true).await.unwrap();
    d
}

fn receive_count_in_db(h: &Harness) -> i64 {
    let c = rusqlite::Connection::open(&h.cfg.runtime.database).unwrap();
    c.query_row("SELECT MAX(receive_count) FROM queue_messages", [], |r| {
        r.get(0)
    })
    .unwrap()
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_on_its_first_delivery() {
    let h = Harness::new().await;
    let q = &h.pipeline.env.queue;
    q.send(
        QueueName::Post,
        vec![OutgoingMessage {
            group_id: "g1".into(),
            dedup_id: "d1".into(),
            body: r#"{"integration": "coupa-bc", "not": "a post message"}"#.into(),
        }],
    )
    .await
    .unwrap();
    let m = receive_one(&h, QueueName::Post).await;
    let d = deliver(&h, QueueName::Post, &m).await;
    assert!(matches!(d, Delivery::DeadLetterNow { .. }), "{d:?}");
    let dead = q.dead_letters(QueueName::Post).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].receive_count, 1, "no delivery spent on a retry");
    let audited = h.audit(AuditStatus::DeadLettered).await;
    assert_eq!(audited.len(), 1);
    assert!(
        audited[0].error.as_deref().unwrap().contains("undecodable"),
        "{:?}",
        audited[0].error
    );
}

#[tokio::test]
async fn a_503_with_retry_after_on_the_post_action_is_retried_no_earlier_than_asked() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "RA-1");
    h.pipeline.poll_all().await.unwrap();
    let m = receive_one(&h, QueueName::Ingest).await;
    assert!(matches!(
        deliver(&h, QueueName::Ingest, &m).await,
        Delivery::Done
    ));
    h.bc.fail_next(FaultRule::new(
        "POST",
        "Microsoft.NAV.post",
        1,
        FaultKind::Unavailable {
            retry_after: Some(2),
        },
    ));
    let m = receive_one(&h, QueueName::Post).await;
    match deliver(&h, QueueName::Post, &m).await {
        Delivery::Failed { retry_in, .. } => assert!(
            retry_in >= Duration::from_secs(2),
            "retried after {retry_in:?}, inside the 2 s the server asked for"
        ),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(
        h.pipeline
            .env
            .queue
            .receive(QueueName::Post, 1)
            .await
            .unwrap()
            .is_empty(),
        "the message is hidden for the server's wait"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_configured_maximum_backs_the_integration_off() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "RA-LONG");
    h.pipeline.poll_all().await.unwrap();
    let m = receive_one(&h, QueueName::Ingest).await;
    assert!(matches!(
        deliver(&h, QueueName::Ingest, &m).await,
        Delivery::Done
    ));
    // Maintenance: BC asks for an hour, more than max_server_wait_secs (600 by default).
    h.bc.fail_next(FaultRule::new(
        "POST",
        "Microsoft.NAV.post",
        1,
        FaultKind::Unavailable {
            retry_after: Some(3600),
        },
    ));
    let m = receive_one(&h, QueueName::Post).await;
    match deliver(&h, QueueName::Post, &m).await {
        Delivery::Deferred { wait, error } => {
            assert!(wait >= Duration::from_secs(3590), "{wait:?}");
            assert!(matches!(error, StepError::Systemic { .. }), "{error:?}");
        }
        other => panic!("expected the integration to back off, got {other:?}"),
    }
    let backed_off = h.pipeline.backoffs.active();
    assert_eq!(backed_off.len(), 1, "{backed_off:?}");
    assert_eq!(backed_off[0].0, "coupa-bc");
    assert!(backed_off[0].1 >= Duration::from_secs(3590));
    assert_eq!(receive_count_in_db(&h), 0, "the delivery was given back");
    let failed = h.audit(AuditStatus::Failed).await;
    let text = failed.last().unwrap().error.clone().unwrap();
    assert!(
        text.contains("integration 'coupa-bc' backed off for ")
            && text.contains("more than runtime.max_server_wait_secs (600 s)"),
        "{text}"
    );
}

#[tokio::test]
async fn refused_credentials_back_the_integration_off_without_spending_deliveries() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "CRED-1");
    h.simple_invoice("SUP-002", "CRED-2");
    // The BC client secret was revoked (rotated in Entra, not yet here).
    h.secrets.set("bc-client-secret", "revoked").unwrap();
    let p = h.restart().await;
    p.poll_all().await.unwrap();

    let mut got = p.env.queue.receive(QueueName::Ingest, 2).await.unwrap();
    assert_eq!(got.len(), 2);
    let second = got.pop().unwrap();
    let first = got.pop().unwrap();
    let mut stats = DrainStats::default();
    let d = p
        .run_message(QueueName::Ingest, &first.body, 1, &mut stats)
        .await;
    let Delivery::Deferred { wait, error } = &d else {
        panic!("expected the integration to back off, got {d:?}");
    };
    assert!(matches!(error, StepError::Systemic { .. }), "{error:?}");
    assert!(*wait >= Duration::from_secs(30), "{wait:?}");
    p.settle(QueueName::Ingest, &first, &d, true).await.unwrap();

    // The other document of the integration is not even tried while it is backed off.
    let d2 = p
        .run_message(QueueName::Ingest, &second.body, 1, &mut stats)
        .await;
    match &d2 {
        Delivery::Deferred { error, .. } => {
            assert!(error.to_string().contains("backed off"), "{error}")
        }
        other => panic!("expected a deferral, got {other:?}"),
    }
    p.settle(QueueName::Ingest, &second, &d2, true)
        .await
        .unwrap();

    assert_eq!(
        receive_count_in_db(&h),
        0,
        "both deliveries were given back"
    );
    assert!(
        p.env
            .queue
            .dead_letters(QueueName::Ingest)
            .await
            .unwrap()
            .is_empty()
    );
    let failed = h.audit(AuditStatus::Failed).await;
    assert_eq!(
        failed.len(),
        1,
        "one audit item when the integration backs off"
    );
    assert!(
        failed[0].error.as_deref().unwrap().contains("backed off"),
        "{:?}",
        failed[0].error
    );
}
