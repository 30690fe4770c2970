//! Webhook subscriptions (A8): `{root}/subscriptions`, not company-scoped, keyed by a quoted
//! string, three days to live unless renewed; creating and renewing both make BC call the
//! notification URL with a validation token first.

use std::time::Duration;

use super::client::{BcClient, BcError};
use super::wire::{NewSubscription, Subscription};
use crate::systems::http::ApiRequest;
use crate::systems::http::odata;

/// A8: a subscription expires three days after it was created or last renewed.
pub const SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600);

impl BcClient {
    /// The resource path BC expects for an entity set of the configured company, e.g.
    /// `/api/v2.0/companies(<id>)/purchaseInvoices`.
    pub fn subscription_resource(&self, entity_set: &str) -> String {
        format!("/api/v2.0/companies({})/{entity_set}", self.company_id())
    }

    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, BcError> {
        let url = format!("{}/subscriptions", self.root);
        Ok(odata::get_all(&self.api, &url, None).await?)
    }

    pub async fn create_subscription(&self, s: &NewSubscription) -> Result<Subscription, BcError> {
        let url = format!("{}/subscriptions", self.root);
        Ok(self
            .api
            .send(&ApiRequest::post_json(url, s))
            .await?
            .json()?)
    }

    /// Renews for another three days (PATCH with If-Match; BC runs the handshake again).
    pub async fn renew_subscription(
        &self,
        id: &str,
        etag: &str,
        s: &NewSubscription,
    ) -> Result<Subscription, BcError> {
        Ok(self
            .api
            .send(&ApiRequest::patch_json(self.subscription_url(id), s, etag))
            .await?
            .json()?)
    }

    pub async fn delete_subscription(&self, id: &str, etag: &str) -> Result<(), BcError> {
        self.delete(self.subscription_url(id), etag).await
    }

    /// Gotcha 10: the key is a quoted string, `subscriptions('<id>')`.
    fn subscription_url(&self, id: &str) -> String {
        format!("{}/subscriptions({})", self.root, odata::string_literal(id))
    }
}
