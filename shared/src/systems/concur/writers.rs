//! SAP Concur behind the writer port: the posting confirmation of a document, exactly once.
//! FIS has no idempotency key, but a document's status tells whether it was confirmed
//! (`POSTING_CONFIRMED_SUCCESS` / `_FAILURE`, §2.3), so a confirmation whose answer was lost is
//! found before another is sent; a repeat that gets through anyway answers 113, success.

use std::time::Duration;

use chrono::{Datelike, NaiveDate};

use super::ConcurClient;
use super::wire::{
    ClearingDetail, ClearingReference, PaymentConfirmation, PostingConfirmation, PostingDoc,
    Receiver, SystemMessage,
};
use crate::model::PaymentBack;
use crate::ports::{Change, SystemError, Writer, Written};

/// How long a confirmation whose answer was lost may still land. Not documented; the stricter
/// reading: as long as BC's 10 minutes.
pub const CONFIRM_SETTLE: Duration = Duration::from_secs(600);

/// One ERP document a confirmation reports (§2.3 `postingDocs[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedDoc {
    /// BC's posted number (≤80).
    pub number: String,
    pub posting_date: NaiveDate,
}

/// A posting confirmation to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmDoc {
    /// FIS `docType`: `invoice` or `expense`.
    pub doc_type: String,
    /// The 32-character FIS id.
    pub doc_id: String,
    /// The number a person knows the document by (request or report id).
    pub number: String,
    pub success: bool,
    /// The ERP company (`postingDocs[].companyId`).
    pub company_id: String,
    pub posted: Vec<PostedDoc>,
    /// What Concur's audit trail shows (≤1300).
    pub message: String,
}

impl ConfirmDoc {
    fn entity(&self) -> PostingConfirmation {
        let text: String = self.message.chars().take(1300).collect();
        PostingConfirmation {
            doc_id: self.doc_id.clone(),
            overall_posting_status_code: if self.success { "success" } else { "error" }.into(),
            posting_docs: self
                .posted
                .iter()
                .map(|p| PostingDoc {
                    company_id: self.company_id.clone(),
                    document_number: p.number.chars().take(80).collect(),
                    fiscal_year: p.posting_date.year().to_string(),
                    payment_relevant_line_items: Vec::new(),
                    posting_date: p.posting_date.to_string(),
                })
                .collect(),
            system_messages: vec![SystemMessage {
                message_id: if self.success { "MLC-OK" } else { "MLC-ERR" }.into(),
                message_language: "EN".into(),
                message_short_text: text.clone(),
                message_long_text: text,
            }],
        }
    }
}

#[derive(Clone)]
pub struct PostingConfirmationWriter {
    pub concur: ConcurClient,
}

/// Statuses past a posting confirmation (§2.7.3's wider enum).
fn confirmed(status: &str, success: bool) -> bool {
    if success {
        matches!(
            status,
            "POSTING_CONFIRMED_SUCCESS"
                | "PAID"
                | "PAYMENT_CONFIRMED_SUCCESS"
                | "PAYMENT_CONFIRMED_REVERSED"
                | "PAYMENT_CONFIRMED_OBSOLETE"
        )
    } else {
        status == "POSTING_CONFIRMED_FAILURE"
    }
}

impl Writer for PostingConfirmationWriter {
    type Doc = ConfirmDoc;
    /// The FIS id of the document confirmed.
    type Record = String;

    fn what(&self, d: &ConfirmDoc) -> String {
        format!(
            "the {} posting confirmation of Concur {} {}",
            if d.success { "success" } else { "error" },
            d.doc_type,
            d.number
        )
    }

    fn target(&self) -> String {
        self.concur.target_identity()
    }

    fn settle_window(&self) -> Duration {
        CONFIRM_SETTLE
    }

    fn id_of(&self, d: &ConfirmDoc, _r: &String) -> String {
        d.doc_id.clone()
    }

    async fn find(
        &self,
        d: &ConfirmDoc,
        _known_id: Option<&str>,
    ) -> Result<Option<String>, SystemError> {
        let Some(doc) = self.concur.document(&d.doc_type, &d.doc_id).await? else {
            return Err(SystemError::NotFound(format!(
                "Concur has no {} document {}",
                d.doc_type, d.doc_id
            )));
        };
        let status = doc.doc_status.unwrap_or_default();
        Ok(confirmed(status.trim(), d.success).then(|| d.doc_id.clone()))
    }

