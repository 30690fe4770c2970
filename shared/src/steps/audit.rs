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
    }
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
        self.amount = Some(inv.total.amount);
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
