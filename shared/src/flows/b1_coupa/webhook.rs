//! B1 webhooks (FP 2602) as a trigger only (apis/README.md decision): a JSON event naming an
//! object type and a key, signed with HMAC-SHA256 of the raw body in `X-B1-Signature`
//! (`sha256=<hex>` or hex or base64), verified in constant time before anything is parsed. It
//! queues a read of that document; what is written comes from the read, never from the event.
//! The event's shape is ours (B1's own is unconfirmed, §4.6):
//! `{"ObjectType": "22", "Key": "123", "Action": "U"}` (22 purchase order, 18 A/P invoice,
//! 2 business partner, 46 outgoing payment; `objectType` / `key` spellings accepted too).

use serde_json::Value;

use crate::model::DocumentKind;
use crate::ports::SecretString;
use crate::steps::webhook::{MAX_BODY_BYTES, WebhookError};
use crate::systems::signature::verify_hmac_sha256;

pub const SIGNATURE_HEADER: &str = "X-B1-Signature";

/// The document a verified event names.
pub fn verified_event(
    secret: &SecretString,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(DocumentKind, String), WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge(body.len()));
    }
    verify_hmac_sha256(
        SIGNATURE_HEADER,
        secret.expose().as_bytes(),
        body,
        signature,
    )
    .map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not a B1 event: {e}")))?;
    let field = |names: &[&str]| {
        names.iter().find_map(|n| match v.get(*n) {
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
    };
    let object = field(&["ObjectType", "objectType", "object_type"])
        .ok_or_else(|| WebhookError::Malformed("no ObjectType".into()))?;
    let key = field(&["Key", "key"])
        .filter(|k| !k.is_empty())
        .ok_or_else(|| WebhookError::Malformed("no Key".into()))?;
    let kind = match object.as_str() {
        "22" => DocumentKind::PurchaseOrder,
        "18" => DocumentKind::Invoice,
        "2" => DocumentKind::Supplier,
        "46" => DocumentKind::Payment,
        other => {
            return Err(WebhookError::Malformed(format!(
                "object type {other} is not read by this integration"
            )));
        }
    };
    Ok((kind, key))
}
