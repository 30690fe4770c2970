//! Rows of every entity set, kept in key order (so a continuation can resume after the last
//! key served and a set that changes between pages never skips a row), with a version per
//! row for its entity tag.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use base64::Engine;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::schema::{EntitySet, KeyType, SETS};

pub(crate) type Fields = Map<String, Value>;

#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub fields: Fields,
    pub version: u64,
    pub recid: i64,
}

impl Row {
    /// B3: `W/"<base64 of 'version,RecId'>"` (community observation of the real format).
    pub(crate) fn etag(&self) -> String {
        let raw = format!("'{},{}'", self.version, self.recid);
        format!(
            "W/\"{}\"",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The row as F&O answers it: `@odata.etag` first, then the fields.
    pub(crate) fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("@odata.etag".into(), Value::String(self.etag()));
        for (k, v) in &self.fields {
            out.insert(k.clone(), v.clone());
        }
        Value::Object(out)
    }

    pub(crate) fn str(&self, k: &str) -> &str {
        self.fields.get(k).and_then(Value::as_str).unwrap_or("")
    }

    pub(crate) fn dec(&self, k: &str) -> Decimal {
        self.fields
            .get(k)
            .and_then(value_decimal)
            .unwrap_or_default()
    }
}

/// A JSON number (Edm.Decimal) holding exactly `d`.
pub(crate) fn decimal_value(d: Decimal) -> Value {
    Value::Number(serde_json::Number::from_str(&d.normalize().to_string()).expect("a number"))
}

pub(crate) fn value_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        _ => None,
    }
}

/// One legal entity (company).
#[derive(Clone, Debug)]
pub(crate) struct Company {
    pub id: String,
    pub chart: String,
}

/// The key of a row as one sortable string: key values in order, lower-cased `dataAreaId`
/// (B7: compared case-insensitively), numbers zero-padded.
pub(crate) fn key_string(set: &EntitySet, values: &[Value]) -> String {
    set.keys
        .iter()
        .zip(values)
        .map(|((name, ty), v)| match (ty, v) {
            (KeyType::Int, v) => format!("{:020}", value_decimal(v).unwrap_or_default()),
            (KeyType::Str, Value::String(s)) if *name == "dataAreaId" => s.to_lowercase(),
            (KeyType::Str, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

pub(crate) fn key_of(set: &EntitySet, fields: &Fields) -> String {
    let values: Vec<Value> = set
        .keys
        .iter()
        .map(|(k, _)| fields.get(*k).cloned().unwrap_or(Value::Null))
        .collect();
    key_string(set, &values)
}

#[derive(Default)]
pub(crate) struct Store {
    pub tables: HashMap<&'static str, BTreeMap<String, Row>>,
    pub companies: Vec<Company>,
    next_recid: i64,
    /// Purchase order number sequence per company.
    pub po_numbers: HashMap<String, u64>,
    pub vouchers: u64,
}

impl Store {
    pub(crate) fn new() -> Self {
        let mut s = Store {
            next_recid: 5637144576,
            ..Default::default()
        };
        for set in SETS {
            s.tables.insert(set.name, BTreeMap::new());
        }
        s
    }

    pub(crate) fn table(&self, set: &str) -> &BTreeMap<String, Row> {
        &self.tables[set]
    }

    pub(crate) fn table_mut(&mut self, set: &str) -> &mut BTreeMap<String, Row> {
        self.tables.get_mut(set).expect("known set")
    }

    pub(crate) fn company(&self, id: &str) -> Option<&Company> {
        self.companies
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(id))
    }

    pub(crate) fn next_recid(&mut self) -> i64 {
        self.next_recid += 1;
        self.next_recid
    }

    /// Inserts a new row (version 1); the caller checked the key is free.
    pub(crate) fn insert(&mut self, set: &EntitySet, fields: Fields) -> Row {
        let row = Row {
            fields,
            version: 1,
            recid: self.next_recid(),
        };
        let key = key_of(set, &row.fields);
        self.table_mut(set.name).insert(key, row.clone());
        row
    }

    /// Rows of a set matching `pred`.
    pub(crate) fn rows_where(&self, set: &str, pred: impl Fn(&Row) -> bool) -> Vec<&Row> {
        self.table(set).values().filter(|r| pred(r)).collect()
    }
}
