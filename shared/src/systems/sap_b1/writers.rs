//! Supplier business partners written into B1 (the Coupa → B1 half of a two-way supplier
//! sync), through the one exactly-once writer: found by `CardCode` (the key: a lost create's
//! answer is found again by it), created as `cSupplier`, and on a found partner only the
//! properties that differ are PATCHed (sap-b1.md §4.8.4).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::client::{B1Client, B1Error};
use crate::ports::{Change, SystemError, Writer, Written};
use crate::systems::http::HttpError;

/// B1 commits a request before it answers (no asynchronous processing is known, §4): a create
/// whose answer was lost is either there at once or never. A short window still covers a
/// request the server was processing when the connection broke.
const PARTNER_SETTLE: Duration = Duration::from_secs(120);

/// A supplier business partner as B1 should hold it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerToWrite {
    pub card_code: String,
    pub card_name: String,
    pub federal_tax_id: Option<String>,
    /// Write only over this (name, tax id), what the partner held when the write was decided:
    /// a partner changed since (by a person) is refused, not overwritten. `None`: write over
    /// whatever it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless_changed_from: Option<(String, Option<String>)>,
}

/// A name and tax id as compared: trimmed, an empty tax id none.
fn content(name: Option<&str>, tax_id: Option<&str>) -> (String, Option<String>) {
    (
        name.unwrap_or_default().trim().to_string(),
        tax_id
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    )
}

#[derive(Clone)]
pub struct PartnerWriter {
    pub b1: B1Client,
    /// `sap_b1:{host}/{CompanyDB}`.
    pub target: String,
}

/// The duplicate-key refusals of §4.8.4, matched on their text, never on the number alone.
fn is_duplicate(message: &str) -> bool {
    message.contains("already assigned") || message.contains("-2035")
}

impl Writer for PartnerWriter {
    type Doc = PartnerToWrite;
    type Record = Value;

    fn what(&self, p: &PartnerToWrite) -> String {
        format!("the SAP B1 business partner {}", p.card_code)
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn settle_window(&self) -> Duration {
        PARTNER_SETTLE
    }

    fn id_of(&self, p: &PartnerToWrite, _record: &Value) -> String {
        p.card_code.clone()
    }

    /// The `CardCode` is both the id and the natural key.
    async fn find(
        &self,
        p: &PartnerToWrite,
        _known_id: Option<&str>,
    ) -> Result<Option<Value>, SystemError> {
        Ok(self.b1.partner(&p.card_code).await?)
    }

    async fn create(&self, p: &PartnerToWrite) -> Result<Value, SystemError> {
        let mut body = json!({
            "CardCode": p.card_code,
            "CardName": p.card_name,
            "CardType": "cSupplier",
        });
        if let Some(t) = &p.federal_tax_id {
            body["FederalTaxID"] = json!(t);
        }
        match self.b1.create_partner(&p.card_code, &body).await {
            Ok(v) => Ok(v),
            Err(e) => match SystemError::from(e) {
                // Created meanwhile (by a person, or by a create whose answer was lost): not a
                // refusal; the retry finds it and brings it in line.
                SystemError::Rejected { message, .. } if is_duplicate(&message) => {
                    Err(SystemError::Conflict(message))
                }
                other => Err(other),
            },
        }
    }

    /// A found partner that is not a supplier is never turned into one (a customer with the
    /// same code is a person's decision). Otherwise its name and tax id follow, when they
    /// differ; nothing else of it is touched.
    async fn finish(
        &self,
        p: &PartnerToWrite,
        record: Value,
        created: bool,
    ) -> Result<Written, SystemError> {
        let written = |change| Written {
            id: p.card_code.clone(),
            number: p.card_code.clone(),
            change,
        };
        if created {
            return Ok(written(Change::Created));
        }
        let card_type = record["CardType"].as_str().unwrap_or_default();
        if card_type != "cSupplier" && card_type != "S" {
            return Err(SystemError::Rejected {
                status: None,
                message: format!(
                    "B1 business partner {} is a {} (CardType {card_type}), not a supplier: \
                     not changed; give the Coupa supplier another number or make the partner \
                     a supplier in B1",
                    p.card_code,
                    match card_type {
                        "cCustomer" | "C" => "customer",
                        "cLid" | "L" => "lead",
                        _ => "partner of another type",
                    }
                ),
            });
        }
        if let Some(base) = &p.unless_changed_from {
            let now = content(record["CardName"].as_str(), record["FederalTaxID"].as_str());
            if &now != base && now != content(Some(&p.card_name), p.federal_tax_id.as_deref()) {
                return Err(SystemError::Rejected {
                    status: None,
                    message: format!(
                        "the SAP B1 business partner {} changed after this write was decided \
                         (it is now '{}'): not overwritten; decided again on the next cycle",
                        p.card_code, now.0
                    ),
                });
            }
        }
        let mut change = Map::new();
        if record["CardName"].as_str() != Some(p.card_name.as_str()) {
            change.insert("CardName".into(), json!(p.card_name));
        }
        let tax = record["FederalTaxID"]
            .as_str()
            .filter(|t| !t.trim().is_empty());
        if tax != p.federal_tax_id.as_deref() {
            change.insert("FederalTaxID".into(), json!(p.federal_tax_id));
        }
        if change.is_empty() {
            return Ok(written(Change::Unchanged));
        }
        match self
            .b1
            .patch_partner(&p.card_code, &Value::Object(change))
            .await
        {
            Ok(()) => Ok(written(Change::Updated)),
            // Deleted between the look-up and the PATCH: a retry creates it.
            Err(B1Error::Http(HttpError::Status { status: 404, .. })) => {
                Err(SystemError::Transient {
                    message: format!("B1 business partner {} vanished mid-update", p.card_code),
                    retry_after: None,
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}
