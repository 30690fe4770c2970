use reqwest::header::{ACCEPT, HeaderValue};

use super::documents::DocSet;
use super::wire::{
    Company, DimensionSetLine, ErrorBody, NewDimensionSetLine, PurchaseInvoice, Vendor,
};
use crate::ports::SecretString;
use crate::systems::http::odata::{self, Collection};
use crate::systems::http::{
    ApiClient, ApiRequest, ClientCredentials, HttpError, HttpSettings, RateBudget, TokenCache,
    TokenPersistence,
};

pub const DEFAULT_API_URL: &str = "https://api.businesscentral.dynamics.com";
/// A2: the Entra scope for Business Central's APIs.
pub const SCOPE: &str = "https://api.businesscentral.dynamics.com/.default";

#[derive(Clone, Debug)]
pub struct BcSettings {
    /// `https://api.businesscentral.dynamics.com` (or a simulator).
    pub api_url: String,
    /// Defaults to `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub token_url: Option<String>,
    pub tenant: String,
    pub environment: String,
    pub company_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Default 6,000 requests per 5 minutes and 5 concurrent (A4; product decision).
    pub budget: RateBudget,
    /// `Prefer: odata.maxpagesize` for collection reads; None leaves BC's 20,000.
    pub page_size: Option<usize>,
    pub http: HttpSettings,
    /// See `BusinessCentralConfig::look_up_on_first_create`.
    pub look_up_on_first_create: bool,
}

