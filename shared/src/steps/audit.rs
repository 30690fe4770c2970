use crate::model::{Invoice, ResolvedInvoice};
use crate::ports::{AuditItem, AuditStatus, Step};

/// An audit item with the document's identity filled in; callers add what they know.
pub fn audit_item(
    at: chrono::DateTime<chrono::Utc>,
    integration: &str,
    kind: &str,
    source_id: &str,
    step: Step,
    status: AuditStatus,
) -> AuditItem {
    AuditItem {
        at,
        integration: integration.to_string(),
        document_kind: kind.to_string(),
        source_id: source_id.to_string(),
        source_document_number: None,
        vendor: None,
        amount: None,
        currency: None,
        step,
        status,
        target_document_number: None,
        target_id: None,
        error: None,
        repeats: 0,
    }
}

/// The key under which an outcome is logged once and its repeats counted
/// ([`Audit::append_audit_once`](crate::ports::Audit::append_audit_once)): the outcome and
/// what makes it the same one again (the document, its version, the target).
pub fn once_key(parts: &[&str]) -> String {
    parts.join("\u{1f}")
}

impl AuditItem {
    pub fn with_invoice(mut self, inv: &Invoice) -> Self {
        self.source_document_number = Some(inv.number.clone());
        self.vendor = Some(inv.supplier.name.clone());
        self.amount = Some(inv.total.amount);
        self.currency = Some(inv.total.currency.to_string());
        self
    }

    pub fn with_resolved(mut self, inv: &ResolvedInvoice) -> Self {
        self.source_document_number = Some(inv.vendor_invoice_number.clone());
        self.vendor = Some(format!("{} ({})", inv.supplier_name, inv.vendor_number));
        // A credit memo's amounts are positive in the target (its kind makes it a credit);
        // the audit trail shows a credit note negative at every step, as the source does.
        self.amount = Some(match inv.kind {
            crate::model::InvoiceKind::CreditNote => -inv.total.amount.abs(),
            crate::model::InvoiceKind::Invoice => inv.total.amount,
        });
        self.currency = Some(inv.total.currency.to_string());
        self
    }

    pub fn with_error(mut self, e: impl Into<String>) -> Self {
        self.error = Some(e.into());
        self
    }

    pub fn with_target(mut self, id: &str, number: Option<&str>) -> Self {
        self.target_id = Some(id.to_string());
        self.target_document_number = number.map(str::to_string);
        self
    }
}

/// One document as it stands now, from its audit events and the parked list: the current-state
/// view beside the event history.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DocumentState {
    /// When it got to this state (its latest event).
    pub at: chrono::DateTime<chrono::Utc>,
    pub integration: String,
    pub document_kind: String,
    pub source_id: String,
    pub source_document_number: Option<String>,
    pub vendor: Option<String>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub amount: Option<rust_decimal::Decimal>,
    pub currency: Option<String>,
    /// Its state now: posted (or updated, already_posted) once written, parked while on the
    /// parked list, else its latest outcome (received, mapped, failed, dead_lettered, ...).
    pub status: AuditStatus,
    pub step: Step,
    pub target_document_number: Option<String>,
    pub target_id: Option<String>,
    /// Why it is in this state (a parked document's reason, a failure's error).
    pub error: Option<String>,
    /// How many events its history holds, and how many repeats were counted on them.
    pub events: u64,
    pub repeats: u64,
}

