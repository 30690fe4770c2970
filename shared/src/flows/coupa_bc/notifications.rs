//! BC change notifications (business-central.md A8). A subscription to the company's purchase
//! invoices makes BC post a (data-less) notification when one changes; the connector treats it
//! as a trigger for the paid-status poll, which stays the backstop. Subscriptions live three
//! days: the renewer, a scheduled step, renews each one well before it expires and recreates
//! one BC has lost (BC deletes a subscription whose receiver answered a 4xx).

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use crate::config::NotificationConfig;
use crate::model::DocumentKind;
use crate::ports::{Clock, Queue, QueueName, SecretString, Store};
use crate::steps::{Env, IngestMessage, StepError};
use crate::systems::business_central::wire::{NewSubscription, NotificationBatch};
use crate::systems::business_central::{BcClient, BcError};

/// The entity sets subscribed to. Purchase orders cannot be (A8: not webhook-capable); they are
/// polled from Coupa's side anyway.
pub const SUBSCRIBED: &[&str] = &["purchaseInvoices"];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenewReport {
    pub created: u32,
    pub renewed: u32,
    pub current: u32,
}

/// Makes sure every subscription exists and has more than `renew_before_hours` to live.
pub async fn renew_subscriptions(
    bc: &BcClient,
    cfg: &NotificationConfig,
    client_state: &SecretString,
    now: DateTime<Utc>,
) -> Result<RenewReport, BcError> {
    let existing = bc.subscriptions().await?;
    let mut report = RenewReport::default();
    for set in SUBSCRIBED {
        let resource = bc.subscription_resource(set);
        let wanted = NewSubscription {
            notification_url: cfg.url.clone(),
            resource: resource.clone(),
            client_state: client_state.expose().to_string(),
        };
        let same_resource = |r: &str| {
            r.trim_start_matches('/')
                .eq_ignore_ascii_case(resource.trim_start_matches('/'))
        };
        let ours = existing.iter().find(|s| {
            s.notification_url.as_deref() == Some(cfg.url.as_str())
                && s.resource.as_deref().is_some_and(same_resource)
        });
        match ours {
            None => {
                bc.create_subscription(&wanted).await?;
                tracing::info!(resource = %resource, "created the BC subscription");
                report.created += 1;
            }
            Some(s) => {
                let expires = s
                    .expiration_date_time
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc));
                let due = expires.is_none_or(|at| {
                    at - now < chrono::Duration::hours(cfg.renew_before_hours as i64)
                });
                if due {
                    bc.renew_subscription(
                        &s.subscription_id,
                        s.etag.as_deref().unwrap_or("*"),
                        &wanted,
                    )
                    .await?;
                    tracing::info!(resource = %resource, "renewed the BC subscription");
                    report.renewed += 1;
                } else {
                    report.current += 1;
                }
            }
        }
    }
    Ok(report)
}

/// What the receiver answers BC.
#[derive(Debug, PartialEq, Eq)]
pub enum NotificationReply {
    /// The validation handshake: 200 with the token as a plain-text body.
    Validation(String),
    /// Accepted (202): a paid-status poll was queued.
    Accepted { queued: bool },
    /// Not from our subscription (wrong clientState): 401, answered like any unauthenticated
    /// request ([`crate::flows::WebhookReply::refused`]). BC itself always sends the right one.
    Unauthorized,
    /// Unreadable body: 400 (BC would drop the subscription, but BC never sends one).
    BadRequest(String),
}

impl NotificationReply {
    /// The HTTP status and exact `text/plain` body to answer BC with, the same in both
    /// runtimes. Refusals are logged here.
    pub fn http(&self) -> (u16, String) {
        match self {
            // A8: 200 with exactly the token as the body; nothing else.
            NotificationReply::Validation(token) => (200, token.clone()),
            NotificationReply::Accepted { queued: true } => {
                (202, "queued a paid-status poll\n".into())
            }
            NotificationReply::Accepted { queued: false } => (202, "accepted\n".into()),
            NotificationReply::Unauthorized => {
                tracing::warn!("BC notification refused: wrong clientState");
                (401, crate::flows::REFUSED_BODY.into())
            }
            NotificationReply::BadRequest(msg) => {
                tracing::warn!(error = %msg, "BC notification refused");
                (400, format!("{msg}\n"))
            }
        }
    }
}

/// Handles one request to the notification URL: the handshake (`validationToken` in the query,
/// any method), or a notification batch, which queues one paid-status poll for the
/// integration.
pub async fn notification<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    integration: &str,
    client_state: &SecretString,
    validation_token: Option<&str>,
    body: &[u8],
) -> Result<NotificationReply, StepError> {
    if let Some(token) = validation_token {
        return Ok(NotificationReply::Validation(token.to_string()));
    }
    let batch: NotificationBatch = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return Ok(NotificationReply::BadRequest(format!(
                "not a Business Central notification: {e}"
            )));
        }
    };
    let expected = client_state.expose().as_bytes();
    let all_ours = !batch.value.is_empty()
        && batch.value.iter().all(|n| {
            n.client_state
                .as_deref()
                .is_some_and(|c| bool::from(c.as_bytes().ct_eq(expected)))
        });
    if !all_ours {
        return Ok(NotificationReply::Unauthorized);
    }
    // BC retries a notification it could not deliver with the same body: one poll for it.
    // Another change makes another body, and another poll (the one before may have read BC
    // before this change was visible).
    let digest = crate::digest::short_hex(body, 24);
    let msg = IngestMessage {
        integration: integration.to_string(),
        kind: DocumentKind::Payment,
        source_id: "paid-status-poll".into(),
        version: Some(digest),
        via: "notification".into(),
        document: None,
    };
    env.queue
        .send(QueueName::Ingest, vec![msg.to_outgoing()])
        .await
        .map_err(|e| StepError::new("queueing the paid-status poll", e))?;
    Ok(NotificationReply::Accepted { queued: true })
}
