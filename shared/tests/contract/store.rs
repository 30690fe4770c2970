//! The store contract: the posting ledger's conditional claim, watermarks' compare-and-set,
//! mapping tables, parked documents and the audit trail, whatever the adapter.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mlc_shared::ports::{
    Audit, AuditFilter, AuditItem, AuditStatus, Claim, Ledger, LedgerKey, LedgerState, Mappings,
    ParkedDoc, Parking, Step, StoreError, Watermarks,
};
use rust_decimal::Decimal;

use crate::StoreFixture;

const LEASE: Duration = Duration::from_secs(60);
/// The target the entries are written for; `OTHER` another company of the same environment.
const T: &str = "business_central:tenant/production/company-a";
const OTHER: &str = "business_central:tenant/production/company-b";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn key(id: &str) -> LedgerKey {
    LedgerKey {
        integration: "coupa-bc".into(),
        kind: "invoice".into(),
        source_id: id.into(),
    }
}

/// Sixteen workers on two handles (two connections, two clients) claim one document at once.
pub async fn racing_claims_from_two_handles_acquire_once<F: StoreFixture>() {
    let f = F::new().await;
    let (a, b) = (f.handle(), f.handle());
    let now = t("2024-04-01T08:00:00Z");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .claim(&key("92010"), &format!("worker-{i}"), T, now, LEASE)
                .await
                .unwrap()
        }));
    }
    let mut acquired = 0;
    for task in tasks {
        match task.await.unwrap() {
            Claim::Acquired(_) => acquired += 1,
            Claim::Busy(_) => {}
            Claim::Done(_) => panic!("nobody completed it"),
        }
    }
    assert_eq!(acquired, 1);
    let entry = a.ledger_entry(&key("92010")).await.unwrap().unwrap();
    assert_eq!(entry.attempts, 1);
    assert_eq!(entry.state, LedgerState::Claimed);
}

pub async fn lease_expiry_take_over_keeps_target_id<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    let k = key("1");
    match s.claim(&k, "a", T, now, LEASE).await.unwrap() {
        Claim::Acquired(e) => {
            assert_eq!((e.attempts, e.target_id), (1, None));
            assert_eq!(e.lease_until, now + chrono::Duration::seconds(60));
        }
        other => panic!("expected Acquired, got {other:?}"),
    }
    s.record_target(&k, "a", "guid-1").await.unwrap();
    match s
        .claim(&k, "b", T, now + chrono::Duration::seconds(30), LEASE)
        .await
        .unwrap()
    {
        Claim::Busy(e) => assert_eq!(e.owner, "a"),
        other => panic!("expected Busy, got {other:?}"),
    }
    let expired = now + chrono::Duration::seconds(60);
    match s.claim(&k, "b", T, expired, LEASE).await.unwrap() {
        Claim::Acquired(e) => {
            assert_eq!(e.owner, "b");
            assert_eq!(e.target_id.as_deref(), Some("guid-1"));
            assert_eq!(e.attempts, 2);
            assert_eq!(e.lease_until, expired + chrono::Duration::seconds(60));
        }
        other => panic!("expected Acquired, got {other:?}"),
    }
    assert_eq!(s.ledger_entry(&k).await.unwrap().unwrap().owner, "b");
}

pub async fn an_unsettled_create_survives_a_take_over_until_its_target_is_recorded<
    F: StoreFixture,
