//! The write side of the Coupa simulator: external purchase orders (coupa.md §1.8, §1.13.2),
//! invoices (§1.6, §1.13.4) and suppliers (§1.13.1), created and updated through the API.
//!
//! Scopes and the API-version header are checked by `api::guard` before these run. Every
//! body is validated whole before anything is stored; a refusal is 400 in Coupa's error shape.
//! What the fact sheet leaves open is settled the stricter way, with the doubt named in place.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::CoupaSim;
use super::api::{error, error_for};
use super::model::{Data, Invoice, Line, OrderLine, PurchaseOrder, Supplier, now_secs};

type Refusal = Box<Response>;

fn refuse(field: &str, message: &str) -> Refusal {
    Box::new(error_for(StatusCode::BAD_REQUEST, field, message))
}

fn object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "Request body must be a JSON object",
        ))),
    }
}

/// A key in either spelling (§1.3: hyphens in the docs, underscores in the arguments rule).
fn get<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key)
        .or_else(|| m.get(&key.replace('-', "_")))
        .filter(|v| !v.is_null())
}

fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    get(m, key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Money and quantities: decimal strings as Coupa renders them, or JSON numbers.
fn decimal(m: &Map<String, Value>, key: &str) -> Result<Option<Decimal>, Refusal> {
    match get(m, key) {
        None => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| refuse(key, "is not a number")),
        Some(Value::Number(n)) => n
            .to_string()
            .parse()
            .map(Some)
            .map_err(|_| refuse(key, "is not a number")),
        Some(_) => Err(refuse(key, "is not a number")),
    }
}

/// `currency: {code}`; required.
fn currency(m: &Map<String, Value>) -> Result<String, Refusal> {
    get(m, "currency")
        .and_then(Value::as_object)
        .and_then(|c| text(c, "code"))
        .filter(|c| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()))
        .ok_or_else(|| refuse("currency", "can't be blank"))
}

/// The supplier an object names by `id`, `number` or `name` (in that order of preference).
fn supplier_ref(d: &Data, m: &Map<String, Value>) -> Result<i64, Refusal> {
    let Some(s) = get(m, "supplier").and_then(Value::as_object) else {
        return Err(refuse("supplier", "can't be blank"));
    };
    let found = if let Some(id) = get(s, "id").and_then(Value::as_i64) {
        d.suppliers.get(&id).map(|s| s.id)
    } else if let Some(n) = text(s, "number") {
        d.suppliers
            .values()
            .find(|x| x.number.as_deref() == Some(n.as_str()))
            .map(|x| x.id)
    } else if let Some(n) = text(s, "name") {
        d.suppliers
            .values()
            .find(|x| x.name.eq_ignore_ascii_case(&n))
            .map(|x| x.id)
    } else {
        return Err(refuse("supplier", "can't be blank"));
    };
    found.ok_or_else(|| refuse("supplier", "is invalid"))
}

/// `account{segment-1..N}` or `account{code}` (segments joined with "-", §1.6).
fn account_segments(m: &Map<String, Value>) -> Vec<String> {
    let Some(a) = get(m, "account").and_then(Value::as_object) else {
        return Vec::new();
    };
    let segments: Vec<String> = (1..=20)
        .map_while(|i| text(a, &format!("segment-{i}")))
        .collect();
    if !segments.is_empty() {
        return segments;
    }
    text(a, "code")
        .map(|c| c.split('-').map(str::to_string).collect())
        .unwrap_or_default()
}

fn created(v: Value) -> Response {
    // §1.13.3: 201 on create.
    (StatusCode::CREATED, Json(v)).into_response()
}

// ---------------------------------------------------------------- purchase orders

/// One parsed `order-lines[]` element: (id, line-num, description, quantity, price, segments, uom).
struct OrderLineIn {
    id: Option<i64>,
    line_num: Option<u32>,
    description: String,
    quantity: Decimal,
    price: Decimal,
    segments: Vec<String>,
    uom: String,
}