impl BcSettings {
    pub fn default_budget() -> RateBudget {
        RateBudget {
            requests: 6000,
            window_secs: 300,
            concurrent: Some(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BcError {
    #[error(transparent)]
    Http(#[from] HttpError),
}

impl BcError {
    /// BC's own error code and message when it answered with one (A3), for audit texts.
    pub fn bc_message(&self) -> Option<String> {
        let BcError::Http(HttpError::Status { body, .. }) = self else {
            return None;
        };
        let parsed: ErrorBody = serde_json::from_str(body).ok()?;
        // BC's words, on one line: an audit row or a terminal shows them as they are.
        Some(crate::text::one_line(
            &format!(
                "{}: {}",
                parsed.error.code.unwrap_or_default(),
                parsed.error.message.unwrap_or_default()
            ),
            500,
        ))
    }

    pub fn http(&self) -> &HttpError {
        let BcError::Http(e) = self;
        e
    }
}

impl From<BcError> for crate::ports::SystemError {
    /// As any HTTP failure, with BC's own code and message (A3) as the text of a refusal, so
    /// the parked reason says what BC said rather than a raw body.
    fn from(e: BcError) -> Self {
        use crate::ports::SystemError as S;
        let bc = e.bc_message();
        let BcError::Http(h) = e;
        match (S::from(h), bc) {
            (S::Rejected { status, .. }, Some(message)) => S::Rejected { status, message },
            (other, _) => other,
        }
    }
}

#[derive(Clone)]
pub struct BcClient {
    pub(super) api: ApiClient,
    pub(super) root: String,
    /// `{tenant}/{environment}`: with the company, which BC this client writes into.
    pub(super) place: String,
    pub(super) company: String,
    pub(super) page_size: Option<usize>,
    /// See `BusinessCentralConfig::look_up_on_first_create`.
    pub(super) look_up_on_first_create: bool,
    /// The last snapshot of accounts and dimensions ([`BcClient::master_data_cached`]).
    pub(super) master: MasterSlot,
}

/// When the last master-data snapshot was read, and the snapshot; shared by a client's clones.
pub(super) type MasterSlot = std::sync::Arc<
    tokio::sync::Mutex<
        Option<(
            std::time::Instant,
            std::sync::Arc<super::master_data::MasterData>,
        )>,
    >,
>;

impl BcClient {
    pub fn new(s: BcSettings) -> Result<Self, HttpError> {
        Self::with_token_cache(s, None)
    }

    /// As [`BcClient::new`], keeping the access token in `persistence` too (shared with later
    /// processes; the embedded runtime), or only in memory when `None`.
    pub fn with_token_cache(
        s: BcSettings,
        persistence: Option<TokenPersistence>,
    ) -> Result<Self, HttpError> {
        let api_url = s.api_url.trim_end_matches('/');
        let creds = ClientCredentials {
            token_url: s.token_url.clone().unwrap_or_else(|| {
                format!(
                    "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                    s.tenant
                )
            }),
            client_id: s.client_id.clone(),
            client_secret: s.client_secret.clone(),
            scope: SCOPE.to_string(),
        };
        let tokens = TokenCache::persisted(creds, persistence);
        let mut http = s.http.clone();
        http.budget = Some(s.budget.clone());
        let api = ApiClient::new(
            tokens,
            vec![(ACCEPT, HeaderValue::from_static("application/json"))],
            http,
        )?;
        // A1: {base}/v2.0/{tenant}/{environment}/api/v2.0
        let root = format!("{api_url}/v2.0/{}/{}/api/v2.0", s.tenant, s.environment);
        let company = format!("{root}/companies({})", s.company_id);
        Ok(Self {
            api,
            root,
            place: format!("{}/{}", s.tenant, s.environment),
            company,
            page_size: s.page_size,
            look_up_on_first_create: s.look_up_on_first_create,
            master: Default::default(),
        })
    }

    pub fn stats(&self) -> &crate::systems::http::HttpStats {
        &self.api.stats
    }

    /// The same environment and app user, another company: it shares this client's token
    /// cache, request budget and connections (BC's limits are per user, not per company), and
    /// has its own master-data snapshot.
    pub fn for_company(&self, company_id: &str) -> Self {
        Self {
            api: self.api.clone(),
            company: format!("{}/companies({company_id})", self.root),
            root: self.root.clone(),
            place: self.place.clone(),
            page_size: self.page_size,
            look_up_on_first_create: self.look_up_on_first_create,
            master: Default::default(),
        }
    }

    /// Whether `other` spends the same token cache and request budget.
    pub fn shares_budget_with(&self, other: &Self) -> bool {
        self.api.shares_with(&other.api)
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.company)
    }

    /// Which BC company this client writes into, for the ledger:
    /// `business_central:{tenant}/{environment}/{company id}`.
    pub fn target_identity(&self) -> String {
        format!("business_central:{}/{}", self.place, self.company_id())
    }

    /// The company's id, as configured (for subscription resources).
    pub fn company_id(&self) -> &str {
        self.company
            .rsplit('(')
            .next()
            .unwrap_or_default()
            .trim_end_matches(')')
    }

    /// GET one entity; `None` on 404 (BC no longer has it).
    pub(super) async fn get_opt<T: serde::de::DeserializeOwned>(
        &self,
        url: String,
    ) -> Result<Option<T>, BcError> {
        match self.api.send(&ApiRequest::get(url)).await {
            Ok(resp) => Ok(Some(resp.json()?)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Authenticates and makes one cheap read (`mlc check`): the configured company must exist.
    pub async fn check(&self) -> Result<String, BcError> {
        self.api.authenticate().await?;
        let companies: Vec<Company> =
            odata::get_all(&self.api, &format!("{}/companies", self.root), None).await?;
        let wanted = self.company_id();
        if wanted.is_empty() {
            // No default company: each integration names its own.
            return Ok(format!(
                "token ok; {} companies in this environment",
                companies.len()
            ));
        }
        match companies.iter().find(|c| c.id.eq_ignore_ascii_case(wanted)) {
            Some(c) => Ok(format!(
                "token ok; company '{}' found",
                c.name.as_deref().unwrap_or(&c.id)
            )),
            None => Err(BcError::Http(HttpError::Decode {
                url: format!("{}/companies", self.root),
                message: format!(
                    "company {wanted} is not in this environment (it has: {})",
                    companies
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })),
        }
    }

    pub async fn vendor_by_number(&self, number: &str) -> Result<Option<Vendor>, BcError> {
        let url = odata::with_filter(
            &self.url("vendors"),
            &format!("number eq {}", odata::string_literal(number)),
        );
        let mut found: Vec<Vendor> = odata::get_all(&self.api, &url, self.page_size).await?;
        Ok(found.pop())
    }

    /// Purchase invoices (drafts and posted) of a vendor with this vendor invoice number: the
    /// natural key checked before any create.
    pub async fn purchase_invoices_by_vendor_invoice_number(
        &self,
        vendor_number: &str,
        vendor_invoice_number: &str,
    ) -> Result<Vec<PurchaseInvoice>, BcError> {
        self.documents_by_natural_key(DocSet::Invoice, vendor_number, vendor_invoice_number)
            .await
    }

    /// Changes writable fields of a draft; `etag` is the `@odata.etag` it was read with (a stale
    /// one fails with 409 `Request_EntityChanged`: re-read and decide again).
    pub async fn update_purchase_invoice(
        &self,
        id: &str,
        etag: &str,
        changes: &serde_json::Value,
    ) -> Result<PurchaseInvoice, BcError> {
        let url = self.url(&format!("purchaseInvoices({id})"));
        Ok(self
            .api
            .send(&ApiRequest::patch_json(url, changes, etag))
            .await?
            .json()?)
    }

    /// The dimension set lines of a document line; `line_set` is its entity set
    /// (`purchaseInvoiceLines`, `purchaseOrderLines`, …).
    pub(super) async fn line_dimensions_in(
        &self,
        line_set: &str,
        line_id: &str,
    ) -> Result<Vec<DimensionSetLine>, BcError> {
        let url = self.url(&format!("{line_set}({line_id})/dimensionSetLines"));
        let page: Collection<DimensionSetLine> =
            self.api.send(&ApiRequest::get(url)).await?.json()?;
        Ok(page.value)
    }

    /// Adds a line's value of one dimension, by codes (A6.6).
    pub(super) async fn add_line_dimension_in(
        &self,
        line_set: &str,
        line_id: &str,
        code: &str,
        value_code: &str,
    ) -> Result<(), BcError> {
        let url = self.url(&format!("{line_set}({line_id})/dimensionSetLines"));
        let body = NewDimensionSetLine {
            code: code.into(),
            value_code: value_code.into(),
        };
        self.api.send(&ApiRequest::post_json(url, &body)).await?;
        Ok(())
    }
}
