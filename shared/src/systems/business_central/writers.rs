//! Business Central behind the writer port (`ports::Writer`): purchase invoices and credit
//! memos (draft → dimensions → `Microsoft.NAV.post`), purchase orders (created in one deep
//! insert, then kept in step line by line), and vendors. The exactly-once rules (ledger claim,
//! look before create, unsettled creates) are the writer step's; here is only what BC needs.

use std::time::Duration;

use rust_decimal::Decimal;

use super::documents::{DocSet, NewDocumentLine, NewPurchaseDocument};
use super::wire::{
    NewPurchaseOrder, NewPurchaseOrderLine, NewVendor, PurchaseInvoice, PurchaseOrder,
    PurchaseOrderLine, Vendor,
};
use super::{BcClient, BcError};
use crate::model::{
    InvoiceKind, OrderState, ResolvedInvoice, ResolvedOrderLine, ResolvedPurchaseOrder,
    VendorToCreate,
};
use crate::ports::{Absent, Change, SystemError, Writer, Written};

/// How long a create whose answer was lost may still commit in BC. BC cancels an operation
/// after 8 minutes (408) and its gateway gives up at 10 (business-central.md A4), so a create
/// not visible 10 minutes after it was sent never happened, and only then may the document be
/// created again.
pub const CREATE_SETTLE: Duration = Duration::from_secs(600);

