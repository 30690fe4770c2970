//! What each writable entity refuses or fills in on a write (d365-fo.md B4, B9). Where the
//! fact sheet is silent the stricter rule is chosen, and the doubt is named next to it.

use serde_json::Value;

use super::FoConfig;
use super::dims::{Combination, FormatKind};
use super::errors::{FoError, FoResult};
use super::schema::{self, EntitySet, HEADERS, INVOICE_JOUR, LINES, PO_HEADERS, PO_LINES, VENDORS};
use super::store::{Fields, Store, value_decimal};

/// Which display-string fields of which set are validated, and in which format (B5).
fn display_fields(set: &str) -> &'static [(&'static str, FormatKind)] {
    match set {
        HEADERS => &[("DimensionDisplayValue", FormatKind::Default)],
        LINES => &[
            ("MainAccountDisplayValue", FormatKind::Ledger),
            ("DimensionDisplayValue", FormatKind::Default),
        ],
        VENDORS => &[("DefaultLedgerDimensionDisplayValue", FormatKind::Default)],
        PO_HEADERS => &[("DefaultLedgerDimensionDisplayValue", FormatKind::Default)],
        PO_LINES => &[
            ("MainAccountIdDisplayValue", FormatKind::Ledger),
            ("DefaultLedgerDimensionDisplayValue", FormatKind::Default),
        ],
        _ => &[],
    }
}

/// Decimal fields: Edm.Decimal travels as a JSON number; a string is refused (stricter than
/// some OData servers, which accept IEEE754Compatible strings).
pub(crate) fn decimal_fields(set: &str) -> &'static [&'static str] {
    match set {
        LINES => &["NetAmount", "Amount", "UnitPrice", "ReceiveNow"],
        HEADERS => &[
            "ImportedAmount",
            "ExchangeRate",
            "CashDiscount",
            "TotalDiscount",
        ],
        PO_LINES => &["OrderedPurchaseQuantity", "PurchasePrice", "LineAmount"],
        _ => &[],
    }
}

/// DateTimeOffset fields (B4.3 note: dates travel as `...T00:00:00Z`).
fn date_fields(set: &str) -> &'static [&'static str] {
    match set {
        HEADERS => &["InvoiceDate", "Date", "DueDate", "CashDiscountDate"],
        LINES => &["InvoiceTransactionDate"],
        PO_HEADERS => &[
            "AccountingDate",
            "RequestedDeliveryDate",
            "ConfirmedDeliveryDate",
        ],
        PO_LINES => &["RequestedDeliveryDate"],
        _ => &[],
    }
}

fn s<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.get(k).and_then(Value::as_str).unwrap_or("")
}

/// B3's validation wording: "The value 'X' in field 'Y' is not found in the related table 'Z'."
fn not_in_related(set: &EntitySet, field: &str, label: &str, value: &str, table: &str) -> FoError {
    FoError::write_failed(
        set.aot,
        format!(
            "Warning: The value '{value}' in field '{label}' is not found in the related table '{table}'.; Warning: validateField failed on field '{}.{field}'.",
            set.aot
        ),
    )
}

fn must_fill(set: &EntitySet, label: &str) -> FoError {
    FoError::write_failed(
        set.aot,
        format!("Error: Field '{label}' must be filled in."),
    )
}

fn vendor_exists(store: &Store, company: &str, account: &str) -> bool {
    !store
        .rows_where(VENDORS, |r| {
            r.str("dataAreaId").eq_ignore_ascii_case(company)
                && r.str("VendorAccountNumber").eq_ignore_ascii_case(account)
        })
        .is_empty()
}

fn vendor_currency(store: &Store, company: &str, account: &str) -> String {
    store
        .rows_where(VENDORS, |r| {
            r.str("dataAreaId").eq_ignore_ascii_case(company)
                && r.str("VendorAccountNumber").eq_ignore_ascii_case(account)
        })
        .first()
        .map(|r| r.str("CurrencyCode").to_owned())
        .unwrap_or_default()
}

