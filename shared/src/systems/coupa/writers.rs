//! Coupa behind the writer port: a payment recorded on a Coupa invoice (paid status coming back
//! from the ERP). Coupa has no idempotency key and a repeated PUT appends a second payment, so
//! the payment's reference (unique per ERP payment) is looked for before it is sent.

use std::time::Duration;

use super::wire::Invoice;
use super::{CoupaClient, PaymentRecord};
use crate::model::PaymentBack;
use crate::ports::{Change, SystemError, Writer, Written};

/// How long a payment PUT whose answer was lost may still land. Coupa documents no limit; its
/// gateway's timeouts are not published, so the stricter reading: as long as BC's 10 minutes.
pub const PAYMENT_SETTLE: Duration = Duration::from_secs(600);

/// A payment recorded on the source invoice, exactly once.
#[derive(Clone)]
pub struct PaymentWriter {
    pub coupa: CoupaClient,
}

fn invoice_id(p: &PaymentBack) -> Result<i64, SystemError> {
    p.source_id.parse().map_err(|_| SystemError::Rejected {
        status: None,
        message: format!("'{}' is not a Coupa invoice id", p.source_id),
    })
}

impl Writer for PaymentWriter {
    type Doc = PaymentBack;
    /// The Coupa invoice, carrying the payment.
    type Record = Invoice;

    fn target(&self) -> String {
        self.coupa.target_identity()
    }

    fn what(&self, p: &PaymentBack) -> String {
        format!("the payment on Coupa invoice {}", p.source_id)
    }

    fn settle_window(&self) -> Duration {
        PAYMENT_SETTLE
    }

    /// The ledger records the ERP invoice the payment came from.
    fn id_of(&self, p: &PaymentBack, _invoice: &Invoice) -> String {
        p.target_id.clone()
    }

    async fn find(
        &self,
        p: &PaymentBack,
        _known_id: Option<&str>,
    ) -> Result<Option<Invoice>, SystemError> {
        let current = self.coupa.invoice(invoice_id(p)?).await?;
        Ok(current
            .has_payment_reference(&p.reference)
            .then_some(current))
    }

    async fn create(&self, p: &PaymentBack) -> Result<Invoice, SystemError> {
        let record = PaymentRecord {
            reference: p.reference.clone(),
            amount: p.amount.amount,
            date: p.date,
        };
        Ok(self.coupa.record_payment(invoice_id(p)?, &record).await?)
    }

    async fn finish(
        &self,
        p: &PaymentBack,
        _invoice: Invoice,
        created: bool,
    ) -> Result<Written, SystemError> {
        Ok(Written {
            id: p.target_id.clone(),
            number: p.reference.clone(),
            change: if created {
                Change::Created
            } else {
                Change::AlreadyDone
            },
        })
    }
}
