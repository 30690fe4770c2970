//! Vendors (`VendorsV2`, B4.4) behind the writer port: one vendor account per legal entity
//! (vendors are company-specific), found by its account number, created when missing, its name
//! kept in step with an entity tag (a vendor someone changed since it was read is read again,
//! never overwritten blindly).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{FoClient, FoError, Key};
use super::invoices::VENDORS;
use super::wire::{NewVendor, Vendor};
use super::writers::CREATE_SETTLE;
use crate::ports::{Change, SystemError, Writer, Written};

/// A source supplier as one F&O vendor in one legal entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoVendor {
    pub supplier_source_id: String,
    /// The value the supplier mapping is keyed by.
    pub mapping_key: String,
    pub legal_entity: String,
    /// `VendorAccountNumber`: given, never left to a number sequence, so a create whose answer
    /// was lost is found again by it.
    pub account: String,
    pub name: String,
}

/// Vendors of one legal entity: built per document, as the invoice writer is, so the ledger
/// records which legal entity a vendor was written into.
#[derive(Clone)]
pub struct VendorWriter {
    pub fo: FoClient,
    pub legal_entity: String,
}

impl VendorWriter {
    pub fn new(fo: FoClient, legal_entity: &str) -> Self {
        Self {
            fo,
            legal_entity: legal_entity.to_lowercase(),
        }
    }
}

fn refused(what: &str, e: FoError) -> SystemError {
    match SystemError::from(e) {
        SystemError::Rejected { status, message } => SystemError::Rejected {
            status,
            message: format!("F&O refused {what}: {message}"),
        },
        other => other,
    }
}

impl FoClient {
    /// Changes a vendor's name; `etag` is the one it was read with (a stale one: 412, a
    /// conflict to read again).
    pub async fn rename_vendor(
        &self,
        company: &str,
        account: &str,
        name: &str,
        etag: Option<&str>,
    ) -> Result<(), FoError> {
        self.update(
            VENDORS,
            &[
                ("dataAreaId", Key::Str(company)),
                ("VendorAccountNumber", Key::Str(account)),
            ],
            &serde_json::json!({ "VendorOrganizationName": name }),
            etag,
        )
        .await
    }
}

impl Writer for VendorWriter {
    type Doc = FoVendor;
    type Record = Vendor;

    fn what(&self, v: &FoVendor) -> String {
        format!(
            "the F&O vendor {} in legal entity {}",
            v.account,
            v.legal_entity.to_uppercase()
        )
    }

    fn target(&self) -> String {
        self.fo.target_identity(&self.legal_entity)
    }

    fn settle_window(&self) -> Duration {
        CREATE_SETTLE
    }

    fn id_of(&self, v: &FoVendor, _record: &Vendor) -> String {
        format!("{}/{}", v.legal_entity, v.account)
    }

    async fn find(
        &self,
        v: &FoVendor,
        _known_id: Option<&str>,
    ) -> Result<Option<Vendor>, SystemError> {
        Ok(self.fo.vendor(&self.legal_entity, &v.account).await?)
    }

    async fn create(&self, v: &FoVendor) -> Result<Vendor, SystemError> {
        let body = NewVendor {
            data_area_id: self.legal_entity.clone(),
            vendor_account_number: v.account.clone(),
            name: v.name.clone(),
            party_type: "Organization".into(),
        };
        self.fo
            .create(VENDORS, &body)
            .await
            .map_err(|e| refused(&self.what(v), e))
    }

    async fn finish(
        &self,
        v: &FoVendor,
        record: Vendor,
        created: bool,
    ) -> Result<Written, SystemError> {
        let written = |change| Written {
            id: format!("{}/{}", v.legal_entity, v.account),
            number: v.account.clone(),
            change,
        };
        if created || record.name == v.name {
            return Ok(written(if created {
                Change::Created
            } else {
                Change::Unchanged
            }));
        }
        self.fo
            .rename_vendor(
                &self.legal_entity,
                &v.account,
                &v.name,
                record.etag.as_deref(),
            )
            .await
            .map_err(|e| refused(&self.what(v), e))?;
        Ok(written(Change::Updated))
    }
}
