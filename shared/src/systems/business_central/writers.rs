//! Business Central behind the writer port (`ports::Writer`): purchase invoices and credit
//! memos (draft → dimensions → `Microsoft.NAV.post`), purchase orders (created in one deep
//! insert, then kept in step line by line), and vendors. The exactly-once rules (ledger claim,
//! look before create, unsettled creates) are the writer step's; here is only what BC needs.

use std::time::Duration;

use rust_decimal::Decimal;

use super::batch::{BatchOp, MAX_BATCH_OPERATIONS};
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

/// A 400 in BC's own error shape (`{"error":{"code":…}}`, A3): BC refused the request. A 400
/// from something in front of it (a proxy's HTML page) is not BC refusing nested dimensions,
/// and sending the insert again without them would hide the page.
fn answered_by_bc_400(e: &BcError) -> bool {
    match e.http() {
        crate::systems::http::HttpError::Status {
            status: 400, body, ..
        } => serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .is_some_and(|v| v["error"]["code"].is_string()),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Purchase invoices and credit memos

/// Approved invoices become purchase invoices, credit notes purchase credit memos; drafts are
/// completed with their line dimensions and posted.
#[derive(Clone)]
pub struct InvoiceWriter {
    pub bc: BcClient,
    /// Set for a credit memo that backs out a posted purchase invoice (this BC id): the memo is
    /// applied to it (`invoiceId`), so the invoice is closed, not left open for payment.
    pub reverses: Option<String>,
}

/// An invoice becomes a purchase invoice; a credit note a purchase credit memo.
fn doc_set(inv: &ResolvedInvoice) -> DocSet {
    match inv.kind {
        InvoiceKind::Invoice => DocSet::Invoice,
        InvoiceKind::CreditNote => DocSet::CreditMemo,
    }
}

fn draft_of(inv: &ResolvedInvoice, reverses: Option<&str>) -> NewPurchaseDocument {
    NewPurchaseDocument {
        applies_to_invoice_id: reverses.map(str::to_string),
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
    /// Purchase invoices and credit memos.
    pub fn new(bc: BcClient) -> Self {
        InvoiceWriter { bc, reverses: None }
    }

    /// A purchase credit memo applied to the posted purchase invoice `invoice_id`: what backs
    /// it out.
    pub fn reversing(bc: BcClient, invoice_id: &str) -> Self {
        InvoiceWriter {
            bc,
            reverses: Some(invoice_id.to_string()),
        }
    }

    fn draft(&self, inv: &ResolvedInvoice) -> NewPurchaseDocument {
        draft_of(inv, self.reverses.as_deref())
    }

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

    /// The deep insert's outcome; a 400 with line dimensions nested is tried once more
    /// without them (see `Writer::create`).
    async fn created_or_fallback(
        &self,
        inv: &ResolvedInvoice,
        created: Result<PurchaseInvoice, BcError>,
    ) -> Result<PurchaseInvoice, SystemError> {
        let set = doc_set(inv);
        let what = || format!("the {}", set.noun());
        match created {
            Ok(d) => Ok(d),
            Err(e)
                if answered_by_bc_400(&e) && inv.lines.iter().any(|l| !l.dimensions.is_empty()) =>
            {
                tracing::warn!(
                    error = %e,
                    "BC refused a deep insert with line dimensions; creating the draft without them"
                );
                let mut d = self
                    .bc
                    .create_document(set, &self.draft(inv))
                    .await
                    .map_err(|e| refused(&what(), e))?;
                d.dimensions_pending = true;
                Ok(d)
            }
            Err(e) => Err(refused(&what(), e)),
        }
    }

    async fn by_natural_key_all(
        &self,
        inv: &ResolvedInvoice,
    ) -> Result<Vec<PurchaseInvoice>, SystemError> {
        Ok(self
            .bc
            .documents_by_natural_key(doc_set(inv), &inv.vendor_number, &inv.vendor_invoice_number)
            .await?)
    }

    /// After BC refused to post `draft`: the document it already holds posted under the same
    /// natural key, if any, with `draft` deleted. "In standard Business Central there is a
    /// check on double vendor invoice numbers, for the same vendor, when posting the invoice"
    /// (NORRIQ's BC Accelerator docs, "Extra Check on Invoice Creation: Vendor Invoice No.";
    /// the error reads "Purchase Invoice … already exists for this vendor"; the simulator does
    /// the same). Doubt: whether a company can switch that check off is not documented. That
    /// refusal is what keeps a first attempt, which does not look before it creates, from
    /// doubling a document keyed by hand or written by another ledger; the read it costs is
    /// spent only when a post is refused.
    async fn posted_before(
        &self,
        inv: &ResolvedInvoice,
        draft: &PurchaseInvoice,
    ) -> Result<Option<Written>, SystemError> {
        let existing = self
            .by_natural_key_all(inv)
            .await?
            .into_iter()
            .find(|d| d.id != draft.id && !d.is_draft());
        let Some(existing) = existing else {
            return Ok(None);
        };
        self.delete_duplicate(inv, &existing, draft).await?;
        Ok(Some(Written {
            number: existing.number.clone().unwrap_or_default(),
            id: existing.id,
            change: Change::AlreadyDone,
        }))
    }

    /// Deletes `new`, the draft this write made, because BC already had the document
    /// (`existing`) before this ledger wrote it.
    async fn delete_duplicate(
        &self,
        inv: &ResolvedInvoice,
        existing: &PurchaseInvoice,
        new: &PurchaseInvoice,
    ) -> Result<(), SystemError> {
        tracing::warn!(
            existing = %existing.id,
            "BC had this document before this ledger wrote it: the new draft is deleted"
        );
        self.bc
            .delete_document(doc_set(inv), &new.id, new.etag.as_deref().unwrap_or("*"))
            .await
            .map_err(|e| refused("deleting a duplicate draft", e))
    }

    /// Gives every line of a draft this attempt did not create (a resumed or found one) the
    /// dimension values it lacks: one read of the lines with their dimensions, then the missing
    /// ones in one snapshot `$batch`, so a retry never trips over "already exists". A draft
    /// created by this attempt got them in its deep insert and is not read.
    async fn ensure_dimensions(
        &self,
        set: DocSet,
        invoice_id: &str,
        inv: &ResolvedInvoice,
    ) -> Result<(), SystemError> {
        if inv.lines.iter().all(|l| l.dimensions.is_empty()) {
            return Ok(());
        }
        let bc = &self.bc;
        let mut bc_lines = bc
            .document_lines_with_dimensions(set, invoice_id)
            .await
            .map_err(|e| refused("the invoice lines", e))?;
        bc_lines.sort_by_key(|l| l.sequence.unwrap_or(i32::MAX));
        let mut adds: Vec<(String, String, String)> = Vec::new();
        for (i, line) in inv.lines.iter().enumerate() {
            if line.dimensions.is_empty() {
                continue;
            }
            let seq = (i as i32 + 1) * 10000;
            let Some(bc_line) = bc_lines
                .iter()
                .find(|l| l.sequence == Some(seq))
                .or_else(|| bc_lines.get(i))
            else {
                continue;
            };
            let have: Vec<&str> = bc_line
                .dimension_set_lines
                .iter()
                .flatten()
                .filter_map(|d| d.code.as_deref())
                .collect();
            for (code, value) in &line.dimensions {
                if !have.iter().any(|h| h.eq_ignore_ascii_case(code)) {
                    adds.push((bc_line.id.clone(), code.clone(), value.clone()));
                }
            }
        }
        if adds.is_empty() {
            return Ok(());
        }
        bc.add_document_line_dimensions(set, &adds)
            .await
            .map_err(|e| refused("the line dimensions", e))
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

    /// A first attempt (no earlier create recorded) does not look before it creates (issue
    /// #16: the ledger shows no earlier create). A retry, a take-over or an unsettled create
    /// looks first (`steps::write`).
    fn look_before_first_create(&self, _inv: &ResolvedInvoice) -> bool {
        false
    }

    /// The deep insert of header, lines and line dimensions (one atomic insert): on a first
    /// attempt, that alone; a document BC already holds posted under the natural key (keyed
    /// by hand, or by another ledger: a move from the embedded runtime to AWS, a restored
    /// database) is caught when BC refuses to post the second one (`posted_before`).
    ///
    /// With `look_up_on_first_create` (one more request of budget, not a round trip) the
    /// create is a `$batch` whose first operation reads the vendor's documents with this
    /// vendor invoice number: when it found one, the draft this request made is deleted
    /// before anything posts it, and the write goes on with what BC had (posted: nothing to
    /// do; a draft keyed by hand: completed and posted).
    ///
    /// Should BC refuse the dimensions nested in the lines (the multi-level deep insert rests
    /// on the AL source, not on a documented example: see
    /// `BcClient::create_document_with_dimensions`), the refused insert created nothing (it
    /// is atomic, and a 400 is BC's answer, not a lost one), so the draft is created again
    /// without them and finishing adds them (a read and one snapshot `$batch`): slower, never
    /// stuck. A refusal of the header or a line fails the second insert too, with BC's words.
    async fn create(&self, inv: &ResolvedInvoice) -> Result<PurchaseInvoice, SystemError> {
        let set = doc_set(inv);
        let what = || format!("the {}", set.noun());
        let dims: Vec<Vec<(String, String)>> =
            inv.lines.iter().map(|l| l.dimensions.clone()).collect();
        let draft = self.draft(inv);
        if !self.bc.look_up_on_first_create {
            // The default (issue #16): a first attempt trusts the ledger, the deep insert only.
            let created = self
                .bc
                .create_document_with_dimensions(set, &draft, &dims)
                .await;
            return self.created_or_fallback(inv, created).await;
        }
        let (found, created) = self
            .bc
            .find_and_create_document(set, &draft, &dims)
            .await
            .map_err(|e| refused(&what(), e))?;
        let found = match found {
            Ok(f) => f,
            // The read failed but not the batch: look on its own before going on, so a document
            // BC already had is never doubled.
            Err(_) => self.by_natural_key_all(inv).await?,
        };
        let ours = created.as_ref().ok().map(|d| d.id.clone());
        let mut others: Vec<PurchaseInvoice> = found
            .into_iter()
            .filter(|d| Some(&d.id) != ours.as_ref())
            .collect();
        others.sort_by_key(|d| d.is_draft());
        if let Some(mut existing) = others.into_iter().next() {
            if let Ok(new) = &created {
                self.delete_duplicate(inv, &existing, new).await?;
            }
            // Not made by this request: finishing completes a draft's dimensions.
            existing.dimensions_pending = true;
            return Ok(existing);
        }
        self.created_or_fallback(inv, created).await
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
        if !created || draft.dimensions_pending {
            self.ensure_dimensions(set, &draft.id, inv).await?;
        }
        let what = || {
            format!(
                "to post draft {}",
                draft.number.as_deref().unwrap_or(&draft.id)
            )
        };
        // The post and the read of the posted number (gotcha 3: the post renumbers, and
        // answers 204 without a body) in one round trip.
        let (post, read) = match self.bc.post_and_read(set, &draft.id).await {
            Ok(r) => r,
            // The envelope's answer is unknown or refused: the post may have happened. The
            // next attempt finds the document by its recorded id and reads what it is.
            Err(e) => return Err(refused(&what(), e)),
        };
        let Some(posted) = read.filter(|d| !d.is_draft()) else {
            // Still a draft (or gone): the post did not go through.
            return Err(match post {
                Err(e) => {
                    let refusal = refused(&what(), e);
                    if let SystemError::Rejected { .. } = refusal
                        && let Some(done) = self.posted_before(inv, &draft).await?
                    {
                        return Ok(done);
                    }
                    refusal
                }
                Ok(()) => SystemError::Transient {
                    message: format!(
                        "BC {} {} was posted but does not read as posted",
                        set.noun(),
                        draft.id
                    ),
                    retry_after: None,
                },
            });
        };
        // Posted, by this request or (post refused as "already posted") by an earlier attempt
        // whose answer was lost: either way this write is what put it there.
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

/// A new order line with its dimension values nested (a line deep insert, see
/// `BcClient::create_document_with_dimensions` for why BC takes it).
fn new_line_json(order: &ResolvedPurchaseOrder, l: &ResolvedOrderLine) -> serde_json::Value {
    let mut v = serde_json::to_value(new_line(order, l)).expect("a line serialises");
    if !l.dimensions.is_empty() {
        v["dimensionSetLines"] = super::documents::dimension_set_lines(&l.dimensions);
    }
    v
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

    /// What it takes to make BC's lines and their dimensions match the order: PATCH changed
    /// lines (with their entity tag), add new ones with their dimensions nested, delete removed
    /// ones, add missing dimension values and change changed ones (with the set line's tag).
    /// Lines whose fields and dimensions match cost nothing: `o` was read with its lines'
    /// dimensions expanded.
    fn line_changes(
        &self,
        order: &ResolvedPurchaseOrder,
        o: &PurchaseOrder,
    ) -> Result<Vec<BatchOp>, SystemError> {
        let have = lines_of(o);
        let lines_path = format!("purchaseOrders({})/purchaseOrderLines", o.id);
        let mut ops = Vec::new();
        for l in &order.lines {
            let want = new_line(order, l);
            let Some(h) = have.iter().find(|h| h.sequence == Some(want.sequence)) else {
                ops.push(BatchOp::post(
                    lines_path.clone(),
                    Some(new_line_json(order, l)),
                ));
                continue;
            };
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
                ops.push(BatchOp::patch(
                    format!("{lines_path}({})", h.id),
                    h.etag.as_deref().unwrap_or("*"),
                    serde_json::Value::Object(patch),
                ));
            }
            let dims_path = format!("purchaseOrderLines({})/dimensionSetLines", h.id);
            let current = h.dimension_set_lines.as_deref().unwrap_or_default();
            for (code, value) in &l.dimensions {
                let set_line = current.iter().find(|d| {
                    d.code
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case(code))
                });
                match set_line {
                    None => ops.push(BatchOp::post(
                        dims_path.clone(),
                        Some(serde_json::json!({ "code": code, "valueCode": value })),
                    )),
                    Some(d)
                        if !d
                            .value_code
                            .as_deref()
                            .is_some_and(|v| v.eq_ignore_ascii_case(value)) =>
                    {
                        let Some(dim_id) = d.id.as_deref() else {
                            return Err(SystemError::Malformed(format!(
                                "BC dimension set line {code} on line {} has no id",
                                l.line_num
                            )));
                        };
                        ops.push(BatchOp::patch(
                            format!("{dims_path}({dim_id})"),
                            d.etag.as_deref().unwrap_or("*"),
                            serde_json::json!({ "valueCode": value }),
                        ));
                    }
                    Some(_) => {}
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
                ops.push(BatchOp::delete(
                    format!("{lines_path}({})", h.id),
                    h.etag.as_deref().unwrap_or("*"),
                ));
            }
        }
        Ok(ops)
    }

    /// Applies the changes in snapshot `$batch`es of up to 100 operations (one round trip for
    /// an ordinary order): each batch all or nothing, so a refused change leaves the order as
    /// it was and the next attempt works out the difference again.
    async fn apply(&self, ops: &[BatchOp]) -> Result<(), SystemError> {
        for chunk in ops.chunks(MAX_BATCH_OPERATIONS) {
            let answers = self
                .bc
                .batch(chunk, true)
                .await
                .map_err(|e| refused("the changes to the order", e))?;
            // Rolled back because of another operation (424): the failing one says why.
            if let Some(a) = answers
                .iter()
                .find(|a| !a.is_success() && a.status != 424)
                .or_else(|| answers.iter().find(|a| !a.is_success()))
            {
                return Err(refused("the changes to the order", a.error()));
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

    /// Header, lines and line dimensions in one deep insert (one request, atomic).
    async fn create(&self, job: &OrderJob) -> Result<PurchaseOrder, SystemError> {
        let order = &job.order;
        let new = NewPurchaseOrder {
            vendor_number: order.vendor_number.clone(),
            order_date: order.order_date,
            currency_code: order.currency.to_string(),
            purchase_order_lines: Vec::new(),
        };
        let mut body = serde_json::to_value(&new).expect("an order serialises");
        body["purchaseOrderLines"] = serde_json::Value::Array(
            order
                .lines
                .iter()
                .map(|l| new_line_json(order, l))
                .collect(),
        );
        match self.bc.create_purchase_order_json(&body).await {
            Ok(o) => Ok(o),
            // As for invoices (`InvoiceWriter::create`): nested dimensions refused, nothing
            // created; again without them, and finishing adds them.
            Err(e)
                if answered_by_bc_400(&e)
                    && order.lines.iter().any(|l| !l.dimensions.is_empty()) =>
            {
                tracing::warn!(
                    error = %e,
                    "BC refused a deep insert with line dimensions; creating the order without them"
                );
                body["purchaseOrderLines"] = serde_json::Value::Array(
                    order
                        .lines
                        .iter()
                        .map(|l| serde_json::to_value(new_line(order, l)).expect("serialises"))
                        .collect(),
                );
                let mut o = self
                    .bc
                    .create_purchase_order_json(&body)
                    .await
                    .map_err(|e| refused("the purchase order", e))?;
                o.dimensions_pending = true;
                Ok(o)
            }
            Err(e) => Err(refused("the purchase order", e)),
        }
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
        if created && !o.dimensions_pending {
            // Lines and their dimensions came with the deep insert.
            return Ok(written(Change::Created));
        }
        if created {
            let fresh = self.bc.purchase_order(&o.id).await?.unwrap_or(o.clone());
            self.apply(&self.line_changes(order, &fresh)?).await?;
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
                // Found by its reference (a retry), the lines came without their dimensions:
                // read the order once more with them.
                let unread = lines_of(&o).iter().any(|l| l.dimension_set_lines.is_none());
                let reread = if unread && order.lines.iter().any(|l| !l.dimensions.is_empty()) {
                    self.bc.purchase_order(&o.id).await?
                } else {
                    None
                };
                let ops = self.line_changes(order, reread.as_ref().unwrap_or(&o))?;
                self.apply(&ops).await?;
                Ok(written(if ops.is_empty() {
                    Change::Unchanged
                } else {
                    Change::Updated
                }))
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