fn order_lines(m: &Map<String, Value>, required: bool) -> Result<Vec<OrderLineIn>, Refusal> {
    let Some(lines) = get(m, "order-lines") else {
        return if required {
            Err(refuse("order-lines", "can't be blank"))
        } else {
            Ok(Vec::new())
        };
    };
    let Some(lines) = lines.as_array().filter(|a| !a.is_empty() || !required) else {
        return Err(refuse("order-lines", "can't be blank"));
    };
    let mut out = Vec::new();
    for l in lines {
        let Some(l) = l.as_object() else {
            return Err(refuse("order-lines", "elements must be objects"));
        };
        let (Some(quantity), Some(price)) = (decimal(l, "quantity")?, decimal(l, "price")?) else {
            return Err(refuse("order-lines", "quantity and price can't be blank"));
        };
        let Some(description) = text(l, "description") else {
            return Err(refuse("order-lines", "description can't be blank"));
        };
        out.push(OrderLineIn {
            id: get(l, "id").and_then(Value::as_i64),
            line_num: get(l, "line-num")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .map(|n| n as u32),
            description,
            quantity,
            price,
            segments: account_segments(l),
            uom: get(l, "uom")
                .and_then(Value::as_object)
                .and_then(|u| text(u, "code"))
                .unwrap_or_else(|| "EA".into()),
        });
    }
    Ok(out)
}

fn new_order_line(d: &mut Data, line_num: u32, l: OrderLineIn) -> OrderLine {
    let id = d.next_order_line_id;
    d.next_order_line_id += 1;
    if !l.segments.is_empty() {
        d.account_id(&l.segments.join("-"));
    }
    OrderLine {
        id,
        line_num,
        description: l.description,
        quantity: l.quantity,
        price: l.price,
        account_segments: l.segments,
        uom: l.uom,
    }
}

/// `POST /api/purchase_orders`: external POs only (§1.8: "Do not use for Coupa-based POs").
/// `po-number` is required, ≤ 20 characters and unique (§1.13.2, CSV loader rule): a second
/// create with the same number is refused, never a second PO.
pub(crate) async fn create_purchase_order(State(sim): State<CoupaSim>, body: Bytes) -> Response {
    match try_create_purchase_order(&sim, &body) {
        Ok(v) => created(v),
        Err(r) => *r,
    }
}

fn try_create_purchase_order(sim: &CoupaSim, body: &[u8]) -> Result<Value, Refusal> {
    let m = object(body)?;
    if text(&m, "type").as_deref() != Some("ExternalOrderHeader") {
        return Err(refuse(
            "type",
            "must be ExternalOrderHeader: only external purchase orders can be created through the API",
        ));
    }
    let po_number = text(&m, "po-number").ok_or_else(|| refuse("po-number", "can't be blank"))?;
    if po_number.chars().count() > 20 {
        return Err(refuse(
            "po-number",
            "is too long (maximum is 20 characters)",
        ));
    }
    let currency = currency(&m)?;
    let lines = order_lines(&m, true)?;
    let version = get(&m, "version").and_then(Value::as_i64).unwrap_or(1);
    let mut d = sim.inner.data.lock().unwrap();
    let supplier_id = supplier_ref(&d, &m)?;
    if d.purchase_orders
        .values()
        .any(|po| po.po_number == po_number)
    {
        return Err(refuse("po-number", "has already been taken"));
    }
    let id = d.next_po_id;
    d.next_po_id += 1;
    let mut stored = Vec::new();
    for (i, l) in lines.into_iter().enumerate() {
        let num = l.line_num.unwrap_or(i as u32 + 1);
        stored.push(new_order_line(&mut d, num, l));
    }
    let now = now_secs();
    d.purchase_orders.insert(
        id,
        PurchaseOrder {
            id,
            po_number,
            // §1.13.2: a created external PO is issued with a separate `issue` call; until then
            // Coupa shows it as a draft. Doubt: the exact status name; "draft" is in the enum.
            status: "draft".into(),
            version,
            supplier_id,
            currency,
            lines: stored,
            created_at: now,
            updated_at: now,
            exported: false,
            external: true,
            overrides: Vec::new(),
        },
    );
    Ok(d.render_purchase_order(&d.purchase_orders[&id], sim.inner.offset))
}

