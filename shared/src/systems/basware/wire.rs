//! Basware's JSON (`basware.md` §3.5–§3.6). Unknown fields are ignored and absent ones default
//! (§3.3: "API clients need to accept new JSON fields as well as absence of null fields").
//! Amounts are JSON numbers, read exactly (the workspace's `arbitrary_precision`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::systems::wire::decimal_opt;

/// `{"accountingDocuments": […]}`; elements kept raw so one unreadable document neither stops
/// a page nor vanishes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentList {
    #[serde(default)]
    pub accounting_documents: Vec<serde_json::Value>,
}

/// What a list page needs of each element: its id (and, when given, its last change).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocStub {
    pub invoice_id: String,
    #[serde(default)]
    pub last_updated: Option<DateTime<Utc>>,
}

/// AccountingDocumentEntity, the fields the connector reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountingDocument {
    pub invoice_id: String,
    #[serde(default)]
    pub invoice_number: Option<String>,
    #[serde(default)]
    pub processing_status: Option<String>,
    #[serde(default)]
    pub company_code: Option<String>,
    #[serde(default)]
    pub supplier_code: Option<String>,
    #[serde(default)]
    pub supplier_name: Option<String>,
    #[serde(default)]
    pub currency_code: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub net_sum: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub gross_sum: Option<Decimal>,
    #[serde(default)]
    pub tax_code: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub tax_percent1: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub tax_sum1: Option<Decimal>,
    #[serde(default)]
    pub invoice_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub due_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub invoice_type_code: Option<String>,
    /// Only on an internal schema (§3.11.8); tolerated and used when present.
    #[serde(default)]
    pub document_type: Option<String>,
    #[serde(default)]
    pub last_updated: Option<DateTime<Utc>>,
    #[serde(default)]
    pub coding_rows: Vec<CodingRow>,
}

/// StandardCodingEntity, the fields the connector reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodingRow {
    #[serde(default)]
    pub external_code: Option<String>,
    #[serde(default)]
    pub row_index: Option<i64>,
    #[serde(default)]
    pub account_code: Option<String>,
    #[serde(default)]
    pub account_name: Option<String>,
    #[serde(default)]
    pub cost_center_code: Option<String>,
    #[serde(default)]
    pub project_code: Option<String>,
    #[serde(default)]
    pub dim_code1: Option<String>,
    #[serde(default)]
    pub dim_code2: Option<String>,
    #[serde(default)]
    pub dim_code3: Option<String>,
    #[serde(default)]
    pub dim_code4: Option<String>,
    #[serde(default)]
    pub dim_code5: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub net_total: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub gross_total: Option<Decimal>,
    #[serde(default)]
    pub tax_code: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub tax_percent: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub tax_sum: Option<Decimal>,
    #[serde(default)]
    pub order_number: Option<String>,
}

impl CodingRow {
    /// (Basware field name, value) of every dimension-like code the row carries, non-empty,
    /// in a fixed order: `costCenterCode`, `projectCode`, `dimCode1..5`.
    pub fn dimension_codes(&self) -> Vec<(String, String)> {
        [
            ("costCenterCode", &self.cost_center_code),
            ("projectCode", &self.project_code),
            ("dimCode1", &self.dim_code1),
            ("dimCode2", &self.dim_code2),
            ("dimCode3", &self.dim_code3),
            ("dimCode4", &self.dim_code4),
            ("dimCode5", &self.dim_code5),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| (k.to_string(), v.to_string()))
        })
        .collect()
    }
}

/// TransferResponseEntity (§3.6): required `externalCode` (≤36, unique per invoice),
/// `success`, `responseMessage` (≤250), `paymentBlock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferResponse {
    pub external_code: String,
    pub success: bool,
    pub response_message: String,
    pub payment_block: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voucher_number1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_date: Option<String>,
}

/// PaymentResponseEntity (§3.6). Fields omitted are CLEARED in P2P, so every field the
/// connector knows is always sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    pub external_code: String,
    pub success: bool,
    pub payment_block: bool,
    pub response_message: String,
    pub source_system: String,
    pub payment_date: String,
    #[serde(serialize_with = "crate::systems::wire::decimal_number")]
    pub paid_total: Decimal,
    pub payment_number: String,
}

/// The stored transfer responses of a document, as `GET` shows them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Responses {
    #[serde(default)]
    pub processing_status: Option<String>,
    #[serde(default)]
    pub transfer_responses: Vec<TransferResponseSeen>,
    #[serde(default)]
    pub payment_responses: Vec<TransferResponseSeen>,
}

/// A transfer or payment response as the document carries it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferResponseSeen {
    #[serde(default)]
    pub external_code: Option<String>,
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub voucher_number1: Option<String>,
}

/// `{"requestStatus": […]}` (§3.11.1).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStatusList {
    #[serde(default)]
    pub request_status: Vec<RequestStatus>,
}

/// One import request's outcome.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStatus {
    pub request_id: String,
    /// `InProgress`, `Success`, `Error`, `AcknowledgedSuccess`, `AcknowledgedError`.
    #[serde(default)]
    pub request_status: String,
    #[serde(default)]
    pub systems: Vec<RequestSystem>,
}

impl RequestStatus {
    pub fn in_progress(&self) -> bool {
        self.request_status == "InProgress"
    }

    /// Every item of every target system.
    pub fn items(&self) -> impl Iterator<Item = &RequestItem> {
        self.systems.iter().flat_map(|s| s.items.iter())
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestSystem {
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub items: Vec<RequestItem>,
}

/// One record's outcome: `Success`, `NotProcessed` (identical to the last import), `Warning`,
/// `Error`, `RecordExpired`, `InProgress`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestItem {
    #[serde(default)]
    pub external_code: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub errors: Vec<RequestError>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestError {
    #[serde(default)]
    pub message: String,
}

/// A push-notification subscription as `GET /v1/subscriptions` lists it (§3.8).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(default)]
    pub task_type: Option<String>,
    #[serde(default)]
    pub task_sub_type: Option<String>,
    #[serde(default, rename = "notificationWebhookURL")]
    pub notification_webhook_url: Option<String>,
}

/// A subscription to create. `Debug` never shows the token.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    pub task_type: String,
    pub task_sub_type: String,
    pub subscription_type: String,
    #[serde(rename = "notificationWebhookURL")]
    pub notification_webhook_url: String,
    pub webhook_authentication_token: String,
}

impl std::fmt::Debug for NewSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubscription")
            .field("task_type", &self.task_type)
            .field("notification_webhook_url", &self.notification_webhook_url)
            .finish_non_exhaustive()
    }
}