>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    let k = key("unsettled");
    assert!(matches!(
        s.claim(&k, "a", T, now, LEASE).await.unwrap(),
        Claim::Acquired(_)
    ));
    s.record_unsettled_create(&k, "a", now).await.unwrap();
    s.release(&k, "a").await.unwrap();
    // Another worker's claim sees the create that may still land in the target.
    match s
        .claim(&k, "b", T, now + chrono::Duration::seconds(5), LEASE)
        .await
        .unwrap()
    {
        Claim::Acquired(e) => assert_eq!(e.unsettled_create_at, Some(now)),
        other => panic!("expected Acquired, got {other:?}"),
    }
    // Found after all: recording its id settles it.
    s.record_target(&k, "b", "guid-late").await.unwrap();
    let e = s.ledger_entry(&k).await.unwrap().unwrap();
    assert_eq!(e.unsettled_create_at, None);
    assert_eq!(e.target_id.as_deref(), Some("guid-late"));
    // Only the claim holder may record it.
    assert!(matches!(
        s.record_unsettled_create(&k, "a", now).await,
        Err(StoreError::LostClaim(_))
    ));
}

pub async fn same_owner_re_enters_its_claim<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    s.claim(&key("1"), "a", T, now, LEASE).await.unwrap();
    let later = now + chrono::Duration::seconds(10);
    match s.claim(&key("1"), "a", T, later, LEASE).await.unwrap() {
        Claim::Acquired(e) => {
            assert_eq!(e.attempts, 1);
            assert_eq!(e.lease_until, later + chrono::Duration::seconds(60));
        }
        other => panic!("expected Acquired, got {other:?}"),
    }
}

pub async fn complete_then_claim_is_done<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    let k = key("1");
    s.claim(&k, "a", T, now, LEASE).await.unwrap();
    s.complete(&k, "a", "guid-1", "PI-1001").await.unwrap();
    match s
        .claim(&k, "b", T, now + chrono::Duration::days(1), LEASE)
        .await
        .unwrap()
    {
        Claim::Done(e) => {
            assert_eq!(e.state, LedgerState::Done);
            assert_eq!(e.target_id.as_deref(), Some("guid-1"));
            assert_eq!(e.target_number.as_deref(), Some("PI-1001"));
        }
        other => panic!("expected Done, got {other:?}"),
    }
}

pub async fn record_target_and_complete_after_a_take_over_are_lost_claim<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    let k = key("1");
    s.claim(&k, "a", T, now, LEASE).await.unwrap();
    s.claim(&k, "b", T, now + chrono::Duration::seconds(61), LEASE)
        .await
        .unwrap();
    match s.record_target(&k, "a", "guid-x").await {
        Err(StoreError::LostClaim(which)) => assert_eq!(which, k.to_string()),
        other => panic!("expected LostClaim, got {other:?}"),
    }
    assert!(matches!(
        s.complete(&k, "a", "guid-x", "PI-1").await,
        Err(StoreError::LostClaim(_))
    ));
    assert!(matches!(
        s.record_target(&key("never-claimed"), "a", "guid-y").await,
        Err(StoreError::LostClaim(_))
    ));
    assert_eq!(s.ledger_entry(&k).await.unwrap().unwrap().target_id, None);
}

pub async fn a_done_entry_is_not_done_for_another_target<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    let k = key("1");
    s.claim(&k, "a", T, now, LEASE).await.unwrap();
    s.complete(&k, "a", "guid-1", "PI-1").await.unwrap();
    // Same target: done.
    assert!(matches!(
        s.claim(&k, "b", T, now, LEASE).await.unwrap(),
        Claim::Done(_)
    ));
    // Another company: a new attempt there, knowing nothing of the first company's invoice.
    match s.claim(&k, "b", OTHER, now, LEASE).await.unwrap() {
        Claim::Acquired(e) => {
            assert_eq!(e.target.as_deref(), Some(OTHER));
            assert_eq!((e.target_id, e.target_number), (None, None));
            assert_eq!(e.state, LedgerState::Claimed);
            assert_eq!(
                e.attempts, 2,
                "counted on: the writer must look before it creates"
            );
        }
        other => panic!("expected Acquired, got {other:?}"),
    }
    let e = s.ledger_entry(&k).await.unwrap().unwrap();
    assert_eq!((e.owner.as_str(), e.target.as_deref()), ("b", Some(OTHER)));
}