/// Validates and completes `fields` (a new row, or an existing row with the changes merged)
/// of `set` in `company` (lower-case).
pub(crate) fn check(
    store: &Store,
    cfg: &FoConfig,
    refused: &[Combination],
    set: &EntitySet,
    fields: &mut Fields,
    creating: bool,
) -> FoResult<()> {
    let company = s(fields, "dataAreaId").to_lowercase();
    for f in decimal_fields(set.name) {
        match fields.get(*f) {
            None | Some(Value::Null) => {}
            Some(v) if value_decimal(v).is_some() => {}
            Some(v) => {
                return Err(FoError::bad_request(format!(
                    "Cannot convert the literal '{v}' to the expected type 'Edm.Decimal' (property '{f}')."
                )));
            }
        }
    }
    for f in date_fields(set.name) {
        if let Some(Value::String(d)) = fields.get(*f)
            && chrono::DateTime::parse_from_rfc3339(d).is_err()
        {
            return Err(FoError::bad_request(format!(
                "Cannot convert the literal '{d}' to the expected type 'Edm.DateTimeOffset' (property '{f}')."
            )));
        }
    }
    match set.name {
        HEADERS => header(store, cfg, set, &company, fields, creating)?,
        LINES => line(store, set, &company, fields)?,
        VENDORS
            if s(fields, "VendorOrganizationName").is_empty()
                && s(fields, "PersonLastName").is_empty() =>
        {
            return Err(must_fill(set, "Name"));
        }
        PO_HEADERS => {
            let vendor = s(fields, "OrderVendorAccountNumber").to_owned();
            if vendor.is_empty() {
                return Err(must_fill(set, "Vendor account"));
            }
            if !vendor_exists(store, &company, &vendor) {
                return Err(not_in_related(
                    set,
                    "OrderVendorAccountNumber",
                    "Vendor account",
                    &vendor,
                    "Vendors",
                ));
            }
            if s(fields, "CurrencyCode").is_empty() {
                let c = vendor_currency(store, &company, &vendor);
                fields.insert("CurrencyCode".into(), c.into());
            }
            fields
                .entry("PurchaseOrderStatus")
                .or_insert_with(|| "Backorder".into());
            fields
                .entry("DocumentApprovalStatus")
                .or_insert_with(|| "Draft".into());
        }
        PO_LINES => {
            let po = s(fields, "PurchaseOrderNumber").to_owned();
            let exists = !store
                .rows_where(PO_HEADERS, |r| {
                    r.str("dataAreaId") == company && r.str("PurchaseOrderNumber") == po
                })
                .is_empty();
            if !exists {
                return Err(not_in_related(
                    set,
                    "PurchaseOrderNumber",
                    "Purchase order",
                    &po,
                    "Purchase orders",
                ));
            }
            if s(fields, "ItemNumber").is_empty()
                && s(fields, "ProcurementProductCategoryName").is_empty()
                && s(fields, "MainAccountIdDisplayValue").is_empty()
            {
                return Err(FoError::write_failed(
                    set.aot,
                    "Error: Item number or procurement category must be filled in.",
                ));
            }
        }
        _ => {}
    }
    for (field, kind) in display_fields(set.name) {
        let Some(Value::String(display)) = fields.get(*field).cloned() else {
            continue;
        };
        if display.is_empty() {
            continue;
        }
        let stored = store
            .validate_display(&cfg.dimensions, refused, &company, *kind, field, &display)
            .map_err(|infolog| FoError::write_failed(set.aot, infolog))?;
        fields.insert((*field).into(), stored.into());
    }
    Ok(())
}

