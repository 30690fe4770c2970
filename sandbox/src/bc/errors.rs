//! BC error responses (business-central.md A3 "Error JSON shape"):
//! `{"error":{"code":…,"message":"…  CorrelationId:  <guid>."}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// AL `Error()` surfaces as 400 `Application_DialogException` (A6.2 post notes).
    pub(crate) fn dialog(message: impl Into<String>) -> Self {
        Self::bad("Application_DialogException", message)
    }

    /// A3: malformed URL or filter.
    pub(crate) fn syntax() -> Self {
        Self::bad(
            "BadRequest_NotFound",
            "Bad Request - Error in query syntax.",
        )
    }

    /// A3: bad JSON or unknown field.
    pub(crate) fn invalid_body() -> Self {
        Self::bad("BadRequest", "Invalid Request Body")
    }

    /// Doubt: BC's exact code/message for a missing key is not in the fact sheet; we use
    /// 404 with the BadRequest_NotFound family and OData's usual wording.
    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BadRequest_NotFound",
            "The requested resource does not exist.",
        )
    }

    pub(crate) fn table_relation(field: &str, table: &str, value: &str, related: &str) -> Self {
        Self::bad(
            "Internal_InvalidTableRelation",
            format!(
                "The field {field} of table {table} contains a value ({value}) that cannot be found in the related table ({related})."
            ),
        )
    }

    pub(crate) fn read_only(field: &str) -> Self {
        Self::bad(
            "BadRequest_InvalidOperation",
            format!("Control '{field}' is read-only."),
        )
    }
}

/// Renders a BC error body; the correlation id is new per response, as on the real service.
pub(crate) fn render(status: StatusCode, code: &str, message: &str) -> Response {
    let message = format!("{message}  CorrelationId:  {}.", uuid::Uuid::new_v4());
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        render(self.status, self.code, &self.message)
    }
}

/// Error renderer used by injected faults: the usual BC code for each status.
pub(crate) fn fault_body(status: StatusCode, message: &str) -> Response {
    let code = match status.as_u16() {
        401 => "Authentication_InvalidCredentials",
        404 => "BadRequest_NotFound",
        408 => "RequestTimeout",
        // Doubt: the code on a BC 429 is not documented (A4); this name is our guess.
        429 => "Application_TooManyRequests",
        503 => "ServiceUnavailable",
        s if s >= 500 => "Internal_ServerError",
        _ => "BadRequest",
    };
    render(status, code, message)
}
