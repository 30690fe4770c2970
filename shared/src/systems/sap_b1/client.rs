//! The B1 Service Layer client: a thin layer over [`ApiClient`] with the session-cookie flavour
//! ([`SessionAuth`]: `Login`, the `B1SESSION` / `ROUTEID` cookies, re-login before the sliding
//! timeout and on expiry with one replay, `Logout`), relative next links, both page-size
//! headers' standard one, and both error shapes mapped to [`SystemError`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::wire::{self, Collection, ErrorBody};
use crate::ports::{SecretString, SystemError};
use crate::systems::http::{
    ApiClient, ApiRequest, HttpError, HttpSettings, HttpStats, SessionAuth, SessionLogin,
};

/// The entity sets this client reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntitySet {
    PurchaseOrders,
    PurchaseInvoices,
    BusinessPartners,
    VendorPayments,
}

impl EntitySet {
    pub fn name(self) -> &'static str {
        match self {
            EntitySet::PurchaseOrders => "PurchaseOrders",
            EntitySet::PurchaseInvoices => "PurchaseInvoices",
            EntitySet::BusinessPartners => "BusinessPartners",
            EntitySet::VendorPayments => "VendorPayments",
        }
    }

    /// The key of one entity in a URL: `PurchaseOrders(12)`, `BusinessPartners('V10000')`.
    fn key(self, id: &str) -> Result<String, B1Error> {
        match self {
            EntitySet::BusinessPartners => Ok(format!(
                "'{}'",
                utf8_percent_encode(&id.replace('\'', "''"), NON_ALPHANUMERIC)
            )),
            _ => id
                .parse::<i64>()
                .map(|n| n.to_string())
                .map_err(|_| B1Error::BadId {
                    set: self.name(),
                    id: id.to_string(),
                }),
        }
    }
}