/// `PUT /api/purchase_orders/:id` (§1.13.2 strict assumption): lines matched by `id`, else
/// `line-num`; unmatched lines are added; omitted lines stay; `version` must not go down; each
/// accepted change bumps `version` and resets `exported`. Only external POs may be changed.
pub(crate) async fn update_purchase_order(
    State(sim): State<CoupaSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match try_update_purchase_order(&sim, &id, &body) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

fn try_update_purchase_order(sim: &CoupaSim, id: &str, body: &[u8]) -> Result<Value, Refusal> {
    let m = object(body)?;
    let mut d = sim.inner.data.lock().unwrap();
    let Some(po) = id
        .parse::<i64>()
        .ok()
        .and_then(|id| d.purchase_orders.get(&id))
    else {
        return Err(Box::new(error(StatusCode::NOT_FOUND, "Not found")));
    };
    let id = po.id;
    if !po.external {
        return Err(refuse(
            "base",
            "only external purchase orders can be changed through this API",
        ));
    }
    if matches!(po.status.as_str(), "cancelled" | "closed") {
        return Err(refuse(
            "status",
            &format!("a {} purchase order cannot be changed", po.status),
        ));
    }
    let current = po.version;
    let version = get(&m, "version").and_then(Value::as_i64);
    if version.is_some_and(|v| v < current) {
        return Err(refuse(
            "version",
            &format!("must be greater than or equal to {current}"),
        ));
    }
    if get(&m, "po-number")
        .and_then(Value::as_str)
        .is_some_and(|n| n != po.po_number)
    {
        return Err(refuse("po-number", "cannot be changed"));
    }
    let cur = match get(&m, "currency") {
        Some(_) => Some(currency(&m)?),
        None => None,
    };
    let lines = order_lines(&m, false)?;
    for l in &lines {
        if let Some(lid) = l.id
            && !d.purchase_orders[&id].lines.iter().any(|x| x.id == lid)
        {
            return Err(refuse(
                "order-lines",
                &format!("line id {lid} is not on this order"),
            ));
        }
    }
    for l in lines {
        let po = &d.purchase_orders[&id];
        let pos = po
            .lines
            .iter()
            .position(|x| Some(x.id) == l.id || (l.id.is_none() && Some(x.line_num) == l.line_num));
        match pos {
            Some(i) => {
                if !l.segments.is_empty() {
                    d.account_id(&l.segments.join("-"));
                }
                let line = &mut d.purchase_orders.get_mut(&id).expect("exists").lines[i];
                line.description = l.description;
                line.quantity = l.quantity;
                line.price = l.price;
                line.uom = l.uom;
                if !l.segments.is_empty() {
                    line.account_segments = l.segments;
                }
            }
            None => {
                let next = po.lines.iter().map(|x| x.line_num).max().unwrap_or(0) + 1;
                let num = l.line_num.unwrap_or(next);
                let new = new_order_line(&mut d, num, l);
                d.purchase_orders
                    .get_mut(&id)
                    .expect("exists")
                    .lines
                    .push(new);
            }
        }
    }
    let po = d.purchase_orders.get_mut(&id).expect("exists");
    if let Some(c) = cur {
        po.currency = c;
    }
    po.version = version.unwrap_or(current).max(current) + 1;
    po.exported = false;
    po.updated_at = now_secs();
    Ok(d.render_purchase_order(&d.purchase_orders[&id], sim.inner.offset))
}

/// `PUT /api/purchase_orders/:id/cancel` (§1.8 actions). A cancelled PO stays cancelled: a
/// repeat is answered with the PO as it is (the action's outcome already holds).
pub(crate) async fn cancel_purchase_order(
    State(sim): State<CoupaSim>,
    Path(id): Path<String>,
) -> Response {
    let mut d = sim.inner.data.lock().unwrap();
    let Some(po) = id
        .parse::<i64>()
        .ok()
        .and_then(|id| d.purchase_orders.get_mut(&id))
    else {
        return error(StatusCode::NOT_FOUND, "Not found");
    };
    if po.status != "cancelled" {
        po.status = "cancelled".into();
        po.version += 1;
        po.updated_at = now_secs();
    }
    let v = d.render_purchase_order(&d.purchase_orders[&po_id(&id)], sim.inner.offset);
    Json(v).into_response()
}

fn po_id(id: &str) -> i64 {
    id.parse().expect("checked by the caller")
}

// ---------------------------------------------------------------- invoices

/// §1.13.4: the duplicate refusal, in the `errors.request[]` form the real tool special-cases.
fn duplicate_invoice() -> Refusal {
    Box::new(
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"errors": {"request": [{"invoice-header": ["Invoice # has already been used for this supplier"]}]}})),
        )
            .into_response(),
    )
}