    async fn create(&self, d: &ConfirmDoc) -> Result<String, SystemError> {
        self.concur.confirm_posting(&d.doc_type, d.entity()).await?;
        Ok(d.doc_id.clone())
    }

    async fn finish(
        &self,
        d: &ConfirmDoc,
        id: String,
        created: bool,
    ) -> Result<Written, SystemError> {
        Ok(Written {
            id,
            number: d
                .posted
                .iter()
                .map(|p| p.number.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            change: if created {
                Change::Created
            } else {
                Change::AlreadyDone
            },
        })
    }
}

/// A payment confirmation (§2.3, `CP`): an expense report's reimbursement, paid in BC.
/// `PaymentBack::source_id` is the FIS id; its `reference` is the `paymentRef`, unique per BC
/// payment; `target_number` the BC posted invoice; the receiver is the employee's BC vendor.
#[derive(Clone)]
pub struct PaymentConfirmationWriter {
    pub concur: ConcurClient,
    /// The ERP company code (`clearingReference.companyCode`).
    pub company_code: String,
    /// The employee's vendor number (`receiver.receiverId`).
    pub receiver: String,
}

impl Writer for PaymentConfirmationWriter {
    type Doc = PaymentBack;
    type Record = String;

    fn what(&self, p: &PaymentBack) -> String {
        format!(
            "the payment confirmation of Concur expense report {}",
            p.source_id
        )
    }

    fn target(&self) -> String {
        self.concur.target_identity()
    }

    fn settle_window(&self) -> Duration {
        CONFIRM_SETTLE
    }

    fn id_of(&self, p: &PaymentBack, _r: &String) -> String {
        p.reference.clone()
    }

    /// By the document's status: once confirmed paid, a `CP` is there. Doubt: a document
    /// partially paid (`PP`) more than once cannot be told apart this way; only `CP` is sent
    /// (BC shows an invoice paid, not how much of it).
    async fn find(
        &self,
        p: &PaymentBack,
        _known_id: Option<&str>,
    ) -> Result<Option<String>, SystemError> {
        let Some(doc) = self.concur.document("expense", &p.source_id).await? else {
            return Err(SystemError::NotFound(format!(
                "Concur has no expense document {}",
                p.source_id
            )));
        };
        let status = doc.doc_status.unwrap_or_default();
        Ok(
            matches!(status.trim(), "PAYMENT_CONFIRMED_SUCCESS" | "PAID")
                .then(|| p.reference.clone()),
        )
    }

    async fn create(&self, p: &PaymentBack) -> Result<String, SystemError> {
        let number = p
            .target_number
            .clone()
            .unwrap_or_else(|| p.target_id.clone());
        let c = PaymentConfirmation {
            doc_id: p.source_id.clone(),
            processing_status_code: "CP".into(),
            clearing_details: vec![ClearingDetail {
                clearing_date: format!("{}T12:00:00Z", p.date),
                clearing_amount: p.amount.amount,
                clearing_currency: p.amount.currency.to_string(),
                receiver: Receiver {
                    receiver_id: self.receiver.clone(),
                    receiver_name: String::new(),
                    receiver_type: "EMPLOYEE".into(),
                },
                clearing_reference: ClearingReference {
                    company_code: self.company_code.clone(),
                    financial_document_id: number,
                    fiscal_year: p.date.year().to_string(),
                    payment_ref: p.reference.clone(),
                    // Doubt: BC's invoice does not say how it was paid; EFT is the usual way.
                    payment_method: "E".into(),
                },
            }],
        };
        self.concur.confirm_payment("expense", c).await?;
        Ok(p.reference.clone())
    }

    async fn finish(
        &self,
        p: &PaymentBack,
        id: String,
        created: bool,
    ) -> Result<Written, SystemError> {
        Ok(Written {
            id,
            number: p.target_number.clone().unwrap_or_default(),
            change: if created {
                Change::Created
            } else {
                Change::AlreadyDone
            },
        })
    }
}