#[derive(Clone, Debug)]
pub struct B1Settings {
    /// The customer's own Service Layer root with its port, e.g.
    /// `https://b1.example.com:50000/b1s/v2` (v2 is the primary protocol since FP 2405,
    /// sap-b1.md §4.8.1; a root ending in `/v1` speaks v1).
    pub service_root: String,
    pub company_db: String,
    pub user_name: String,
    pub password: SecretString,
    /// The `error.code`s of a 401 that mean "session expired" (301 always; -5002 by default,
    /// the product decision in apis/README.md; only ever with HTTP 401).
    pub expiry_codes: Vec<i64>,
    /// `Prefer: odata.maxpagesize=N`.
    pub page_size: u32,
    /// B1 currency codes that are not ISO codes (`$`) → ISO code (`USD`).
    pub currencies: BTreeMap<String, String>,
    pub http: HttpSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum B1Error {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("'{id}' is not a key of B1 {set}")]
    BadId { set: &'static str, id: String },
    #[error("B1 {what} cannot be read: {message}")]
    Malformed { what: String, message: String },
}

impl From<B1Error> for SystemError {
    /// A B1 error body says more than the status: its message (either shape) is what a person
    /// reads on the parked document. Session expiry never gets here (the client re-logs in and
    /// replays once); a refused login is `Unauthorized` through the generic mapping.
    fn from(e: B1Error) -> Self {
        match e {
            B1Error::Http(HttpError::Status {
                status, ref body, ..
            }) if (400..500).contains(&status) && status != 408 && status != 429 => {
                let detail =
                    serde_json::from_str::<ErrorBody>(body)
                        .ok()
                        .map(|b| match b.error.code() {
                            Some(code) => format!("B1 error {code}: {}", b.error.message()),
                            None => format!("B1 error: {}", b.error.message()),
                        });
                let message = detail.unwrap_or_else(|| e.to_string());
                match status {
                    404 => SystemError::NotFound(message),
                    401 => SystemError::Transient {
                        message,
                        retry_after: None,
                    },
                    403 => SystemError::Unauthorized(message),
                    409 | 412 => SystemError::Conflict(message),
                    _ => SystemError::Rejected {
                        status: Some(status),
                        message,
                    },
                }
            }
            B1Error::Http(h) => h.into(),
            e @ B1Error::BadId { .. } => SystemError::Rejected {
                status: None,
                message: e.to_string(),
            },
            e @ B1Error::Malformed { .. } => SystemError::Malformed(e.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct B1Client {
    api: ApiClient,
    session: Arc<SessionAuth>,
    root: String,
    v1: bool,
    currencies: Arc<BTreeMap<String, String>>,
}

impl B1Client {
    pub fn new(s: B1Settings) -> Result<Self, HttpError> {
        let root = s.service_root.trim_end_matches('/').to_string();
        // The customer's own host and port, and the protocol root: nothing is assumed.
        if !(root.starts_with("https://") || root.starts_with("http://"))
            || !(root.ends_with("/b1s/v1") || root.ends_with("/b1s/v2"))
        {
            return Err(HttpError::Decode {
                url: root,
                message: "service_root must be the Service Layer root with its host and port, \
                          e.g. https://b1.example.com:50000/b1s/v2"
                    .into(),
            });
        }
        let session = Arc::new(SessionAuth::new(SessionLogin {
            service_root: root.clone(),
            company_db: s.company_db,
            user_name: s.user_name,
            password: s.password,
            expiry_codes: s.expiry_codes,
        }));
        let prefer = HeaderValue::from_str(&format!("odata.maxpagesize={}", s.page_size.max(1)))
            .expect("ascii");
        let headers = vec![
            (ACCEPT, HeaderValue::from_static("application/json")),
            (HeaderName::from_static("prefer"), prefer),
        ];
        Ok(Self {
            api: ApiClient::with_auth(session.clone(), headers, s.http)?,
            session,
            v1: root.ends_with("/v1"),
            root,
            currencies: Arc::new(s.currencies),
        })
    }

    pub fn stats(&self) -> &HttpStats {
        &self.api.stats
    }

    /// Logins so far (sessions are licence-bound: this should stay near one per worker).
    pub fn logins(&self) -> u64 {
        self.session.logins()
    }

    /// Which company this client reads, for the audit trail: `sap_b1:{host}/{CompanyDB}`.
    pub fn identity(&self, company_db: &str) -> String {
        let host = self
            .root
            .split_once("://")
            .map_or(self.root.as_str(), |(_, r)| r);
        format!(
            "sap_b1:{}/{company_db}",
            host.split('/').next().unwrap_or(host)
        )
    }

    /// The ISO code of a B1 currency code (mapped when configured, else taken as it is).
    pub fn iso_currency(&self, b1: &str) -> String {
        self.currencies
            .get(b1)
            .cloned()
            .unwrap_or_else(|| b1.to_string())
    }

    /// Logs out (frees the licence now rather than at the timeout); call on shutdown.
    pub async fn logout(&self) -> Result<(), B1Error> {
        Ok(self.api.logout().await?)
    }

    /// Logs in and reads one purchase order (`mlc check`).
    pub async fn check(&self) -> Result<String, B1Error> {
        self.api.authenticate().await?;
        let page = self
            .get_collection("/PurchaseOrders?$top=1&$orderby=DocEntry".into())
            .await?;
        Ok(format!(
            "login ok; GET PurchaseOrders?$top=1 returned {} document(s)",
            page.value.len()
        ))
    }

    /// A filter literal for an enum value: qualified on v2, quoted on v1 (§4.8.4).
    fn card_type_filter(&self) -> String {
        if self.v1 {
            "CardType eq 'cSupplier'".into()
        } else {
            "CardType eq SAPB1.BoCardTypes'cSupplier'".into()
        }
    }

    /// One page of `set` changed on or after `since` (day-granular `UpdateDate`, §4.4), in key
    /// order; `cursor` is the previous page's relative next link. The server pages by `$skip`,
    /// which loses rows only when rows LEAVE the filtered set mid-read; `UpdateDate` only grows,
    /// so a document never leaves `UpdateDate ge <day>`: one that enters it mid-read shifts the
    /// later rows by one (a row seen twice, absorbed by the ledger), never skips one. (A partner
    /// turned from supplier to customer mid-read could shift one back: the next poll, whose day
    /// overlaps, lists it again.)
    pub async fn changed_page(
        &self,
        set: EntitySet,
        since: NaiveDate,
        cursor: Option<&str>,
    ) -> Result<Collection, B1Error> {
        let url = match cursor {
            Some(link) => relative_url(link),
            None => {
                let day = since.format("%Y-%m-%d");
                // §4.8.6: payments have no UpdateDate; they are read by their own date.
                let mut filter = match set {
                    EntitySet::VendorPayments => format!("DocDate ge '{day}'"),
                    _ => format!("UpdateDate ge '{day}'"),
                };
                let order = match set {
                    EntitySet::BusinessPartners => {
                        filter = format!("{} and {filter}", self.card_type_filter());
                        "CardCode"
                    }
                    _ => "DocEntry",
                };
                format!(
                    "/{}?$filter={}&$orderby={order}",
                    set.name(),
                    utf8_percent_encode(&filter, NON_ALPHANUMERIC)
                )
            }
        };
        self.get_collection(url).await
    }

    async fn get_collection(&self, url: String) -> Result<Collection, B1Error> {
        let resp = self.api.send(&ApiRequest::get(url)).await?;
        Ok(resp.json()?)
    }

    /// One entity as JSON.
    pub async fn entity(&self, set: EntitySet, id: &str) -> Result<Value, B1Error> {
        let url = format!("/{}({})", set.name(), set.key(id)?);
        let resp = self.api.send(&ApiRequest::get(url)).await?;
        Ok(resp.json()?)
    }

    /// A business partner as JSON, or `None` when B1 has no partner with this `CardCode`.
    pub async fn partner(&self, card_code: &str) -> Result<Option<Value>, B1Error> {
        match self.entity(EntitySet::BusinessPartners, card_code).await {
            Ok(v) => Ok(Some(v)),
            Err(B1Error::Http(HttpError::Status { status: 404, .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST BusinessPartners` (§4.8.4): 201 with the entity (200 accepted too); a 204 (a
    /// server set to `return-no-content`) is answered by reading the partner back.
    pub async fn create_partner(&self, card_code: &str, body: &Value) -> Result<Value, B1Error> {
        let resp = self
            .api
            .send(&ApiRequest::post_json("/BusinessPartners", body))
            .await?;
        if resp.status.as_u16() == 204 || resp.body.is_empty() {
            return self
                .partner(card_code)
                .await?
                .ok_or_else(|| B1Error::Malformed {
                    what: format!("business partner {card_code}"),
                    message: "created (204) but not found when read back".into(),
                });
        }
        Ok(resp.json()?)
    }

    /// `PATCH BusinessPartners('code')` with only the properties to change (204, §4.8.4).
    /// Safe to repeat: it sets values, so a second landing changes nothing more.
    pub async fn patch_partner(&self, card_code: &str, body: &Value) -> Result<(), B1Error> {
        let url = format!(
            "/BusinessPartners({})",
            EntitySet::BusinessPartners.key(card_code)?
        );
        let req = ApiRequest {
            method: reqwest::Method::PATCH,
            url,
            headers: Vec::new(),
            json: Some(serde_json::to_vec(body).expect("JSON serializes")),
            idempotent: true,
        };
        self.api.send(&req).await?;
        Ok(())
    }

    /// A purchase order's `DocNum` (an invoice line names its base PO by `DocEntry`).
    pub async fn purchase_order_number(&self, doc_entry: i64) -> Result<i64, B1Error> {
        let url = format!("/PurchaseOrders({doc_entry})?$select=DocEntry,DocNum");
        let resp = self.api.send(&ApiRequest::get(url)).await?;
        let doc: wire::Document = resp.json()?;
        doc.doc_num.ok_or_else(|| B1Error::Malformed {
            what: format!("purchase order {doc_entry}"),
            message: "no DocNum".into(),
        })
    }
}

/// A next link as a request URL under the service root. B1 writes it unencoded (`Set?$filter=
/// UpdateDate ge '2026-07-01'&$skip=20`, §4.4); each value is decoded (in case a version does
/// encode it) and encoded again, so both forms give the same request.
fn relative_url(link: &str) -> String {
    // A link with a path (`/b1s/v2/Set?…`) or a full URL: keep what follows the service root.
    let link = ["/b1s/v1/", "/b1s/v2/"]
        .iter()
        .find_map(|root| link.split_once(root).map(|(_, rest)| rest))
        .unwrap_or(link)
        .trim_start_matches('/');
    let (path, query) = link.split_once('?').unwrap_or((link, ""));
    let query: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode_str(v).decode_utf8_lossy();
            format!("{k}={}", utf8_percent_encode(&v, NON_ALPHANUMERIC))
        })
        .collect();
    if query.is_empty() {
        format!("/{path}")
    } else {
        format!("/{path}?{}", query.join("&"))
    }
}

/// The version of an entity as the pipeline keys it: its `UpdateDate` and `UpdateTime`, with a
/// digest of its whole content in the sub-second part.
///
/// Why the digest: B1's change stamp is day-granular and its `UpdateTime` is unreliable
/// (sap-b1.md §4.8.7; the simulator by default leaves it unchanged by a second change on the
/// same day). Two real changes must not share a version, or the queue's dedup would drop the
/// second one; the same content seen by overlapping polls must share one, so it is sent once.
/// A content digest gives exactly that, and the date and time in front keep it readable.
pub fn version_of(raw: &Value, date: Option<NaiveDate>, time: Option<NaiveTime>) -> DateTime<Utc> {
    // serde_json's map is ordered by key here (no `preserve_order`), so equal content gives
    // equal bytes.
    let digest = Sha256::digest(raw.to_string().as_bytes());
    let nanos = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000_000;
    let base = date
        .unwrap_or_default()
        .and_time(time.unwrap_or_default())
        .and_utc();
    base + chrono::Duration::nanoseconds(i64::from(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_or_encoded_next_link_gives_the_same_request() {
        let raw = relative_url("PurchaseOrders?$filter=UpdateDate ge '2026-07-01'&$skip=20");
        let encoded =
            relative_url("PurchaseOrders?$filter=UpdateDate%20ge%20%272026-07-01%27&$skip=20");
        let with_root =
            relative_url("/b1s/v2/PurchaseOrders?$filter=UpdateDate ge '2026-07-01'&$skip=20");
        assert_eq!(
            raw,
            "/PurchaseOrders?$filter=UpdateDate%20ge%20%272026%2D07%2D01%27&$skip=20"
        );
        assert_eq!(raw, encoded);
        assert_eq!(raw, with_root);
    }

    #[test]
    fn the_version_moves_with_content_not_with_a_second_look() {
        let d = NaiveDate::from_ymd_opt(2026, 7, 1);
        let t = NaiveTime::from_hms_opt(9, 0, 0);
        let a = serde_json::json!({"DocEntry": 1, "Quantity": 2});
        let b = serde_json::json!({"DocEntry": 1, "Quantity": 3});
        assert_eq!(version_of(&a, d, t), version_of(&a.clone(), d, t));
        assert_ne!(version_of(&a, d, t), version_of(&b, d, t));
        assert_eq!(
            version_of(&a, d, t).format("%Y-%m-%d %H:%M:%S").to_string(),
            "2026-07-01 09:00:00"
        );
    }
}
