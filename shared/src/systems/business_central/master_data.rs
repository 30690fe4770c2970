//! Vendors (read and create) and the read-only chart of accounts and dimensions (A6.1, A6.5,
//! A6.6), which the map step checks a document's coding against before anything is posted.

use std::collections::{BTreeMap, BTreeSet};

use super::client::{BcClient, BcError};
use super::wire::{Account, Dimension, DimensionValue, NewVendor, Vendor};
use crate::systems::http::ApiRequest;
use crate::systems::http::odata;

/// What BC accepts on a posted G/L line: accounts of type Posting that are not blocked, and
/// the dimension values that exist. Codes are upper-case in BC (AL Code fields).
#[derive(Clone, Debug, Default)]
pub struct MasterData {
    /// G/L account number → why it cannot take a line (`None`: it can).
    pub accounts: BTreeMap<String, Option<String>>,
    /// Dimension code → its value codes.
    pub dimensions: BTreeMap<String, BTreeSet<String>>,
}

impl MasterData {
    /// `Err` names the exact missing or unusable value.
    pub fn check_account(&self, number: &str) -> Result<(), String> {
        match self.accounts.get(&number.to_uppercase()) {
            None => Err(format!(
                "G/L account '{number}' does not exist in Business Central"
            )),
            Some(Some(why)) => Err(format!("G/L account '{number}' {why}")),
            Some(None) => Ok(()),
        }
    }

    pub fn check_dimension(&self, code: &str, value: &str) -> Result<(), String> {
        match self.dimensions.get(&code.to_uppercase()) {
            None => Err(format!(
                "dimension '{code}' does not exist in Business Central"
            )),
            Some(values) if !values.contains(&value.to_uppercase()) => Err(format!(
                "dimension {code} has no value '{value}' in Business Central"
            )),
            Some(_) => Ok(()),
        }
    }
}

/// BC's master data as records, for a source that imports it (Basware's coding lists):
/// vendors, posting accounts, and dimension values with their dimension's code.
#[derive(Clone, Debug, Default)]
pub struct MasterRecords {
    pub vendors: Vec<Vendor>,
    /// Posting accounts that are not blocked.
    pub accounts: Vec<Account>,
    /// (dimension code, value).
    pub dimension_values: Vec<(String, DimensionValue)>,
}

impl BcClient {
    /// Every vendor, posting account and dimension value (four reads, paged).
    pub async fn master_records(&self) -> Result<MasterRecords, BcError> {
        let vendors: Vec<Vendor> =
            odata::get_all(&self.api, &self.url("vendors"), self.page_size).await?;
        let accounts: Vec<Account> =
            odata::get_all(&self.api, &self.url("accounts"), self.page_size).await?;
        let dims: Vec<Dimension> =
            odata::get_all(&self.api, &self.url("dimensions"), self.page_size).await?;
        let values: Vec<DimensionValue> =
            odata::get_all(&self.api, &self.url("dimensionValues"), self.page_size).await?;
        let code_of: BTreeMap<String, String> = dims
            .iter()
            .filter_map(|d| Some((d.id.to_lowercase(), d.code.clone()?.to_uppercase())))
            .collect();
        Ok(MasterRecords {
            vendors,
            accounts: accounts
                .into_iter()
                .filter(|a| a.blocked != Some(true))
                .filter(|a| matches!(a.account_type.as_deref(), Some("Posting") | None))
                .collect(),
            dimension_values: values
                .into_iter()
                .filter_map(|v| {
                    let dim = code_of.get(&v.dimension_id.as_deref()?.to_lowercase())?;
                    Some((dim.clone(), v))
                })
                .collect(),
        })
    }

    pub async fn vendor_by_tax_id(&self, tax_id: &str) -> Result<Vec<Vendor>, BcError> {
        let url = odata::with_filter(
            &self.url("vendors"),
            &format!("taxRegistrationNumber eq {}", odata::string_literal(tax_id)),
        );
        Ok(odata::get_all(&self.api, &url, self.page_size).await?)
    }

    pub async fn create_vendor(&self, v: &NewVendor) -> Result<Vendor, BcError> {
        let resp = self
            .api
            .send(&ApiRequest::post_json(self.url("vendors"), v))
            .await?;
        Ok(resp.json()?)
    }

    /// [`BcClient::master_data`], read again only when the snapshot is older than `max_age`.
    /// Shared by every clone of this client.
    pub async fn master_data_cached(
        &self,
        max_age: std::time::Duration,
    ) -> Result<std::sync::Arc<MasterData>, BcError> {
        let mut slot = self.master.lock().await;
        if let Some((at, md)) = slot.as_ref()
            && at.elapsed() < max_age
        {
            return Ok(md.clone());
        }
        let md = std::sync::Arc::new(self.master_data().await?);
        *slot = Some((std::time::Instant::now(), md.clone()));
        Ok(md)
    }

    /// Accounts, dimensions and their values: three to four reads however large the chart.
    pub async fn master_data(&self) -> Result<MasterData, BcError> {
        let accounts: Vec<Account> =
            odata::get_all(&self.api, &self.url("accounts"), self.page_size).await?;
        let dims: Vec<Dimension> =
            odata::get_all(&self.api, &self.url("dimensions"), self.page_size).await?;
        let values: Vec<DimensionValue> =
            odata::get_all(&self.api, &self.url("dimensionValues"), self.page_size).await?;
        let mut md = MasterData::default();
        for a in accounts {
            let Some(number) = a.number else { continue };
            let why = if a.blocked == Some(true) {
                Some("is blocked in Business Central".to_string())
            } else {
                match a.account_type.as_deref() {
                    Some("Posting") | None => None,
                    Some(t) => Some(format!(
                        "is a {t} account in Business Central, not a Posting account"
                    )),
                }
            };
            md.accounts.insert(number.to_uppercase(), why);
        }
        let code_of: BTreeMap<String, String> = dims
            .iter()
            .filter_map(|d| Some((d.id.to_lowercase(), d.code.clone()?.to_uppercase())))
            .collect();
        for code in code_of.values() {
            md.dimensions.entry(code.clone()).or_default();
        }
        for v in values {
            let (Some(dim), Some(code)) = (v.dimension_id, v.code) else {
                continue;
            };
            if let Some(dim_code) = code_of.get(&dim.to_lowercase()) {
                md.dimensions
                    .entry(dim_code.clone())
                    .or_default()
                    .insert(code.to_uppercase());
            }
        }
        Ok(md)
    }
}