/// "Business Central refused {what}: {BC's code and message}", as a rejection to park with.
fn refused(what: &str, e: BcError) -> SystemError {
    match SystemError::from(e) {
        SystemError::Rejected { status, message } => SystemError::Rejected {
            status,
            message: format!("Business Central refused {what}: {message}"),
        },
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Purchase invoices and credit memos

/// Approved invoices become purchase invoices, credit notes purchase credit memos; drafts are
/// completed with their line dimensions and posted.
#[derive(Clone)]
pub struct InvoiceWriter {
    pub bc: BcClient,
}

/// An invoice becomes a purchase invoice; a credit note a purchase credit memo.
fn doc_set(inv: &ResolvedInvoice) -> DocSet {
    match inv.kind {
        InvoiceKind::Invoice => DocSet::Invoice,
        InvoiceKind::CreditNote => DocSet::CreditMemo,
    }
}

fn draft_of(inv: &ResolvedInvoice) -> NewPurchaseDocument {
    NewPurchaseDocument {
        vendor_number: inv.vendor_number.clone(),
        external_number: inv.vendor_invoice_number.clone(),
        date: inv.invoice_date,
        currency_code: inv.total.currency.to_string(),
        lines: inv
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| NewDocumentLine {
                sequence: (i as i32 + 1) * 10000,
                gl_account: l.gl_account.clone(),
                description: l.description.clone(),
                quantity: l.quantity,
                unit_cost: l.unit_cost,
            })
            .collect(),
    }
}

impl InvoiceWriter {
    /// The natural key: this vendor's documents with this vendor invoice number. A posted one
    /// wins over a draft (a person may have left a stray draft beside it).
    async fn by_natural_key(
        &self,
        inv: &ResolvedInvoice,
    ) -> Result<Option<PurchaseInvoice>, BcError> {
        let mut found = self
            .bc
            .documents_by_natural_key(doc_set(inv), &inv.vendor_number, &inv.vendor_invoice_number)
            .await?;
        found.sort_by_key(|i| i.is_draft());
        Ok(found.into_iter().next())
    }

    /// Gives every line its dimension values. On a fresh draft there are none yet; on a resumed
    /// one, only the missing ones are added, so a retry never trips over "already exists".
    async fn ensure_dimensions(
        &self,
        set: DocSet,
        invoice_id: &str,
        inv: &ResolvedInvoice,
        fresh: bool,
    ) -> Result<(), SystemError> {
        if inv.lines.iter().all(|l| l.dimensions.is_empty()) {
            return Ok(());
        }
        let bc = &self.bc;
        let mut bc_lines = bc
            .document_lines(set, invoice_id)
            .await
            .map_err(|e| refused("the invoice lines", e))?;
        bc_lines.sort_by_key(|l| l.sequence.unwrap_or(i32::MAX));
        for (i, line) in inv.lines.iter().enumerate() {
            if line.dimensions.is_empty() {
                continue;
            }
            let n = i + 1;
            let seq = n as i32 * 10000;
            let Some(bc_line) = bc_lines
                .iter()
                .find(|l| l.sequence == Some(seq))
                .or_else(|| bc_lines.get(i))
            else {
                continue;
            };
            let have: Vec<String> = if fresh {
                Vec::new()
            } else {
                bc.document_line_dimensions(set, &bc_line.id)
                    .await
                    .map_err(|e| refused(&format!("the dimensions of line {n}"), e))?
                    .into_iter()
                    .filter_map(|d| d.code)
                    .collect()
            };
            for (code, value) in &line.dimensions {
                if !have.iter().any(|h| h.eq_ignore_ascii_case(code)) {
                    bc.add_document_line_dimension(set, &bc_line.id, code, value)
                        .await
                        .map_err(|e| {
                            refused(&format!("dimension {code} value '{value}' on line {n}"), e)
                        })?;
                }
            }
        }
        Ok(())
    }
}

impl Writer for InvoiceWriter {
    type Doc = ResolvedInvoice;
    type Record = PurchaseInvoice;

    fn target(&self) -> String {
        self.bc.target_identity()
    }

    fn what(&self, inv: &ResolvedInvoice) -> String {
        format!("the Business Central {}", doc_set(inv).noun())
    }

    fn settle_window(&self) -> Duration {
        CREATE_SETTLE
    }

    fn id_of(&self, _inv: &ResolvedInvoice, record: &PurchaseInvoice) -> String {
        record.id.clone()
    }

    async fn find(
        &self,
        inv: &ResolvedInvoice,
        known_id: Option<&str>,
    ) -> Result<Option<PurchaseInvoice>, SystemError> {
        if let Some(id) = known_id
            && let Some(d) = self.bc.document(doc_set(inv), id).await?
        {
            return Ok(Some(d));
        }
        Ok(self.by_natural_key(inv).await?)
    }

    async fn create(&self, inv: &ResolvedInvoice) -> Result<PurchaseInvoice, SystemError> {
        let set = doc_set(inv);
        self.bc
            .create_document(set, &draft_of(inv))
            .await
            .map_err(|e| refused(&format!("the {}", set.noun()), e))
    }

    async fn finish(
        &self,
        inv: &ResolvedInvoice,
        draft: PurchaseInvoice,
        created: bool,
    ) -> Result<Written, SystemError> {
        let set = doc_set(inv);
        if !draft.is_draft() {
            return Ok(Written {
                number: draft.number.clone().unwrap_or_default(),
                id: draft.id,
                change: Change::AlreadyDone,
            });
        }
        self.ensure_dimensions(set, &draft.id, inv, created).await?;
        if let Err(e) = self.bc.post_document(set, &draft.id).await {
            // Posted after all (answer lost, or an earlier attempt got there)? Read first.
            let now = self.bc.document(set, &draft.id).await?;
            if now.as_ref().is_none_or(|d| d.is_draft()) {
                return Err(refused(
                    &format!(
                        "to post draft {}",
                        draft.number.as_deref().unwrap_or(&draft.id)
                    ),
                    e,
                ));
            }
        }
        // The post renumbers the invoice (gotcha 3): read the posted number by the stable id.
        let posted =
            self.bc
                .document(set, &draft.id)
                .await?
                .ok_or_else(|| SystemError::Transient {
                    message: format!("BC {} {} vanished after posting", set.noun(), draft.id),
                    retry_after: None,
                })?;
        Ok(Written {
            number: posted.number.clone().unwrap_or_default(),
            id: posted.id,
            change: Change::Created,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Purchase orders

/// What the order writer is asked: the resolved order, and the BC id the caller's mapping
/// table remembers for it (the ledger's own record comes as `known_id`).
#[derive(Clone, Debug)]
pub struct OrderJob {
    pub order: ResolvedPurchaseOrder,
    pub mapped_id: Option<String>,
}

/// Source purchase orders → BC `purchaseOrders`, found again by the id recorded when it was
/// created, else by the reference every line carries in `description2` (an order's `number`
/// is BC's own, read-only). Changed orders are updated line by line with each line's entity
/// tag (BC requires If-Match; a stale tag fails rather than overwriting someone's change).
#[derive(Clone)]
pub struct OrderWriter {
    pub bc: BcClient,
}

fn lines_of(o: &PurchaseOrder) -> &[PurchaseOrderLine] {
    o.purchase_order_lines.as_deref().unwrap_or_default()
}

fn new_line(order: &ResolvedPurchaseOrder, l: &ResolvedOrderLine) -> NewPurchaseOrderLine {
    NewPurchaseOrderLine {
        sequence: l.line_num as i32 * 10000,
        line_type: "Account".into(),
        line_object_number: l.gl_account.clone(),
        description: l.description.clone(),
        description2: order.reference(),
        quantity: l.quantity,
        direct_unit_cost: l.unit_cost,
    }
}

impl OrderWriter {
    async fn by_reference(
        &self,
        order: &ResolvedPurchaseOrder,
    ) -> Result<Option<PurchaseOrder>, SystemError> {
        let reference = order.reference();
        let orders = self
            .bc
            .purchase_orders_of_vendor(&order.vendor_number)
            .await?;
        Ok(orders.into_iter().find(|o| {
            lines_of(o)
                .iter()
                .any(|l| l.description2.as_deref() == Some(reference.as_str()))
        }))
    }

    /// Makes BC's lines match: PATCH changed ones (with their entity tag), add new ones, delete
    /// removed ones. Returns whether anything changed.
    async fn update_lines(
        &self,
        order: &ResolvedPurchaseOrder,
        o: &PurchaseOrder,
    ) -> Result<bool, SystemError> {
        let bc = &self.bc;
        let have = lines_of(o);
        let mut changed = false;
        for l in &order.lines {
            let want = new_line(order, l);
            match have.iter().find(|h| h.sequence == Some(want.sequence)) {
                None => {
                    bc.add_purchase_order_line(&o.id, &want)
                        .await
                        .map_err(|e| refused(&format!("line {}", l.line_num), e))?;
                    changed = true;
                }
                Some(h) => {
                    let mut patch = serde_json::Map::new();
                    if h.line_object_number.as_deref() != Some(want.line_object_number.as_str()) {
                        patch.insert("lineType".into(), want.line_type.clone().into());
                        patch.insert(
                            "lineObjectNumber".into(),
                            want.line_object_number.clone().into(),
                        );
                    }
                    if h.description.as_deref() != Some(want.description.as_str()) {
                        patch.insert("description".into(), want.description.clone().into());
                    }
                    if h.description2.as_deref() != Some(want.description2.as_str()) {
                        patch.insert("description2".into(), want.description2.clone().into());
                    }
                    if h.quantity != Some(want.quantity) {
                        patch.insert(
                            "quantity".into(),
                            crate::systems::wire::decimal_json(want.quantity),
                        );
                    }
                    if h.direct_unit_cost != Some(want.direct_unit_cost) {
                        patch.insert(
                            "directUnitCost".into(),
                            crate::systems::wire::decimal_json(want.direct_unit_cost),
                        );
                    }
                    if !patch.is_empty() {
                        bc.update_purchase_order_line(
                            &o.id,
                            &h.id,
                            h.etag.as_deref().unwrap_or("*"),
                            &serde_json::Value::Object(patch),
                        )
                        .await
                        .map_err(|e| refused(&format!("the change to line {}", l.line_num), e))?;
                        changed = true;
                    }
                }
            }
        }
        let wanted: Vec<i32> = order
            .lines
            .iter()
            .map(|l| l.line_num as i32 * 10000)
            .collect();
        for h in have {
            if h.sequence.is_some_and(|s| !wanted.contains(&s)) {
                if h.received_quantity.unwrap_or_default() > Decimal::ZERO {
                    return Err(SystemError::Rejected {
                        status: None,
                        message: format!(
                            "line {} was removed in Coupa but has receipts in Business Central",
                            h.sequence.unwrap_or_default() / 10000
                        ),
                    });
                }
                bc.delete_purchase_order_line(&o.id, &h.id, h.etag.as_deref().unwrap_or("*"))
                    .await
                    .map_err(|e| refused("deleting a removed line", e))?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Gives each line its dimension values; on a fresh order none exist yet, otherwise the
    /// missing ones are added and a changed value is changed (with the set line's entity tag).
    async fn add_dimensions(
        &self,
        order: &ResolvedPurchaseOrder,
        o: &PurchaseOrder,
        fresh: bool,
    ) -> Result<(), SystemError> {
        let bc = &self.bc;
        for l in &order.lines {
            if l.dimensions.is_empty() {
                continue;
            }
            let seq = l.line_num as i32 * 10000;
            let Some(bc_line) = lines_of(o).iter().find(|h| h.sequence == Some(seq)) else {
                continue;
            };
            let n = l.line_num;
            let have = if fresh {
                Vec::new()
            } else {
                bc.order_line_dimensions(&bc_line.id)
                    .await
                    .map_err(|e| refused(&format!("the dimensions of line {n}"), e))?
            };
            for (code, value) in &l.dimensions {
                let what = || format!("dimension {code} value '{value}' on line {n}");
                let current = have.iter().find(|h| {
                    h.code
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case(code))
                });
                match current {
                    None => bc
                        .add_order_line_dimension(&bc_line.id, code, value)
                        .await
                        .map_err(|e| refused(&what(), e))?,
                    Some(h)
                        if !h
                            .value_code
                            .as_deref()
                            .is_some_and(|v| v.eq_ignore_ascii_case(value)) =>
                    {
                        let Some(dim_id) = h.id.as_deref() else {
                            return Err(SystemError::Malformed(format!(
                                "BC dimension set line {code} on line {n} has no id"
                            )));
                        };
                        bc.update_order_line_dimension(
                            &bc_line.id,
                            dim_id,
                            h.etag.as_deref().unwrap_or("*"),
                            value,
                        )
                        .await
                        .map_err(|e| refused(&what(), e))?
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }
}

impl Writer for OrderWriter {
    type Doc = OrderJob;
    type Record = PurchaseOrder;

    fn target(&self) -> String {
        self.bc.target_identity()
    }

    fn what(&self, job: &OrderJob) -> String {
        format!("the Business Central order of PO {}", job.order.number)
    }

    fn settle_window(&self) -> Duration {
        CREATE_SETTLE
    }

    fn id_of(&self, _job: &OrderJob, record: &PurchaseOrder) -> String {
        record.id.clone()
    }

    async fn find(
        &self,
        job: &OrderJob,
        known_id: Option<&str>,
    ) -> Result<Option<PurchaseOrder>, SystemError> {
        for id in known_id.into_iter().chain(job.mapped_id.as_deref()) {
            if let Some(o) = self.bc.purchase_order(id).await? {
                return Ok(Some(o));
            }
        }
        self.by_reference(&job.order).await
    }

    fn when_absent(&self, job: &OrderJob) -> Absent {
        match job.order.state {
            OrderState::Active => Absent::Create,
            OrderState::Closed => Absent::LeaveAlone(
                "closed in Coupa before it reached Business Central: not created".into(),
            ),
            OrderState::Cancelled => Absent::LeaveAlone(
                "cancelled in Coupa before it reached Business Central: not created".into(),
            ),
        }
    }

    async fn create(&self, job: &OrderJob) -> Result<PurchaseOrder, SystemError> {
        let order = &job.order;
        let new = NewPurchaseOrder {
            vendor_number: order.vendor_number.clone(),
            order_date: order.order_date,
            currency_code: order.currency.to_string(),
            purchase_order_lines: order.lines.iter().map(|l| new_line(order, l)).collect(),
        };
        let created = self
            .bc
            .create_purchase_order(&new)
            .await
            .map_err(|e| refused("the purchase order", e))?;
        // The deep insert's answer has no lines; read them for their ids.
        Ok(self
            .bc
            .purchase_order(&created.id)
            .await?
            .unwrap_or(created))
    }

    async fn finish(
        &self,
        job: &OrderJob,
        o: PurchaseOrder,
        created: bool,
    ) -> Result<Written, SystemError> {
        let order = &job.order;
        let number = o.number.clone().unwrap_or_default();
        let written = |change| Written {
            id: o.id.clone(),
            number: number.clone(),
            change,
        };
        if created {
            self.add_dimensions(order, &o, true).await?;
            return Ok(written(Change::Created));
        }
        match order.state {
            OrderState::Closed => Ok(written(Change::LeftAlone(
                "closed in Coupa: the Business Central order is left as it is".into(),
            ))),
            OrderState::Cancelled => {
                let touched = lines_of(&o).iter().any(|l| {
                    l.received_quantity.unwrap_or_default() > Decimal::ZERO
                        || l.invoiced_quantity.unwrap_or_default() > Decimal::ZERO
                });
                if touched {
                    return Err(SystemError::Rejected {
                        status: None,
                        message: format!(
                            "cancelled in Coupa, but Business Central order {number} has receipts or invoices: cancel it there by hand"
                        ),
                    });
                }
                match self
                    .bc
                    .delete_purchase_order(&o.id, o.etag.as_deref().unwrap_or("*"))
                    .await
                {
                    Ok(()) => {}
                    // Gone already (an earlier attempt deleted it): that is the goal.
                    Err(e) if e.http().status() == Some(404) => {}
                    Err(e) => return Err(refused("deleting the cancelled order", e)),
                }
                Ok(written(Change::Removed(
                    "cancelled in Coupa: the Business Central order was deleted".into(),
                )))
            }
            OrderState::Active => {
                let changed = self.update_lines(order, &o).await?;
                let fresh = self.bc.purchase_order(&o.id).await?.unwrap_or(o.clone());
                self.add_dimensions(order, &fresh, false).await?;
                Ok(Written {
                    id: fresh.id.clone(),
                    number: fresh.number.clone().unwrap_or_default(),
                    change: if changed {
                        Change::Updated
                    } else {
                        Change::Unchanged
                    },
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Vendors

/// A source supplier with no BC vendor becomes one, found again by its number or tax id (a
/// create whose answer was lost is found, and until BC's settle window has passed it is only
/// looked for, never created twice).
#[derive(Clone)]
pub struct VendorWriter {
    pub bc: BcClient,
}

impl Writer for VendorWriter {
    type Doc = VendorToCreate;
    type Record = Vendor;

    fn target(&self) -> String {
        self.bc.target_identity()
    }

    fn what(&self, v: &VendorToCreate) -> String {
        format!("the new Business Central vendor for '{}'", v.supplier_name)
    }

    fn settle_window(&self) -> Duration {
        CREATE_SETTLE
    }

    fn id_of(&self, _v: &VendorToCreate, record: &Vendor) -> String {
        record.id.clone()
    }

    async fn find(
        &self,
        v: &VendorToCreate,
        _known_id: Option<&str>,
    ) -> Result<Option<Vendor>, SystemError> {
        // By number or tax id, not by the recorded id: a vendor's number is what the mapping
        // needs, and both keys are unique in practice.
        Ok(match (&v.number, &v.tax_id) {
            (Some(n), _) => self.bc.vendor_by_number(n).await?,
            (None, Some(t)) => self.bc.vendor_by_tax_id(t).await?.into_iter().next(),
            (None, None) => None,
        })
    }

    async fn create(&self, v: &VendorToCreate) -> Result<Vendor, SystemError> {
        let new = NewVendor {
            number: v.number.clone(),
            display_name: v.supplier_name.chars().take(100).collect(),
            tax_registration_number: v.tax_id.clone(),
            currency_code: None,
        };
        self.bc
            .create_vendor(&new)
            .await
            .map_err(|e| refused("the new vendor", e))
    }

    async fn finish(
        &self,
        _v: &VendorToCreate,
        vendor: Vendor,
        created: bool,
    ) -> Result<Written, SystemError> {
        Ok(Written {
            number: vendor.number.clone().unwrap_or_default(),
            id: vendor.id,
            change: if created {
                Change::Created
            } else {
                Change::AlreadyDone
            },
        })
    }
}