pub async fn a_live_claim_for_another_target_is_busy<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    let k = key("1");
    s.claim(&k, "a", T, now, LEASE).await.unwrap();
    s.record_target(&k, "a", "guid-1").await.unwrap();
    assert!(matches!(
        s.claim(&k, "b", OTHER, now + chrono::Duration::seconds(5), LEASE)
            .await
            .unwrap(),
        Claim::Busy(_)
    ));
    // Once the lease has run out, the other target's attempt starts without its draft id.
    match s
        .claim(&k, "b", OTHER, now + chrono::Duration::seconds(61), LEASE)
        .await
        .unwrap()
    {
        Claim::Acquired(e) => assert_eq!(e.target_id, None),
        other => panic!("expected Acquired, got {other:?}"),
    }
}

pub async fn forget_deletes_a_done_entry_but_never_a_live_claim<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    assert_eq!(s.forget(&key("none"), now).await.unwrap(), None);
    let k = key("1");
    s.claim(&k, "a", T, now, LEASE).await.unwrap();
    assert!(matches!(
        s.forget(&k, now).await,
        Err(StoreError::LostClaim(_))
    ));
    s.complete(&k, "a", "guid-1", "PI-1").await.unwrap();
    let gone = s.forget(&k, now).await.unwrap().unwrap();
    assert_eq!(gone.target_number.as_deref(), Some("PI-1"));
    assert_eq!(s.ledger_entry(&k).await.unwrap(), None);
    match s.claim(&k, "b", T, now, LEASE).await.unwrap() {
        Claim::Acquired(e) => assert_eq!((e.attempts, e.target_id), (1, None)),
        other => panic!("expected Acquired, got {other:?}"),
    }
}

pub async fn ledger_targets_count_entries_per_target<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    for (id, target) in [("1", T), ("2", T), ("3", OTHER)] {
        s.claim(&key(id), "a", target, now, LEASE).await.unwrap();
    }
    let mut other_integration = key("4");
    other_integration.integration = "concur-bc".into();
    s.claim(&other_integration, "a", OTHER, now, LEASE)
        .await
        .unwrap();
    assert_eq!(
        s.ledger_targets("coupa-bc").await.unwrap(),
        vec![(Some(T.to_string()), 2), (Some(OTHER.to_string()), 1)]
    );
}

pub async fn release_lets_another_worker_take_it_at_once<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let now = t("2024-04-01T08:00:00Z");
    let k = key("1");
    s.claim(&k, "a", T, now, LEASE).await.unwrap();
    s.record_target(&k, "a", "guid-1").await.unwrap();
    s.release(&k, "a").await.unwrap();
    match s.claim(&k, "b", T, now, LEASE).await.unwrap() {
        Claim::Acquired(e) => {
            assert_eq!(e.target_id.as_deref(), Some("guid-1"));
            assert_eq!(e.attempts, 2);
        }
        other => panic!("expected Acquired, got {other:?}"),
    }
    // Releasing a claim that is not ours does nothing.
    s.release(&k, "a").await.unwrap();
    assert!(matches!(
        s.claim(&k, "c", T, now, LEASE).await.unwrap(),
        Claim::Busy(_)
    ));
}

pub async fn watermark_compare_and_set<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    assert_eq!(s.watermark("coupa").await.unwrap(), None);
    assert!(s.set_watermark("coupa", None, "t1").await.unwrap());
    assert!(!s.set_watermark("coupa", None, "t1b").await.unwrap());
    let w = s.watermark("coupa").await.unwrap().unwrap();
    assert_eq!((w.value.as_str(), w.version), ("t1", 1));
    assert!(
        s.set_watermark("coupa", Some(w.version), "t2")
            .await
            .unwrap()
    );
    assert!(
        !s.set_watermark("coupa", Some(w.version), "t3")
            .await
            .unwrap()
    );
    let w2 = s.watermark("coupa").await.unwrap().unwrap();
    assert_eq!(w2.value, "t2");
    assert_eq!(w2.version, w.version + 1);
    assert!(!s.set_watermark("other", Some(1), "x").await.unwrap());
}