/// The documents of `events` (oldest first) as they stand now, ordered by when they got there
/// (newest last). A written document stays written whatever is read again later (a poll's
/// overlap, a redelivery); the parked list is the truth for what is parked.
pub fn current_states(
    events: &[AuditItem],
    parked: &[crate::ports::ParkedDoc],
) -> Vec<DocumentState> {
    use std::collections::HashMap;
    let written = |s: AuditStatus| {
        matches!(
            s,
            AuditStatus::Posted | AuditStatus::Updated | AuditStatus::AlreadyPosted
        )
    };
    let in_flight = |s: AuditStatus| {
        matches!(
            s,
            AuditStatus::Received | AuditStatus::Mapped | AuditStatus::Failed
        )
    };
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut docs: HashMap<(String, String, String), DocumentState> = HashMap::new();
    for e in events {
        let key = (
            e.integration.clone(),
            e.document_kind.clone(),
            e.source_id.clone(),
        );
        let d = docs.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            DocumentState {
                at: e.at,
                integration: e.integration.clone(),
                document_kind: e.document_kind.clone(),
                source_id: e.source_id.clone(),
                source_document_number: None,
                vendor: None,
                amount: None,
                currency: None,
                status: e.status,
                step: e.step,
                target_document_number: None,
                target_id: None,
                error: None,
                events: 0,
                repeats: 0,
            }
        });
        d.events += 1;
        d.repeats += e.repeats;
        // The latest known identity and amount (the resolved one once mapped).
        if e.source_document_number.is_some() {
            d.source_document_number
                .clone_from(&e.source_document_number);
        }
        if e.vendor.is_some() {
            d.vendor.clone_from(&e.vendor);
        }
        if e.amount.is_some() {
            d.amount = e.amount;
            d.currency.clone_from(&e.currency);
        }
        // A replay's own rows are requests, not outcomes; but a document a person closed
        // (a dead letter discarded, a parked document given up) stands closed.
        let replay_request = e.step == Step::Replay && e.status != AuditStatus::Discarded;
        if replay_request || (in_flight(e.status) && written(d.status)) {
            continue;
        }
        d.at = e.at;
        d.status = e.status;
        d.step = e.step;
        d.error.clone_from(&e.error);
        if written(e.status) {
            d.target_document_number
                .clone_from(&e.target_document_number);
            d.target_id.clone_from(&e.target_id);
        }
    }
    for p in parked {
        let key = (p.integration.clone(), p.kind.clone(), p.source_id.clone());
        let d = docs.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            DocumentState {
                at: p.at,
                integration: p.integration.clone(),
                document_kind: p.kind.clone(),
                source_id: p.source_id.clone(),
                source_document_number: p.source_document_number.clone(),
                vendor: None,
                amount: None,
                currency: None,
                status: AuditStatus::Parked,
                step: Step::Map,
                target_document_number: None,
                target_id: None,
                error: None,
                events: 0,
                repeats: 0,
            }
        });
        d.status = AuditStatus::Parked;
        d.error = Some(p.reason.clone());
        d.at = d.at.max(p.at);
    }
    let mut out: Vec<DocumentState> = order.into_iter().filter_map(|k| docs.remove(&k)).collect();
    out.sort_by_key(|d| d.at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ParkedDoc;

    fn ev(min: u32, id: &str, step: Step, status: AuditStatus) -> AuditItem {
        let at = chrono::DateTime::parse_from_rfc3339(&format!("2026-12-01T10:{min:02}:00Z"))
            .unwrap()
            .to_utc();
        audit_item(at, "coupa-bc", "invoice", id, step, status)
    }

    fn states(events: &[AuditItem], parked: &[ParkedDoc]) -> Vec<(String, AuditStatus)> {
        current_states(events, parked)
            .into_iter()
            .map(|d| (d.source_id, d.status))
            .collect()
    }

    #[test]
    fn a_parked_document_posted_since_is_posted_now() {
        let events = [
            ev(1, "1", Step::Map, AuditStatus::Parked),
            ev(2, "1", Step::Map, AuditStatus::Mapped),
            ev(3, "1", Step::Post, AuditStatus::Posted).with_target("g1", Some("PI-1")),
        ];
        let now = current_states(&events, &[]);
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].status, AuditStatus::Posted);
        assert_eq!(now[0].target_document_number.as_deref(), Some("PI-1"));
        assert_eq!(now[0].events, 3);
    }

    #[test]
    fn a_posted_document_read_again_stays_posted() {
        let events = [
            ev(1, "1", Step::Post, AuditStatus::Posted),
            ev(2, "1", Step::Poll, AuditStatus::Received),
            ev(3, "1", Step::Map, AuditStatus::Mapped),
            ev(4, "1", Step::Replay, AuditStatus::Received),
        ];
        assert_eq!(
            states(&events, &[]),
            vec![("1".to_string(), AuditStatus::Posted)]
        );
    }

    #[test]
    fn the_parked_list_decides_what_is_parked_with_its_reason() {
        let events = [
            ev(1, "1", Step::Map, AuditStatus::Parked).with_error("old reason"),
            ev(2, "1", Step::Poll, AuditStatus::Received),
            ev(3, "2", Step::Poll, AuditStatus::Received),
        ];
        let parked = [ParkedDoc {
            integration: "coupa-bc".into(),
            kind: "invoice".into(),
            source_id: "1".into(),
            source_document_number: Some("INV-1".into()),
            reason: "no vendor mapped".into(),
            message: "{}".into(),
            at: events[1].at,
        }];
        let now = current_states(&events, &parked);
        assert_eq!(now[0].source_id, "1");
        assert_eq!(now[0].status, AuditStatus::Parked);
        assert_eq!(now[0].error.as_deref(), Some("no vendor mapped"));
        assert_eq!(now[1].status, AuditStatus::Received);
    }

    #[test]
    fn a_parked_document_given_up_by_hand_stands_discarded_with_why() {
        let events = [
            ev(1, "1", Step::Map, AuditStatus::Parked).with_error("no G/L account"),
            ev(2, "1", Step::Replay, AuditStatus::Discarded).with_error("given up by hand: x"),
        ];
        let now = current_states(&events, &[]);
        assert_eq!(now[0].status, AuditStatus::Discarded);
        assert_eq!(now[0].error.as_deref(), Some("given up by hand: x"));
    }

    #[test]
    fn a_written_document_that_its_target_lost_is_parked_again() {
        let events = [
            ev(1, "1", Step::Post, AuditStatus::Posted),
            ev(2, "1", Step::Map, AuditStatus::Parked).with_error("no longer in the target"),
        ];
        assert_eq!(
            states(&events, &[]),
            vec![("1".to_string(), AuditStatus::Parked)]
        );
    }
}
