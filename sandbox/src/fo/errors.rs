//! F&O error responses (d365-fo.md B3): the OData wrapper
//! `{"error":{"code":"","message":"An error has occurred.","innererror":{"message":…,"type":…,"stacktrace":…}}}`
//! with the useful text in `error.innererror.message`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The exception type F&O names on a refused write (B3 sample).
pub const WRITE_EXCEPTION: &str =
    "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException";
/// The type we name on a malformed request (unknown property, bad key, bad filter).
/// Doubt: the exact type on F&O's 400s is not in the fact sheet; OData's own exception is the
/// likeliest, and clients must not depend on it.
pub const ODATA_EXCEPTION: &str = "Microsoft.OData.ODataException";

#[derive(Debug, Clone)]
pub(crate) struct FoError {
    pub status: StatusCode,
    pub inner: String,
    pub kind: &'static str,
}

pub(crate) type FoResult<T> = Result<T, FoError>;

impl FoError {
    /// B3: a refused write is HTTP 500 with `AxODataWriteException` and the Infolog text:
    /// "Write failed for table row of type '<AOT entity>'. Infolog: Error: …".
    pub(crate) fn write_failed(entity: &str, infolog: impl AsRef<str>) -> Self {
        FoError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            inner: format!(
                "Write failed for table row of type '{entity}'. Infolog: {}",
                infolog.as_ref()
            ),
            kind: WRITE_EXCEPTION,
        }
    }

    /// B3 duplicate key: "Cannot create a record in <label> (<table>). <field>: <values>.\nThe
    /// record already exists.." (the double period is F&O's).
    pub(crate) fn already_exists(entity: &str, label: &str, table: &str, key: &str) -> Self {
        Self::write_failed(
            entity,
            format!(
                "Info: Cannot create a record in {label} ({table}). {key}.\nThe record already exists.."
            ),
        )
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        FoError {
            status: StatusCode::BAD_REQUEST,
            inner: message.into(),
            kind: ODATA_EXCEPTION,
        }
    }

    /// B1/B9.4: unknown entity set, unknown key, or a record of another company addressed
    /// without `cross-company=true`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        FoError {
            status: StatusCode::NOT_FOUND,
            inner: message.into(),
            kind: ODATA_EXCEPTION,
        }
    }

    pub(crate) fn precondition_failed() -> Self {
        FoError {
            status: StatusCode::PRECONDITION_FAILED,
            inner: "The entity tag in the If-Match header does not match the current version of the record."
                .into(),
            kind: ODATA_EXCEPTION,
        }
    }

    pub(crate) fn method_not_allowed(set: &str) -> Self {
        FoError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            inner: format!("The entity set '{set}' is read-only."),
            kind: ODATA_EXCEPTION,
        }
    }
}

/// Renders the wrapper. `code` is always "" and `message` always the generic sentence (B3).
pub(crate) fn render(status: StatusCode, inner: &str, kind: &str) -> Response {
    (
        status,
        Json(json!({
            "error": {
                "code": "",
                "message": "An error has occurred.",
                "innererror": {
                    "message": inner,
                    "type": kind,
                    "stacktrace": "   at Microsoft.Dynamics.Platform.Integration.Services.OData (simulated)",
                }
            }
        })),
    )
        .into_response()
}

impl IntoResponse for FoError {
    fn into_response(self) -> Response {
        render(self.status, &self.inner, self.kind)
    }
}

/// Error renderer for injected faults. A 500 here names no write exception: it is a server
/// failure whose outcome is unknown (a lost answer), not a refusal, and a client must be able
/// to tell the two apart.
pub(crate) fn fault_body(status: StatusCode, message: &str) -> Response {
    let kind = match status.as_u16() {
        429 => "Microsoft.Dynamics.Platform.Integration.Services.ServiceProtection",
        _ => "System.Exception",
    };
    render(status, message, kind)
}