pub async fn mappings_put_get_list_remove<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    s.put_mapping("supplier", "17", "V0001").await.unwrap();
    s.put_mapping("supplier", "17", "V0002").await.unwrap();
    s.put_mapping("gl_account", "6000", "61100").await.unwrap();
    assert_eq!(
        s.mapping("supplier", "17").await.unwrap().as_deref(),
        Some("V0002")
    );
    assert_eq!(
        s.list_mappings(None).await.unwrap(),
        vec![
            ("gl_account".into(), "6000".into(), "61100".into()),
            ("supplier".into(), "17".into(), "V0002".into()),
        ]
    );
    assert_eq!(
        s.list_mappings(Some("supplier")).await.unwrap(),
        vec![("supplier".into(), "17".into(), "V0002".into())]
    );
    assert!(s.remove_mapping("supplier", "17").await.unwrap());
    assert!(!s.remove_mapping("supplier", "17").await.unwrap());
    assert_eq!(s.mapping("supplier", "17").await.unwrap(), None);
}

pub async fn parking_replaces_and_unparks_oldest_first<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let mut doc = ParkedDoc {
        integration: "coupa-bc".into(),
        kind: "invoice".into(),
        source_id: "1".into(),
        source_document_number: Some("INV-1".into()),
        reason: "unknown vendor 17".into(),
        message: "{\"id\":1}".into(),
        at: t("2024-04-01T08:00:00Z"),
    };
    s.park(&doc).await.unwrap();
    doc.reason = "unknown GL account 6000".into();
    doc.at = t("2024-04-01T09:00:00Z");
    s.park(&doc).await.unwrap();
    let other = ParkedDoc {
        source_id: "2".into(),
        source_document_number: None,
        at: t("2024-04-01T07:00:00Z"),
        ..doc.clone()
    };
    s.park(&other).await.unwrap();
    assert_eq!(s.parked().await.unwrap(), vec![other.clone(), doc.clone()]);
    assert!(s.unpark("coupa-bc", "invoice", "1").await.unwrap());
    assert!(!s.unpark("coupa-bc", "invoice", "1").await.unwrap());
    assert_eq!(s.parked().await.unwrap(), vec![other]);
}

/// Handles are shared across tasks: a mapping written by one worker's handle on another task is
/// read through another handle.
pub async fn a_write_through_one_handle_is_read_through_another<F: StoreFixture>() {
    let f = F::new().await;
    let (a, b) = (f.handle(), f.handle());
    tokio::spawn(async move { a.put_mapping("supplier", "1", "V1").await.unwrap() })
        .await
        .unwrap();
    assert_eq!(
        b.mapping("supplier", "1").await.unwrap().as_deref(),
        Some("V1")
    );
}

fn audit(at: &str, id: &str, status: AuditStatus, vendor: &str) -> AuditItem {
    AuditItem {
        at: t(at),
        integration: "coupa-bc".into(),
        document_kind: "invoice".into(),
        source_id: id.into(),
        source_document_number: Some(format!("INV-{id}")),
        vendor: Some(vendor.into()),
        amount: Some(Decimal::from_str("1234.50").unwrap()),
        currency: Some("EUR".into()),
        step: Step::Post,
        status,
        target_document_number: None,
        target_id: None,
        error: None,
        repeats: 0,
    }
}

/// Five audit items of three documents over three days.
async fn seed(s: &impl Audit) {
    for item in [
        audit("2024-04-01T08:00:00Z", "1", AuditStatus::Received, "Acme"),
        audit("2024-04-01T09:00:00Z", "1", AuditStatus::Posted, "Acme"),
        audit("2024-04-02T08:00:00Z", "2", AuditStatus::Received, "Globex"),
        audit("2024-04-02T09:00:00Z", "2", AuditStatus::Failed, "Globex"),
        audit("2024-04-03T08:00:00Z", "3", AuditStatus::Failed, "Acme"),
    ] {
        s.append_audit(&item).await.unwrap();
    }
}

