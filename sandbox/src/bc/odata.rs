//! OData plumbing: URL segments, system query options, ordering, server-driven paging
//! (business-central.md A3 "Paging"), `$expand`/`$select`.

use std::cmp::Ordering;

use base64::Engine;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::errors::{ApiError, ApiResult};
use super::filter::{self, Expr};
use super::schema::Entity;
use super::values::Scalar;

/// One path segment: `purchaseInvoices` or `purchaseInvoices(5d11…)`.
#[derive(Debug, PartialEq)]
pub(crate) struct Seg {
    pub name: String,
    pub key: Option<Uuid>,
}

/// Splits the decoded path below the API root. GUID keys are unquoted (A1); a quoted or
/// malformed key is a syntax error.
pub(crate) fn segments(rest: &str) -> ApiResult<Vec<Seg>> {
    rest.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s.find('(') {
            None => Ok(Seg {
                name: s.to_owned(),
                key: None,
            }),
            Some(i) => {
                let inner = s[i + 1..].strip_suffix(')').ok_or_else(ApiError::syntax)?;
                let key = Uuid::parse_str(inner).map_err(|_| ApiError::syntax())?;
                Ok(Seg {
                    name: s[..i].to_owned(),
                    key: Some(key),
                })
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
pub(crate) struct ExpandItem {
    pub name: String,
    pub nested: Vec<ExpandItem>,
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `purchaseInvoiceLines($expand=dimensionSetLines),dimensionSetLines`. Only nested
/// `$expand` is interpreted inside parentheses; other nested options are ignored.
pub(crate) fn parse_expand(s: &str) -> ApiResult<Vec<ExpandItem>> {
    split_top(s)
        .into_iter()
        .map(|item| {
            let item = item.trim();
            match item.find('(') {
                None if !item.is_empty() => Ok(ExpandItem {
                    name: item.to_owned(),
                    nested: Vec::new(),
                }),
                None => Err(ApiError::syntax()),
                Some(i) => {
                    let inner = item[i + 1..]
                        .strip_suffix(')')
                        .ok_or_else(ApiError::syntax)?;
                    let mut nested = Vec::new();
                    for opt in inner.split(';') {
                        if let Some(e) = opt.trim().strip_prefix("$expand=") {
                            nested = parse_expand(e)?;
                        }
                    }
                    Ok(ExpandItem {
                        name: item[..i].trim().to_owned(),
                        nested,
                    })
                }
            }
        })
        .collect()
}

fn no_property(entity: &Entity, name: &str) -> ApiError {
    ApiError::bad(
        "BadRequest_NotFound",
        format!(
            "Could not find a property named '{name}' on type 'Microsoft.NAV.{}'.",
            entity.type_name
        ),
    )
}

pub(crate) fn check_expand(entity: &Entity, items: &[ExpandItem]) -> ApiResult<()> {
    for it in items {
        if !entity.navigation.contains(&it.name.as_str()) {
            return Err(no_property(entity, &it.name));
        }
    }
    Ok(())
}

/// System query options of one request.
#[derive(Default)]
pub(crate) struct Options {
    pub filter: Option<Expr>,
    pub filter_text: Option<String>,
    pub top: Option<usize>,
    pub skip: Option<usize>,
    pub skiptoken: Option<String>,
    pub expand: Vec<ExpandItem>,
    pub select: Option<Vec<String>>,
    pub orderby: Vec<(String, bool)>,
    pub count: bool,
    pub company: Option<Uuid>,
}

pub(crate) fn parse_options(pairs: &[(String, String)]) -> ApiResult<Options> {
    let mut o = Options::default();
    for (k, v) in pairs {
        match k.as_str() {
            "$filter" => o.filter_text = Some(v.clone()),
            "$top" => o.top = Some(v.parse().map_err(|_| ApiError::syntax())?),
            "$skip" => o.skip = Some(v.parse().map_err(|_| ApiError::syntax())?),
            "$skiptoken" => o.skiptoken = Some(v.clone()),
            "$expand" => o.expand = parse_expand(v)?,
            "$select" => o.select = Some(v.split(',').map(|s| s.trim().to_owned()).collect()),
            "$orderby" => {
                for part in v.split(',') {
                    let mut words = part.split_whitespace();
                    let field = words.next().ok_or_else(ApiError::syntax)?.to_owned();
                    let desc = match words.next() {
                        None | Some("asc") => false,
                        Some("desc") => true,
                        Some(_) => return Err(ApiError::syntax()),
                    };
                    o.orderby.push((field, desc));
                }
            }
            "$count" => o.count = v == "true",
            "$schemaversion" | "$format" => {}
            "company" => o.company = Some(Uuid::parse_str(v).map_err(|_| ApiError::syntax())?),
            k if k.starts_with('$') => {
                return Err(ApiError::bad(
                    "BadRequest_NotFound",
                    format!("The query parameter '{k}' is not supported."),
                ));
            }
            // OData ignores custom query options.
            _ => {}
        }
    }
    Ok(o)
}

impl Options {
    /// Checks the options that depend on the entity set addressed.
    pub(crate) fn bind(&mut self, entity: &Entity) -> ApiResult<()> {
        if let Some(t) = &self.filter_text {
            self.filter = Some(filter::parse(t, entity)?);
        }
        for (f, _) in &self.orderby {
            if entity.field(f).is_none() {
                return Err(no_property(entity, f));
            }
        }
        if let Some(sel) = &self.select {
            for f in sel {
                if f != "*" && entity.field(f).is_none() && !entity.navigation.contains(&f.as_str())
                {
                    return Err(no_property(entity, f));
                }
            }
        }
        check_expand(entity, &self.expand)
    }

    /// Keeps only `$select`ed properties (plus annotations and expanded navigations).
    pub(crate) fn apply_select(&self, row: &mut Map<String, Value>) {
        let Some(sel) = &self.select else { return };
        if sel.iter().any(|s| s == "*") {
            return;
        }
        row.retain(|k, _| {
            k.starts_with('@') || sel.contains(k) || self.expand.iter().any(|e| &e.name == k)
        });
    }
}

/// One page of a collection, as decided by the paging rules.
pub(crate) struct Page {
    pub rows: Vec<Map<String, Value>>,
    pub count: usize,
    /// `$skiptoken` for the next page, when there is one.
    pub next_token: Option<String>,
}

fn sort_key(entity: &Entity, keys: &[(String, bool)], row: &Map<String, Value>) -> Vec<Scalar> {
    keys.iter()
        .map(|(f, _)| {
            let ty = entity
                .field(f)
                .map(|x| x.1)
                .unwrap_or(super::schema::Ty::Guid);
            Scalar::of_field(ty, row.get(f).unwrap_or(&Value::Null))
        })
        .collect()
}

fn cmp_keys(keys: &[(String, bool)], a: &[Scalar], b: &[Scalar]) -> Ordering {
    for (i, (_, desc)) in keys.iter().enumerate() {
        let o = a[i].sort_cmp(&b[i]);
        let o = if *desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Filters, orders and pages rendered rows. The skiptoken is opaque to clients but
/// key-based (the last row's sort key), like BC's: rows inserted or renumbered while a
/// client pages move relative to it just as they would on the real service.
pub(crate) fn page(
    entity: &Entity,
    opts: &Options,
    default_order: &[&str],
    rows: Vec<Map<String, Value>>,
    page_size: usize,
) -> ApiResult<Page> {
    let mut keys: Vec<(String, bool)> = opts.orderby.clone();
    for k in default_order.iter().chain(["id"].iter()) {
        if !keys.iter().any(|(f, _)| f == k) {
            keys.push(((*k).to_owned(), false));
        }
    }
    let mut rows: Vec<(Vec<Scalar>, Map<String, Value>)> = rows
        .into_iter()
        .filter(|r| opts.filter.as_ref().is_none_or(|f| f.eval(r)))
        .map(|r| (sort_key(entity, &keys, &r), r))
        .collect();
    rows.sort_by(|a, b| cmp_keys(&keys, &a.0, &b.0));
    let count = rows.len();
    if let Some(token) = &opts.skiptoken {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| ApiError::syntax())?;
        let raw: Vec<Value> = serde_json::from_slice(&bytes).map_err(|_| ApiError::syntax())?;
        if raw.len() != keys.len() {
            return Err(ApiError::syntax());
        }
        let mut m = Map::new();
        for ((f, _), v) in keys.iter().zip(raw) {
            m.insert(f.clone(), v);
        }
        let after = sort_key(entity, &keys, &m);
        rows.retain(|(k, _)| cmp_keys(&keys, k, &after) == Ordering::Greater);
    }
    let mut rest = rows.into_iter().skip(opts.skip.unwrap_or(0)).peekable();
    // microsoft/AL#6858 (A3, gotcha 1): with $top there is never a nextLink.
    let take = opts.top.map_or(page_size, |t| t.min(page_size));
    let mut out: Vec<(Vec<Scalar>, Map<String, Value>)> = Vec::new();
    while out.len() < take {
        match rest.next() {
            Some(r) => out.push(r),
            None => break,
        }
    }
    let more = rest.peek().is_some();
    let next_token = (more && opts.top.is_none()).then(|| {
        let last = &out
            .last()
            .expect("page is non-empty when more rows remain")
            .1;
        let raw: Vec<Value> = keys
            .iter()
            .map(|(f, _)| last.get(f).cloned().unwrap_or(Value::Null))
            .collect();
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&raw).expect("json"))
    });
    Ok(Page {
        rows: out.into_iter().map(|(_, r)| r).collect(),
        count,
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_keys_are_unquoted_and_quoted_ones_refused() {
        let g = Uuid::new_v4();
        let segs = segments(&format!("companies({g})/purchaseInvoices")).unwrap();
        assert_eq!(
            segs[0],
            Seg {
                name: "companies".into(),
                key: Some(g)
            }
        );
        assert!(segments(&format!("companies('{g}')")).is_err());
    }

    #[test]
    fn nested_expand_is_parsed() {
        let e = parse_expand("purchaseInvoiceLines($expand=dimensionSetLines),dimensionSetLines")
            .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].nested[0].name, "dimensionSetLines");
    }
}