/// `POST /api/invoices`: supplier, `invoice-number`, `invoice-date`, `currency` and at least
/// one line are required; a line needs `description` and `price` (and `quantity` for an
/// `InvoiceQuantityLine`); a line naming a PO (`po-number` + `order-line-num`) must name a PO
/// line that exists, of the same supplier. A second invoice with the same number for the same
/// supplier is refused (§1.13.4). The invoice is created `pending_approval`: an invoice loaded
/// from an ERP still goes through Coupa's approvals (doubt: the status of an API-created
/// invoice is not in the sources; not `approved`, so it is never taken for an export).
pub(crate) async fn create_invoice(State(sim): State<CoupaSim>, body: Bytes) -> Response {
    match try_create_invoice(&sim, &body) {
        Ok(v) => created(v),
        Err(r) => *r,
    }
}

fn try_create_invoice(sim: &CoupaSim, body: &[u8]) -> Result<Value, Refusal> {
    let m = object(body)?;
    let number =
        text(&m, "invoice-number").ok_or_else(|| refuse("invoice-number", "can't be blank"))?;
    let date = text(&m, "invoice-date")
        .and_then(|s| NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok())
        .ok_or_else(|| refuse("invoice-date", "can't be blank"))?;
    let currency = currency(&m)?;
    let Some(lines) = get(&m, "invoice-lines")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        return Err(refuse("invoice-lines", "can't be blank"));
    };
    let mut d = sim.inner.data.lock().unwrap();
    let supplier_id = supplier_ref(&d, &m)?;
    if d.invoices
        .values()
        .any(|i| i.supplier_id == supplier_id && i.invoice_number.eq_ignore_ascii_case(&number))
    {
        return Err(duplicate_invoice());
    }
    let mut parsed = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(l) = l.as_object() else {
            return Err(refuse("invoice-lines", "elements must be objects"));
        };
        let description = text(l, "description")
            .ok_or_else(|| refuse("invoice-lines", "description can't be blank"))?;
        let price =
            decimal(l, "price")?.ok_or_else(|| refuse("invoice-lines", "price can't be blank"))?;
        let quantity = decimal(l, "quantity")?;
        let kind = text(l, "type").unwrap_or_else(|| {
            if quantity.is_some() {
                "InvoiceQuantityLine".into()
            } else {
                "InvoiceAmountLine".into()
            }
        });
        match kind.as_str() {
            "InvoiceQuantityLine" if quantity.is_none() => {
                return Err(refuse(
                    "invoice-lines",
                    "quantity can't be blank on a quantity line",
                ));
            }
            "InvoiceQuantityLine" | "InvoiceAmountLine" => {}
            _ => {
                return Err(refuse(
                    "invoice-lines",
                    "type must be InvoiceQuantityLine or InvoiceAmountLine",
                ));
            }
        }
        let po_number = text(l, "po-number");
        let order_line_num = get(l, "order-line-num")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .map(|n| n as u32);
        if let Some(po) = &po_number {
            let Some(order) = d.purchase_orders.values().find(|p| &p.po_number == po) else {
                return Err(refuse(
                    "invoice-lines",
                    &format!("PO number {po} was not found"),
                ));
            };
            if order.supplier_id != supplier_id {
                return Err(refuse(
                    "invoice-lines",
                    &format!("PO number {po} belongs to another supplier"),
                ));
            }
            if let Some(n) = order_line_num
                && !order.lines.iter().any(|x| x.line_num == n)
            {
                return Err(refuse("invoice-lines", &format!("PO {po} has no line {n}")));
            }
        }
        parsed.push(Line {
            id: 0,
            line_num: get(l, "line-num")
                .and_then(Value::as_i64)
                .unwrap_or(i as i64 + 1),
            description,
            quantity: if kind == "InvoiceAmountLine" {
                None
            } else {
                quantity
            },
            price,
            account_segments: account_segments(l),
            po_number,
            order_line_num,
            tax_amount: decimal(l, "tax-amount")?,
        });
    }
    // A header `tax-amount` without line taxes is spread on the first line, so the totals
    // render the same way whichever level the client put it on.
    if let Some(tax) = decimal(&m, "tax-amount")?
        && parsed.iter().all(|l| l.tax_amount.is_none())
        && !tax.is_zero()
    {
        parsed[0].tax_amount = Some(tax);
    }
    let id = d.next_invoice_id;
    d.next_invoice_id += 1;
    for l in &mut parsed {
        l.id = d.next_line_id;
        d.next_line_id += 1;
        if !l.account_segments.is_empty() {
            d.account_id(&l.account_segments.join("-"));
        }
    }
    let now = now_secs();
    d.invoices.insert(
        id,
        Invoice {
            id,
            supplier_id,
            invoice_number: number,
            invoice_date: date,
            currency,
            status: "pending_approval".into(),
            document_type: if get(&m, "is-credit-note").and_then(Value::as_bool) == Some(true) {
                "Credit Note".into()
            } else {
                "Invoice".into()
            },
            lines: parsed,
            created_at: now,
            updated_at: now,
            exported: false,
            last_exported_at: None,
            paid: false,
            payment_date: None,
            payment_notes: None,
            payments: Vec::new(),
        },
    );
    Ok(d.render_invoice(&d.invoices[&id], sim.inner.offset))
}

