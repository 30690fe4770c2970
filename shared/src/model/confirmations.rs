//! Confirmations back to a source: what happened to one of its documents in the target.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Company, Money};

/// What the connector reports back to the source about one of its documents: Concur posting
/// and payment confirmations, Basware transfer and payment responses, the Coupa paid status,
/// F&O posted / paid status. Built by the flow from the target's answer; the source's writer
/// turns it into the source's call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The source's id of the document confirmed (Concur `docId`, Basware `invoiceId`, Coupa
    /// invoice id).
    pub source_id: String,
    /// The source's document number, for messages and the audit trail.
    #[serde(default)]
    pub source_document_number: Option<String>,
    /// The target company the document was posted in (Concur `postingDocs[].companyId`).
    #[serde(default)]
    pub company: Option<Company>,
    pub outcome: ConfirmationOutcome,
}

/// The outcome confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ConfirmationOutcome {
    /// Posted in the target under `target_number` (Concur posting confirmation `success`,
    /// Basware transfer response `success: true` with `voucherNumber1`).
    Posted {
        /// The target's document number (BC posted invoice `number`, F&O voucher).
        target_number: String,
        /// The target's id of the document, when it has one besides the number.
        #[serde(default)]
        target_id: Option<String>,
        #[serde(default)]
        posting_date: Option<NaiveDate>,
    },
    /// Could not be posted (Concur `error`, Basware `success: false`); `reason` is what finance
    /// reads in the source.
    Failed { reason: String },
    /// Paid in the target (Concur payment confirmation, Basware payment response, Coupa
    /// payment).
    Paid {
        amount: Money,
        date: NaiveDate,
        /// Unique per payment in the paying system, so a repeat is seen before it is sent
        /// again (Concur `paymentRef`, Basware `externalCode` / `paymentNumber`).
        reference: String,
    },
}
