//! Purchase orders (`PurchaseOrderHeadersV2`, `PurchaseOrderLinesV2`, B4.3) behind the writer
//! port. F&O numbers a new order; the source's PO number travels in `VendorOrderReference`,
//! by which (with the vendor account) a create whose answer was lost is found again. A changed
//! order is kept in step line by line: a missing line is added, a changed one is PATCHed with
//! its own entity tag (a line someone changed since it was read fails with 412 and is read
//! again, never overwritten blindly); nothing is deleted and re-created.

use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::client::{FoClient, FoError, Key};
use super::wire::{
    NewPurchaseOrderHeader, NewPurchaseOrderLine, PurchaseOrderHeader, PurchaseOrderLine,
};
use super::writers::CREATE_SETTLE;
use crate::ports::{Absent, Change, SystemError, Writer, Written};
use crate::systems::http::odata::string_literal;

pub const PO_HEADERS: &str = "PurchaseOrderHeadersV2";
pub const PO_LINES: &str = "PurchaseOrderLinesV2";

/// A source purchase order as F&O takes it, in one legal entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoOrder {
    pub source_id: String,
    pub legal_entity: String,
    /// The source's PO number (`VendorOrderReference`).
    pub reference: String,
    pub vendor_account: String,
    pub currency: String,
    /// Issued: created or updated; otherwise (closed, cancelled) an F&O order is left as it is.
    pub active: bool,
    /// The ledger display strings' delimiter (to compare F&O's padded form with ours).
    pub delimiter: char,
    pub lines: Vec<FoOrderLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoOrderLine {
    pub number: i64,
    pub description: String,
    pub main_account_display: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
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

/// F&O pads a display string's missing trailing segments (B5): compare without them.
fn same_display(a: &str, b: &str, delimiter: char) -> bool {
    a.trim_end_matches(delimiter)
        .eq_ignore_ascii_case(b.trim_end_matches(delimiter))
}

impl FoClient {
    pub async fn purchase_order(
        &self,
        company: &str,
        number: &str,
    ) -> Result<Option<PurchaseOrderHeader>, FoError> {
        self.get(
            PO_HEADERS,
            &[
                ("dataAreaId", Key::Str(company)),
                ("PurchaseOrderNumber", Key::Str(number)),
            ],
        )
        .await
    }

    pub async fn purchase_orders_by_reference(
        &self,
        company: &str,
        vendor_account: &str,
        reference: &str,
    ) -> Result<Vec<PurchaseOrderHeader>, FoError> {
        let found: Vec<PurchaseOrderHeader> = self
            .list(
                PO_HEADERS,
                company,
                &format!(
                    "OrderVendorAccountNumber eq {} and VendorOrderReference eq {}",
                    string_literal(vendor_account),
                    string_literal(reference)
                ),
            )
            .await?;
        Ok(found
            .into_iter()
            .filter(|o| o.vendor_order_reference == reference)
            .collect())
    }

    pub async fn purchase_order_lines(
        &self,
        company: &str,
        number: &str,
    ) -> Result<Vec<PurchaseOrderLine>, FoError> {
        self.list(
            PO_LINES,
            company,
            &format!("PurchaseOrderNumber eq {}", string_literal(number)),
        )
        .await
    }
}

/// Purchase orders into one legal entity (built per document, as the invoice writer is).
#[derive(Clone)]
pub struct OrderWriter {
    pub fo: FoClient,
    pub legal_entity: String,
}

impl OrderWriter {
    pub fn new(fo: FoClient, legal_entity: &str) -> Self {
        Self {
            fo,
            legal_entity: legal_entity.to_lowercase(),
        }
    }

    fn new_line(&self, number: &str, l: &FoOrderLine) -> NewPurchaseOrderLine {
        NewPurchaseOrderLine {
            data_area_id: self.legal_entity.clone(),
            order_number: number.to_string(),
            line_number: l.number,
            description: l.description.clone(),
            main_account_display: l.main_account_display.clone(),
            quantity: l.quantity,
            price: l.price,
        }
    }
}

impl Writer for OrderWriter {
    type Doc = FoOrder;
    type Record = PurchaseOrderHeader;

    fn what(&self, o: &FoOrder) -> String {
        format!(
            "the F&O purchase order for {} in legal entity {}",
            o.reference,
            self.legal_entity.to_uppercase()
        )
    }

    fn target(&self) -> String {
        self.fo.target_identity(&self.legal_entity)
    }

    fn settle_window(&self) -> Duration {
        CREATE_SETTLE
    }

    fn id_of(&self, _o: &FoOrder, record: &PurchaseOrderHeader) -> String {
        record.number.clone()
    }

    async fn find(
        &self,
        o: &FoOrder,
        known_id: Option<&str>,
    ) -> Result<Option<PurchaseOrderHeader>, SystemError> {
        if let Some(id) = known_id
            && let Some(h) = self.fo.purchase_order(&self.legal_entity, id).await?
        {
            return Ok(Some(h));
        }
        let mut found = self
            .fo
            .purchase_orders_by_reference(&self.legal_entity, &o.vendor_account, &o.reference)
            .await?;
        Ok(found.pop())
    }

    fn when_absent(&self, o: &FoOrder) -> Absent {
        if o.active {
            Absent::Create
        } else {
            Absent::LeaveAlone(format!(
                "{} is closed or cancelled in the source and not in F&O: nothing to create",
                o.reference
            ))
        }
    }

    async fn create(&self, o: &FoOrder) -> Result<PurchaseOrderHeader, SystemError> {
        let header = NewPurchaseOrderHeader {
            data_area_id: self.legal_entity.clone(),
            vendor_account: o.vendor_account.clone(),
            currency: o.currency.clone(),
            vendor_order_reference: o.reference.clone(),
            name: o.reference.clone(),
        };
        self.fo
            .create(PO_HEADERS, &header)
            .await
            .map_err(|e| refused(&self.what(o), e))
    }

    async fn finish(
        &self,
        o: &FoOrder,
        header: PurchaseOrderHeader,
        created: bool,
    ) -> Result<Written, SystemError> {
        let written = |change| Written {
            id: header.number.clone(),
            number: header.number.clone(),
            change,
        };
        if !o.active {
            return Ok(written(Change::LeftAlone(format!(
                "{} is closed or cancelled in the source: F&O order {} left as it is",
                o.reference, header.number
            ))));
        }
        let have = if created {
            Vec::new()
        } else {
            self.fo
                .purchase_order_lines(&self.legal_entity, &header.number)
                .await?
        };
        let mut changed = false;
        for l in &o.lines {
            let what = format!("line {} of purchase order {}", l.number, header.number);
            match have.iter().find(|h| h.line_number == l.number) {
                None => {
                    let line = self.new_line(&header.number, l);
                    match self
                        .fo
                        .create::<_, serde_json::Value>(PO_LINES, &line)
                        .await
                    {
                        Ok(_) => {}
                        // Already there (an earlier attempt's answer was lost).
                        Err(FoError::WriteRefused {
                            duplicate: true, ..
                        }) => {}
                        Err(e) => return Err(refused(&what, e)),
                    }
                    changed = true;
                }
                Some(h) => {
                    let mut patch = serde_json::Map::new();
                    if h.quantity != Some(l.quantity) {
                        patch.insert(
                            "OrderedPurchaseQuantity".into(),
                            crate::systems::wire::decimal_json(l.quantity),
                        );
                    }
                    if h.price != Some(l.price) {
                        patch.insert(
                            "PurchasePrice".into(),
                            crate::systems::wire::decimal_json(l.price),
                        );
                    }
                    if !same_display(
                        &h.main_account_display,
                        &l.main_account_display,
                        o.delimiter,
                    ) {
                        patch.insert(
                            "MainAccountIdDisplayValue".into(),
                            l.main_account_display.clone().into(),
                        );
                    }
                    if h.description != l.description {
                        patch.insert("LineDescription".into(), l.description.clone().into());
                    }
                    if patch.is_empty() {
                        continue;
                    }
                    self.fo
                        .update(
                            PO_LINES,
                            &[
                                ("dataAreaId", Key::Str(&self.legal_entity)),
                                ("PurchaseOrderNumber", Key::Str(&header.number)),
                                ("LineNumber", Key::Int(l.number)),
                            ],
                            &serde_json::Value::Object(patch),
                            h.etag.as_deref(),
                        )
                        .await
                        .map_err(|e| refused(&what, e))?;
                    changed = true;
                }
            }
        }
        Ok(written(match (created, changed) {
            (true, _) => Change::Created,
            (false, true) => Change::Updated,
            (false, false) => Change::Unchanged,
        }))
    }
}
