//! BC vendors → SAP Concur invoice vendors (`[systems.<concur>.vendors]`, Invoice Vendor API
//! v3.1, concur.md §2.7.5), keyed by the BC vendor number (`VendorCode`) and the configured
//! `AddressCode`. Only real changes are sent: a digest of each record as Concur last accepted it
//! is kept per vendor, and an unchanged vendor is not sent again.
//!
//! No upsert is documented (§2.7.5 [U]): each changed vendor is looked up (`GET` exact), then
//! created (`POST`) or updated (`PUT`), and every record's `StatusList` is read. Why not
//! `write_once`: `(VendorCode, AddressCode)` is unique in Concur, so a create whose answer was
//! lost cannot make a second vendor; the next cycle finds it and updates it.

use sha2::{Digest, Sha256};

use crate::config::ConcurVendorExport;
use crate::ports::{AuditStatus, Clock, Queue, Step, Store};
use crate::steps::{Env, StepError, audit_item};
use crate::systems::business_central::BcClient;
use crate::systems::concur::ConcurClient;
use crate::systems::concur::wire::InvoiceVendor;

fn sent_table(integration: &str) -> String {
    format!("{integration}/concur_vendor_sent")
}

fn trimmed(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// What one cycle did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VendorReport {
    pub sent: u32,
    pub unchanged: u32,
    pub refused: u32,
}

pub(super) async fn sync<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    concur: &ConcurClient,
    bc: &BcClient,
    integration: &str,
    cfg: &ConcurVendorExport,
) -> Result<VendorReport, StepError> {
    let md = bc
        .master_records()
        .await
        .map_err(|e| StepError::system("reading BC vendors", e))?;
    let table = sent_table(integration);
    let mut report = VendorReport::default();
    for v in &md.vendors {
        let Some(number) = trimmed(&v.number) else {
            continue;
        };
        let record = InvoiceVendor {
            vendor_code: number.chars().take(32).collect(),
            address_code: cfg.address_code.clone(),
            vendor_name: trimmed(&v.display_name).map(|n| n.chars().take(255).collect()),
            address1: trimmed(&v.address_line1),
            city: trimmed(&v.city),
            state: trimmed(&v.state),
            postal_code: trimmed(&v.postal_code),
            country_code: trimmed(&v.country)
                .unwrap_or_else(|| cfg.default_country.clone())
                .to_uppercase(),
            currency_code: trimmed(&v.currency_code)
                .unwrap_or_else(|| cfg.local_currency.clone())
                .to_uppercase(),
            // A vendor blocked in BC is not approved for payment requests in Concur.
            approved: Some(
                if matches!(v.blocked.as_deref().map(str::trim), Some("All" | "Payment")) {
                    "N"
                } else {
                    "Y"
                }
                .into(),
            ),
            status_list: Vec::new(),
        };
        let digest = hex::encode(Sha256::digest(
            serde_json::to_vec(&record).expect("JSON serializes"),
        ));
        let sent = env
            .store
            .mapping(&table, &record.vendor_code)
            .await
            .map_err(|e| StepError::new("reading the vendor digests", e))?;
        if sent.as_deref() == Some(digest.as_str()) {
            report.unchanged += 1;
            continue;
        }
        let exists = concur
            .invoice_vendor(&record.vendor_code, &record.address_code)
            .await
            .map_err(|e| StepError::system("looking up a Concur invoice vendor", e))?
            .is_some();
        let outcome = concur
            .send_invoice_vendor(&record, !exists)
            .await
            .map_err(|e| StepError::system("sending a Concur invoice vendor", e))?;
        match outcome {
            Ok(()) => {
                env.store
                    .put_mapping(&table, &record.vendor_code, &digest)
                    .await
                    .map_err(|e| StepError::new("recording the vendor digest", e))?;
                report.sent += 1;
            }
            Err(why) => {
                report.refused += 1;
                let mut item = audit_item(
                    env.clock.now(),
                    integration,
                    "vendor",
                    &record.vendor_code,
                    Step::Post,
                    AuditStatus::Rejected,
                )
                .with_error(format!(
                    "Concur refused invoice vendor {}: {why}",
                    record.vendor_code
                ));
                item.vendor = record.vendor_name.clone();
                env.store
                    .append_audit_once(
                        &item,
                        &crate::steps::once_key(&[
                            "concur-vendor",
                            integration,
                            &record.vendor_code,
                            &digest,
                        ]),
                    )
                    .await
                    .map_err(|e| StepError::new("writing the audit trail", e))?;
            }
        }
    }
    Ok(report)
}