fn header(
    store: &Store,
    cfg: &FoConfig,
    set: &EntitySet,
    company: &str,
    fields: &mut Fields,
    creating: bool,
) -> FoResult<()> {
    let number = s(fields, "InvoiceNumber").to_owned();
    if number.is_empty() {
        return Err(must_fill(set, "Invoice"));
    }
    // B9.3: no documented maximum; the strict assumption is 20 characters (configurable).
    if number.chars().count() > cfg.max_invoice_number_len {
        return Err(FoError::write_failed(
            set.aot,
            format!(
                "Error: The value '{number}' is too long for field 'Invoice' (at most {} characters).",
                cfg.max_invoice_number_len
            ),
        ));
    }
    let vendor = s(fields, "VendorAccount").to_owned();
    let invoice_account = s(fields, "InvoiceAccount").to_owned();
    if vendor.is_empty() && invoice_account.is_empty() {
        return Err(must_fill(set, "Vendor account"));
    }
    for (field, label, value) in [
        ("VendorAccount", "Vendor account", &vendor),
        ("InvoiceAccount", "Invoice account", &invoice_account),
    ] {
        if !value.is_empty() && !vendor_exists(store, company, value) {
            return Err(not_in_related(set, field, label, value, "Vendors"));
        }
    }
    let invoice_account = if invoice_account.is_empty() {
        fields.insert("InvoiceAccount".into(), vendor.clone().into());
        vendor.clone()
    } else {
        if vendor.is_empty() {
            fields.insert("VendorAccount".into(), invoice_account.clone().into());
        }
        invoice_account
    };
    if s(fields, "Currency").is_empty() {
        let c = vendor_currency(store, company, &invoice_account);
        fields.insert("Currency".into(), c.into());
    }
    // B4.1: a vendor invoice number may be used once per invoice account unless the
    // VENDINVOICEINUSERECOVERENABLE parameter is on. Doubt: the exact scope and wording of the
    // check are not in the fact sheet; we refuse a duplicate among pending and posted invoices
    // of the same company and invoice account (stricter), with our own words.
    if creating && !cfg.allow_duplicate_invoice_numbers {
        let pending = store
            .rows_where(HEADERS, |r| {
                r.str("dataAreaId") == company
                    && r.str("InvoiceAccount")
                        .eq_ignore_ascii_case(&invoice_account)
                    && r.str("InvoiceNumber").eq_ignore_ascii_case(&number)
            })
            .len();
        let posted = store
            .rows_where(INVOICE_JOUR, |r| {
                r.str("dataAreaId") == company
                    && r.str("InvoiceAccount")
                        .eq_ignore_ascii_case(&invoice_account)
                    && r.str("InvoiceId").eq_ignore_ascii_case(&number)
            })
            .len();
        if pending + posted > 0 {
            return Err(FoError::write_failed(
                set.aot,
                format!(
                    "Error: Invoice number '{number}' is already used for vendor account '{invoice_account}'."
                ),
            ));
        }
    }
    Ok(())
}

fn line(store: &Store, set: &EntitySet, company: &str, fields: &mut Fields) -> FoResult<()> {
    let reference = s(fields, "HeaderReference").to_owned();
    let header = store.rows_where(HEADERS, |r| {
        r.str("dataAreaId") == company && r.str("HeaderReference") == reference
    });
    // Headers before lines (no deep insert): a line whose header is not there is refused.
    let Some(header) = header.first() else {
        return Err(not_in_related(
            set,
            "HeaderReference",
            "Invoice header",
            &reference,
            "Pending vendor invoices",
        ));
    };
    let currency = s(fields, "Currency").to_owned();
    if currency.is_empty() {
        return Err(must_fill(set, "Currency"));
    }
    // B9.2: not stated; strict assumption — a line's currency is its header's.
    if !currency.eq_ignore_ascii_case(header.str("Currency")) {
        return Err(FoError::write_failed(
            set.aot,
            format!(
                "Error: Currency '{currency}' of the line differs from currency '{}' of invoice header '{reference}'.",
                header.str("Currency")
            ),
        ));
    }
    if s(fields, "ItemNumber").is_empty()
        && s(fields, "ProcurementCategoryName").is_empty()
        && s(fields, "MainAccountDisplayValue").is_empty()
    {
        return Err(FoError::write_failed(
            set.aot,
            "Error: Item number, procurement category or main account must be filled in.",
        ));
    }
    for f in ["VendorAccount", "InvoiceAccount"] {
        if s(fields, f).is_empty() {
            let v = header.str(f).to_owned();
            fields.insert(f.into(), v.into());
        }
    }
    Ok(())
}

/// A new row's key fields that a number sequence fills when omitted (B3: PurchaseOrderNumber);
/// every other key field must be given. B9.1: HeaderReference is never auto-numbered here
/// (whether F&O numbers it is [UNCONFIRMED]; the strict assumption is that it must be given).
pub(crate) fn fill_keys(store: &mut Store, set: &EntitySet, fields: &mut Fields) -> FoResult<()> {
    let company = s(fields, "dataAreaId").to_owned();
    if set.name == PO_HEADERS && s(fields, "PurchaseOrderNumber").is_empty() {
        let n = store.po_numbers.entry(company).or_insert(0);
        *n += 1;
        fields.insert("PurchaseOrderNumber".into(), format!("PO-{:06}", *n).into());
    }
    for (k, ty) in set.keys {
        let missing = match fields.get(*k) {
            None | Some(Value::Null) => true,
            Some(Value::String(v)) => v.is_empty(),
            Some(_) => false,
        };
        if missing {
            return Err(must_fill(set, k));
        }
        let ok = match ty {
            schema::KeyType::Str => fields[*k].is_string(),
            schema::KeyType::Int => fields[*k].is_u64(),
        };
        if !ok {
            return Err(FoError::bad_request(format!(
                "Property '{k}' has the wrong type."
            )));
        }
    }
    Ok(())
}