fn ids(items: &[AuditItem]) -> Vec<(&str, AuditStatus)> {
    items
        .iter()
        .map(|i| (i.source_id.as_str(), i.status))
        .collect()
}

pub async fn audit_query_by_document_matches_id_or_number<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    seed(&s).await;
    let by_id = s
        .query_audit(&AuditFilter {
            integration: Some("coupa-bc".into()),
            document: Some("1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&by_id),
        [("1", AuditStatus::Received), ("1", AuditStatus::Posted)]
    );
    assert_eq!(by_id[0].amount.unwrap().to_string(), "1234.50");
    // Without the integration, or by the document number: the same answer. (DynamoDB answers
    // these from different indexes, or a scan.)
    for filter in [
        AuditFilter {
            document: Some("1".into()),
            ..Default::default()
        },
        AuditFilter {
            document: Some("INV-1".into()),
            ..Default::default()
        },
        AuditFilter {
            integration: Some("coupa-bc".into()),
            document: Some("INV-1".into()),
            ..Default::default()
        },
    ] {
        assert_eq!(s.query_audit(&filter).await.unwrap(), by_id, "{filter:?}");
    }
    let other = s
        .query_audit(&AuditFilter {
            integration: Some("another".into()),
            document: Some("1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.is_empty());
}

pub async fn audit_query_by_status_and_date_range<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    seed(&s).await;
    let failed = s
        .query_audit(&AuditFilter {
            status: Some(AuditStatus::Failed),
            from: Some(t("2024-04-02T09:00:00Z")),
            to: Some(t("2024-04-03T08:00:00Z")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&failed),
        [("2", AuditStatus::Failed)],
        "from inclusive, to exclusive"
    );
    let since = s
        .query_audit(&AuditFilter {
            status: Some(AuditStatus::Failed),
            from: Some(t("2024-04-02T09:00:01Z")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&since), [("3", AuditStatus::Failed)]);
    let before = s
        .query_audit(&AuditFilter {
            status: Some(AuditStatus::Received),
            to: Some(t("2024-04-02T08:00:00Z")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&before), [("1", AuditStatus::Received)]);
    let all_failed = s
        .query_audit(&AuditFilter {
            status: Some(AuditStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&all_failed),
        [("2", AuditStatus::Failed), ("3", AuditStatus::Failed)]
    );
}

pub async fn audit_query_by_vendor<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    seed(&s).await;
    let acme = s
        .query_audit(&AuditFilter {
            vendor: Some("Acme".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&acme),
        [
            ("1", AuditStatus::Received),
            ("1", AuditStatus::Posted),
            ("3", AuditStatus::Failed)
        ]
    );
    let acme_failed = s
        .query_audit(&AuditFilter {
            vendor: Some("Acme".into()),
            status: Some(AuditStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&acme_failed), [("3", AuditStatus::Failed)]);
}

pub async fn audit_query_limit_keeps_the_latest_newest_last<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    seed(&s).await;
    // Same timestamp: the order of appending breaks the tie.
    let mut tie = audit(
        "2024-04-03T08:00:00Z",
        "4",
        AuditStatus::Received,
        "Initech",
    );
    s.append_audit(&tie).await.unwrap();
    tie.status = AuditStatus::Mapped;
    s.append_audit(&tie).await.unwrap();
    let latest = s
        .query_audit(&AuditFilter {
            limit: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&latest),
        [
            ("3", AuditStatus::Failed),
            ("4", AuditStatus::Received),
            ("4", AuditStatus::Mapped)
        ]
    );
    let latest_failed = s
        .query_audit(&AuditFilter {
            status: Some(AuditStatus::Failed),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&latest_failed), [("3", AuditStatus::Failed)]);
    let none = s
        .query_audit(&AuditFilter {
            limit: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn audit_amount_round_trips_exactly_and_absent_fields_stay_absent<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let mut item = audit("2024-04-01T08:00:00Z", "1", AuditStatus::Posted, "Acme");
    item.amount = Some(Decimal::from_str("12.3400").unwrap());
    item.target_document_number = Some("PI-1001".into());
    item.target_id = Some("guid-1".into());
    s.append_audit(&item).await.unwrap();
    let bare = AuditItem {
        source_id: "2".into(),
        source_document_number: None,
        vendor: None,
        amount: None,
        currency: None,
        error: Some(String::new()),
        ..item.clone()
    };
    s.append_audit(&bare).await.unwrap();
    let got = s.query_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(got.len(), 2);
    let posted = got.iter().find(|i| i.source_id == "1").unwrap();
    assert_eq!(posted.amount.unwrap().to_string(), "12.3400");
    assert_eq!(posted, &item);
    assert_eq!(got.iter().find(|i| i.source_id == "2").unwrap(), &bare);
}

pub async fn audit_query_returns_every_item_of_a_large_trail<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    // Big items: 2.5 MB, more than one 1 MB page of a DynamoDB scan or query.
    let mut item = audit("2024-04-01T08:00:00Z", "1", AuditStatus::Failed, "Acme");
    item.error = Some("x".repeat(100_000));
    for i in 0..25 {
        item.source_id = format!("{i}");
        item.at = t("2024-04-01T08:00:00Z") + chrono::Duration::seconds(i);
        s.append_audit(&item).await.unwrap();
    }
    let all = s.query_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.len(), 25);
    assert!(all.windows(2).all(|w| w[0].at < w[1].at), "newest last");
    let failed = s
        .query_audit(&AuditFilter {
            status: Some(AuditStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 25);
}

pub async fn audit_once_appends_the_first_and_counts_the_repeats<F: StoreFixture>() {
    let f = F::new().await;
    let s = f.handle();
    let first = audit("2024-04-01T08:00:00Z", "1", AuditStatus::Received, "Acme");
    assert!(s.append_audit_once(&first, "received/1/v1").await.unwrap());
    let mut later = first.clone();
    later.at = t("2024-04-01T09:00:00Z");
    for _ in 0..3 {
        assert!(!s.append_audit_once(&later, "received/1/v1").await.unwrap());
    }
    // Another key (a new version) is its own row; plain appends are never counted.
    assert!(s.append_audit_once(&later, "received/1/v2").await.unwrap());
    let mut plain = first.clone();
    plain.at = t("2024-04-01T08:30:00Z");
    s.append_audit(&plain).await.unwrap();
    let got = s.query_audit(&AuditFilter::default()).await.unwrap();
    let repeats: Vec<(String, u64)> = got.iter().map(|i| (i.at.to_rfc3339(), i.repeats)).collect();
    assert_eq!(
        repeats,
        vec![
            ("2024-04-01T08:00:00+00:00".to_string(), 3),
            ("2024-04-01T08:30:00+00:00".to_string(), 0),
            ("2024-04-01T09:00:00+00:00".to_string(), 0),
        ]
    );
}

pub async fn audit_once_appends_once_under_concurrent_calls<F: StoreFixture>() {
    let f = F::new().await;
    let item = audit("2024-04-01T08:00:00Z", "1", AuditStatus::Posted, "Acme");
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (s, item) = (f.handle(), item.clone());
        calls.spawn(async move { s.append_audit_once(&item, "posted/1").await.unwrap() });
    }
    let appended = calls.join_all().await.into_iter().filter(|a| *a).count();
    let s = f.handle();
    assert_eq!(appended, 1);
    let got = s.query_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].repeats, 7);
}
