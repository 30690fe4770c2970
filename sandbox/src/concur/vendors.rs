//! Invoice Vendor API v3.1 (concur.md §2.7.5): `GET` (exact search by `vendorCode` /
//! `addressCode`, `limit`/`offset`), `POST` create, `PUT` update, the collection under `Vendor`
//! (and `Items`), every record answered with its own `StatusList` in an HTTP 200.
//!
//! Strict (§2.7.5 [U]): no upsert — a POST of an existing (VendorCode, AddressCode) and a PUT
//! of an unknown one fail per item; one `VendorName` per `VendorCode`; `CountryCode` two upper
//! case letters, `CurrencyCode` three; `VendorCode` and `AddressCode` at most 32 characters.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ConcurSim, fis_error};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn same(a: &Value, b: &Value) -> bool {
    s(a, "VendorCode").eq_ignore_ascii_case(s(b, "VendorCode"))
        && s(a, "AddressCode").eq_ignore_ascii_case(s(b, "AddressCode"))
}

fn status(kind: &str, code: &str, message: &str, n: usize) -> Value {
    json!([{"Code": code, "Message": message, "RecordNumber": n, "Type": kind}])
}

impl ConcurSim {
    /// What the simulator holds of the invoice vendors.
    pub fn invoice_vendors(&self) -> Vec<Value> {
        self.inner.vendors.lock().unwrap().clone()
    }

    /// Vendor write requests received (POST and PUT).
    pub fn vendor_writes(&self) -> u64 {
        self.inner
            .vendor_writes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(super) fn vendors_get(
        &self,
        query: &std::collections::HashMap<String, String>,
    ) -> Response {
        let all = self.inner.vendors.lock().unwrap();
        let code = query.get("vendorCode").map(String::as_str);
        let address = query.get("addressCode").map(String::as_str);
        let limit: usize = query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(25)
            .clamp(1, 1000);
        let offset: usize = query
            .get("offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let found: Vec<Value> = all
            .iter()
            .filter(|v| code.is_none_or(|c| s(v, "VendorCode").eq_ignore_ascii_case(c)))
            .filter(|v| address.is_none_or(|a| s(v, "AddressCode").eq_ignore_ascii_case(a)))
            .cloned()
            .collect();
        let total = found.len();
        let page: Vec<Value> = found.into_iter().skip(offset).take(limit).collect();
        Json(json!({"Vendor": page, "Items": page, "TotalCount": total,
                    "NextPage": if offset + limit < total { Value::String(format!("offset={}", offset + limit)) } else { Value::Null }}))
        .into_response()
    }

    pub(super) fn vendors_write(&self, body: &Value, create: bool) -> Response {
        let Some(list) = body.get("Vendor").and_then(Value::as_array) else {
            return fis_error(StatusCode::BAD_REQUEST, "Vendor is required");
        };
        self.inner
            .vendor_writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut all = self.inner.vendors.lock().unwrap();
        let mut answered = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let n = i + 1;
            let mut out = v.clone();
            let code = s(v, "VendorCode");
            let address = s(v, "AddressCode");
            let country = s(v, "CountryCode");
            let currency = s(v, "CurrencyCode");
            let invalid = if code.is_empty() || code.chars().count() > 32 {
                Some("VendorCode is required (at most 32 characters)")
            } else if address.is_empty() || address.chars().count() > 32 {
                Some("AddressCode is required (at most 32 characters)")
            } else if country.len() != 2 || country != country.to_uppercase() {
                Some("CountryCode must be an upper-case ISO 3166-1 alpha-2 code")
            } else if currency.len() != 3 {
                Some("CurrencyCode is required")
            } else {
                None
            };
            let name_clash = all.iter().any(|x| {
                s(x, "VendorCode").eq_ignore_ascii_case(code)
                    && !s(x, "AddressCode").eq_ignore_ascii_case(address)
                    && s(x, "VendorName") != s(v, "VendorName")
            });
            let existing = all.iter().position(|x| same(x, v));
            let list = match (invalid, name_clash, existing, create) {
                (Some(why), ..) => status("ERROR", "INVALID", why, n),
                (None, true, ..) => status("ERROR", "NAME", "One VendorName per VendorCode", n),
                (None, false, Some(_), true) => {
                    status("ERROR", "EXISTS", "The vendor already exists", n)
                }
                (None, false, None, false) => {
                    status("ERROR", "NOT_FOUND", "The vendor does not exist", n)
                }
                (None, false, Some(at), false) => {
                    all[at] = v.clone();
                    status("SUCCESS", "OK", "Updated", n)
                }
                (None, false, None, true) => {
                    all.push(v.clone());
                    status("SUCCESS", "OK", "Created", n)
                }
            };
            out["StatusList"] = list;
            answered.push(out);
        }
        Json(json!({"Vendor": answered, "Items": answered, "RequestRunSummary": format!("{} record(s)", list.len()), "TotalCount": list.len()}))
            .into_response()
    }
}
