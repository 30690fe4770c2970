//! Basware behind the writer port: the transfer response of an accounting document, exactly
//! once. Basware has no idempotency key, but each response carries an `externalCode` unique per
//! invoice and the document lists the responses it holds, so a response whose answer was lost
//! is found by its code before another is sent.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::wire::{PaymentResponse, TransferResponse};
use super::{BaswareClient, PaymentSent};
use crate::model::PaymentBack;
use crate::ports::{Change, SystemError, Writer, Written};

/// How long a transfer response whose answer was lost may still land. Not documented; the
/// stricter reading: as long as BC's 10 minutes.
pub const RESPONSE_SETTLE: Duration = Duration::from_secs(600);

/// A transfer response to send: success with the BC posted number, or failure with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferDoc {
    pub invoice_id: String,
    /// What makes this response unique: "transferred", or "failed" with the document version
    /// that failed (a document returned and sent again may fail again, and must be told again).
    pub occasion: String,
    pub success: bool,
    /// ≤250 characters (§3.6); cut here.
    pub message: String,
    /// The BC posted invoice number (`voucherNumber1`, ≤25).
    pub voucher_number: Option<String>,
}

impl TransferDoc {
    /// The response's `externalCode`: derived from the invoice and the occasion, so every
    /// attempt sends the same one (≤36 characters).
    pub fn external_code(&self) -> String {
        let digest = Sha256::digest(format!("{}\n{}", self.invoice_id, self.occasion));
        format!("mlc-{}", &hex::encode(digest)[..32])
    }

    fn entity(&self) -> TransferResponse {
        TransferResponse {
            external_code: self.external_code(),
            success: self.success,
            response_message: self.message.chars().take(250).collect(),
            payment_block: false,
            source_system: Some("Business Central".chars().take(32).collect()),
            voucher_number1: self
                .voucher_number
                .as_ref()
                .map(|v| v.chars().take(25).collect()),
            transfer_date: None,
        }
    }
}

#[derive(Clone)]
pub struct TransferWriter {
    pub basware: BaswareClient,
}

impl Writer for TransferWriter {
    type Doc = TransferDoc;
    /// The `externalCode` of the response Basware holds.
    type Record = String;

    fn what(&self, d: &TransferDoc) -> String {
        format!(
            "the {} transfer response of Basware document {}",
            if d.success { "success" } else { "failure" },
            d.invoice_id
        )
    }

    fn target(&self) -> String {
        self.basware.target_identity()
    }

    fn settle_window(&self) -> Duration {
        RESPONSE_SETTLE
    }

    fn id_of(&self, _d: &TransferDoc, code: &String) -> String {
        code.clone()
    }

    async fn find(
        &self,
        d: &TransferDoc,
        _known_id: Option<&str>,
    ) -> Result<Option<String>, SystemError> {
        let code = d.external_code();
        let held = self.basware.responses(&d.invoice_id).await?;
        Ok(held
            .transfer_responses
            .iter()
            .any(|r| r.external_code.as_deref() == Some(code.as_str()))
            .then_some(code))
    }

    async fn create(&self, d: &TransferDoc) -> Result<String, SystemError> {
        self.basware
            .send_transfer_response(&d.invoice_id, &d.entity())
            .await?;
        Ok(d.external_code())
    }

    async fn finish(
        &self,
        d: &TransferDoc,
        code: String,
        created: bool,
    ) -> Result<Written, SystemError> {
        Ok(Written {
            id: code,
            number: d.voucher_number.clone().unwrap_or_default(),
            change: if created {
                Change::Created
            } else {
                Change::AlreadyDone
            },
        })
    }
}

/// A payment response (§3.6): the paid status of a posted document, exactly once. Its
/// `externalCode` is derived from the payment's reference (unique per BC payment); a 409 on a
/// repeat is success. Every field the connector knows is sent: P2P clears omitted ones.
#[derive(Clone)]
pub struct PaymentResponseWriter {
    pub basware: BaswareClient,
}

/// The payment response's `externalCode` (≤36 characters).
pub fn payment_code(p: &PaymentBack) -> String {
    let digest = Sha256::digest(format!("payment\n{}", p.reference));
    format!("mlc-pay-{}", &hex::encode(digest)[..28])
}

impl Writer for PaymentResponseWriter {
    type Doc = PaymentBack;
    type Record = String;

    fn what(&self, p: &PaymentBack) -> String {
        format!("the payment response of Basware document {}", p.source_id)
    }

    fn target(&self) -> String {
        self.basware.target_identity()
    }

    fn settle_window(&self) -> Duration {
        RESPONSE_SETTLE
    }

    fn id_of(&self, _p: &PaymentBack, code: &String) -> String {
        code.clone()
    }

    async fn find(
        &self,
        p: &PaymentBack,
        _known_id: Option<&str>,
    ) -> Result<Option<String>, SystemError> {
        let code = payment_code(p);
        let held = self.basware.responses(&p.source_id).await?;
        Ok(held
            .payment_responses
            .iter()
            .any(|r| r.external_code.as_deref() == Some(code.as_str()))
            .then_some(code))
    }

    async fn create(&self, p: &PaymentBack) -> Result<String, SystemError> {
        let entity = PaymentResponse {
            external_code: payment_code(p),
            success: true,
            payment_block: false,
            response_message: "Paid in Business Central.".into(),
            source_system: "Business Central".into(),
            payment_date: format!("{}T00:00:00Z", p.date),
            paid_total: p.amount.amount,
            payment_number: p
                .target_number
                .clone()
                .unwrap_or_else(|| p.target_id.clone())
                .chars()
                .take(100)
                .collect(),
        };
        match self
            .basware
            .send_payment_response(&p.source_id, &entity)
            .await?
        {
            PaymentSent::Now | PaymentSent::Already => Ok(entity.external_code),
        }
    }

    async fn finish(
        &self,
        p: &PaymentBack,
        code: String,
        created: bool,
    ) -> Result<Written, SystemError> {
        Ok(Written {
            id: code,
            number: p.target_number.clone().unwrap_or_default(),
            change: if created {
                Change::Created
            } else {
                Change::AlreadyDone
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_external_code_is_stable_short_and_per_occasion() {
        let d = |occasion: &str| TransferDoc {
            invoice_id: "138e7d94997847aebe7432e521b3dac9".into(),
            occasion: occasion.into(),
            success: true,
            message: String::new(),
            voucher_number: None,
        };
        assert_eq!(
            d("transferred").external_code(),
            d("transferred").external_code()
        );
        assert_ne!(
            d("transferred").external_code(),
            d("failed 1").external_code()
        );
        assert!(d("transferred").external_code().len() <= 36);
    }
}