// ---------------------------------------------------------------- suppliers

/// What a supplier body sets: name; number and tax-id (outer `None`: not named, inner: cleared).
type SupplierChange = (
    Option<String>,
    Option<Option<String>>,
    Option<Option<String>>,
    Vec<(String, Option<String>)>,
);

/// §1.13.1 strict assumption: `name` required, ≤ 100, unique case-insensitively; `number`
/// optional but unique when present; `status` one of active, inactive, onboarding (only
/// `active` is modelled, so the others are refused here rather than silently ignored).
fn supplier_fields(
    d: &Data,
    m: &Map<String, Value>,
    this: Option<i64>,
    defined: &[String],
) -> Result<SupplierChange, Refusal> {
    let name = text(m, "name");
    if let Some(n) = &name {
        if n.chars().count() > 100 {
            return Err(refuse("name", "is too long (maximum is 100 characters)"));
        }
        if d.suppliers
            .values()
            .any(|s| Some(s.id) != this && s.name.eq_ignore_ascii_case(n))
        {
            return Err(refuse("name", "has already been taken"));
        }
    }
    let number = get(m, "number").map(|v| {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    if let Some(Some(n)) = &number
        && d.suppliers
            .values()
            .any(|s| Some(s.id) != this && s.number.as_deref() == Some(n.as_str()))
    {
        return Err(refuse("number", "has already been taken"));
    }
    if let Some(st) = text(m, "status") {
        if !matches!(st.as_str(), "active" | "inactive" | "onboarding") {
            return Err(refuse(
                "status",
                "Supplier status must be one of active, inactive, onboarding.",
            ));
        }
        if st != "active" {
            return Err(refuse(
                "status",
                "only active suppliers are modelled by this simulator",
            ));
        }
    }
    if let Some(pm) = text(m, "po-method")
        && !matches!(
            pm.as_str(),
            "cxml" | "xml" | "email" | "integration" | "prompt" | "buy_online"
        )
    {
        return Err(refuse(
            "po-method",
            "PO method must be one of cxml, xml, email, integration, prompt or buy_online.",
        ));
    }
    let tax_id = get(m, "tax-id").map(|v| v.as_str().map(str::to_string));
    let mut custom = Vec::new();
    if let Some(v) = get(m, "custom-fields") {
        let Some(fields) = v.as_object() else {
            return Err(refuse("custom-fields", "must be an object"));
        };
        for (k, v) in fields {
            let name = k.replace('_', "-");
            if !defined.contains(&name) {
                // [U] message invented: the field must be defined on suppliers.
                return Err(refuse(
                    "custom-fields",
                    &format!("'{k}' is not a custom field of suppliers"),
                ));
            }
            let value = match v {
                Value::Null => None,
                Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
                _ => return Err(refuse("custom-fields", &format!("'{k}' must be text"))),
            };
            custom.push((name, value));
        }
    }
    Ok((name, number, tax_id, custom))
}

/// `POST /api/suppliers` → 201 (§1.13.1).
pub(crate) async fn create_supplier(State(sim): State<CoupaSim>, body: Bytes) -> Response {
    let m = match object(&body) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let mut d = sim.inner.data.lock().unwrap();
    let defined = &sim.inner.cfg.supplier_custom_fields;
    let (name, number, tax_id, custom) = match supplier_fields(&d, &m, None, defined) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let Some(name) = name else {
        return *refuse("name", "can't be blank");
    };
    let id = d.next_supplier_id;
    d.next_supplier_id += 1;
    let now = now_secs();
    d.suppliers.insert(
        id,
        Supplier {
            id,
            name,
            number: number.flatten(),
            tax_id: tax_id.flatten(),
            custom_fields: custom
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            created_at: now,
            updated_at: now,
        },
    );
    created(d.render_supplier(&d.suppliers[&id], sim.inner.offset))
}

/// `PUT /api/suppliers/:id` → 200; a partial body changes only what it names (§1.13.1).
pub(crate) async fn update_supplier(
    State(sim): State<CoupaSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let m = match object(&body) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let mut d = sim.inner.data.lock().unwrap();
    let Some(id) = id
        .parse::<i64>()
        .ok()
        .filter(|id| d.suppliers.contains_key(id))
    else {
        return error(StatusCode::NOT_FOUND, "Not found");
    };
    let defined = &sim.inner.cfg.supplier_custom_fields;
    let (name, number, tax_id, custom) = match supplier_fields(&d, &m, Some(id), defined) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let s = d.suppliers.get_mut(&id).expect("checked");
    if let Some(n) = name {
        s.name = n;
    }
    if let Some(n) = number {
        s.number = n;
    }
    if let Some(t) = tax_id {
        s.tax_id = t;
    }
    for (k, v) in custom {
        match v {
            Some(v) => s.custom_fields.insert(k, v),
            None => s.custom_fields.remove(&k),
        };
    }
    s.updated_at = now_secs();
    Json(d.render_supplier(&d.suppliers[&id], sim.inner.offset)).into_response()
}
