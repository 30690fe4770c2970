//! Coupa query arguments: `<attribute>[<operator>]=<value>` filters plus paging and order.
//!
//! coupa.md §1.3: default operator is exact match; operators `contains`, `starts_with`,
//! `ends_with`, `gt`, `lt`, `gt_or_eq`, `lt_or_eq`, `not_eq`, `in`, `not_in`, `blank`;
//! nested attributes as `supplier[id]`; both `-` and `_` spellings of keys are in use.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// coupa.md §1.3 / §1.12.1: at most 50 results per page; larger limits are capped silently.
pub(crate) const MAX_LIMIT: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Int,
    Str,
    Time,
    Date,
    Bool,
}

/// A record's value for one filterable attribute.
#[derive(Clone, Debug)]
pub(crate) enum FieldVal {
    Int(i64),
    Str(Option<String>),
    Time(DateTime<Utc>),
    Date(NaiveDate),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    NotEq,
    Gt,
    GtOrEq,
    Lt,
    LtOrEq,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Blank,
}

fn op_named(name: &str) -> Option<Op> {
    Some(match name {
        "not_eq" => Op::NotEq,
        "gt" => Op::Gt,
        "gt_or_eq" => Op::GtOrEq,
        "lt" => Op::Lt,
        "lt_or_eq" => Op::LtOrEq,
        "in" => Op::In,
        "not_in" => Op::NotIn,
        "contains" => Op::Contains,
        "starts_with" => Op::StartsWith,
        "ends_with" => Op::EndsWith,
        "blank" => Op::Blank,
        _ => return None,
    })
}

#[derive(Clone, Debug)]
struct Cond {
    field: String,
    op: Op,
    /// One typed value per `,`-separated item for in/not_in, else exactly one.
    values: Vec<FieldVal>,
}

/// A parsed query: filters, paging and order.
#[derive(Debug)]
pub(crate) struct Query {
    conds: Vec<Cond>,
    pub limit: usize,
    pub offset: usize,
    pub order_by: String,
    pub descending: bool,
}

/// A rejected argument: (key, message) for the `{"errors":{key:[message]}}` body.
pub(crate) type ArgError = (String, String);

/// Splits `updated_at[gt_or_eq]` into the canonical attribute path `updated-at`
/// and the operator. Attribute names get `_`→`-`; operator names keep their underscores.
fn split_key(key: &str) -> Option<(String, Op)> {
    let (base, rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = rest;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        parts.push(&inner[..close]);
        rest = &inner[close + 1..];
    }
    let mut op = Op::Eq;
    if let Some(last) = parts.last()
        && let Some(o) = op_named(last)
    {
        op = o;
        parts.pop();
    }
    let mut field = base.replace('_', "-");
    for p in parts {
        field.push('[');
        field.push_str(&p.replace('_', "-"));
        field.push(']');
    }
    Some((field, op))
}

/// Parses a datetime filter value as an INSTANT: RFC 3339 with an offset or `Z`; a value
/// without offset (or a bare date, = midnight) is in the instance's offset.
/// A `+hh:mm` offset the client forgot to percent-encode arrives as a space and is
/// rejected (stricter than guessing).
pub(crate) fn parse_instant(s: &str, offset: FixedOffset) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    offset
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

fn parse_value(kind: Kind, raw: &str, offset: FixedOffset) -> Result<FieldVal, String> {
    match kind {
        Kind::Int => raw
            .trim()
            .parse()
            .map(FieldVal::Int)
            .map_err(|_| format!("'{raw}' is not an integer")),
        Kind::Str => Ok(FieldVal::Str(Some(raw.to_owned()))),
        Kind::Time => parse_instant(raw, offset)
            .map(FieldVal::Time)
            .ok_or_else(|| format!("'{raw}' is not a valid datetime")),
        Kind::Date => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .or_else(|| parse_instant(raw, offset).map(|t| t.with_timezone(&offset).date_naive()))
            .map(FieldVal::Date)
            .ok_or_else(|| format!("'{raw}' is not a valid date")),
        Kind::Bool => match raw {
            "true" => Ok(FieldVal::Bool(true)),
            "false" => Ok(FieldVal::Bool(false)),
            _ => Err(format!("'{raw}' is not a boolean")),
        },
    }
}

/// Parses the arguments against a resource's filterable attributes.
/// Unknown attributes are refused with 400 — stricter than Coupa, which (doubt: not
/// documented) may silently ignore them and return MORE rows than the client expects.
pub(crate) fn parse(
    pairs: &[(String, String)],
    schema: &[(&str, Kind)],
    sortable: &[&str],
    offset_tz: FixedOffset,
) -> Result<Query, ArgError> {
    let mut q = Query {
        conds: Vec::new(),
        limit: MAX_LIMIT,
        offset: 0,
        order_by: "id".into(),
        descending: false,
    };
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| (key.clone(), "must be an integer".to_owned()))?;
                if n < 0 {
                    return Err((key.clone(), "must not be negative".into()));
                }
                // Doubt: Coupa's answer to limit=0 is undocumented; we treat it as the default.
                q.limit = if n == 0 {
                    MAX_LIMIT
                } else {
                    (n as usize).min(MAX_LIMIT)
                };
            }
            "offset" => {
                q.offset = value
                    .parse()
                    .map_err(|_| (key.clone(), "must be a non-negative integer".to_owned()))?;
            }
            "order_by" | "order-by" => {
                let f = value.replace('_', "-");
                if !sortable.contains(&f.as_str()) {
                    return Err((key.clone(), format!("cannot order by '{value}'")));
                }
                q.order_by = f;
            }
            "dir" => match value.as_str() {
                "asc" => q.descending = false,
                "desc" => q.descending = true,
                _ => return Err((key.clone(), "must be asc or desc".into())),
            },
            // coupa.md §1.3: documented projection arguments. We always return the full
            // object, which is a superset of any projection a tolerant client asked for.
            "fields" | "return_object" | "return-object" => {}
            // The example query in §1.6 carries format=json; XML is not simulated.
            "format" if value == "json" => {}
            _ => {
                let (field, op) = split_key(key)
                    .ok_or_else(|| (key.clone(), "is not a valid filter".to_owned()))?;
                let kind = schema
                    .iter()
                    .find(|(f, _)| {
                        *f == field
                            || f.strip_suffix("[*]").is_some_and(|base| {
                                field.starts_with(&format!("{base}[")) && field.ends_with(']')
                            })
                    })
                    .map(|(_, k)| *k)
                    .ok_or_else(|| (key.clone(), "is not a valid filter".to_owned()))?;
                let text_only = matches!(op, Op::Contains | Op::StartsWith | Op::EndsWith);
                if text_only && kind != Kind::Str {
                    return Err((
                        key.clone(),
                        "operator not supported for this attribute".into(),
                    ));
                }
                let values = match op {
                    Op::In | Op::NotIn => value
                        .split(',')
                        .map(|v| parse_value(kind, v, offset_tz))
                        .collect::<Result<Vec<_>, _>>(),
                    Op::Blank => parse_value(Kind::Bool, value, offset_tz).map(|v| vec![v]),
                    _ => parse_value(kind, value, offset_tz).map(|v| vec![v]),
                }
                .map_err(|m| (key.clone(), m))?;
                q.conds.push(Cond { field, op, values });
            }
        }
    }
    Ok(q)
}

fn cmp(a: &FieldVal, b: &FieldVal) -> Option<Ordering> {
    match (a, b) {
        (FieldVal::Int(x), FieldVal::Int(y)) => Some(x.cmp(y)),
        (FieldVal::Str(Some(x)), FieldVal::Str(Some(y))) => Some(x.cmp(y)),
        (FieldVal::Time(x), FieldVal::Time(y)) => Some(x.cmp(y)),
        (FieldVal::Date(x), FieldVal::Date(y)) => Some(x.cmp(y)),
        (FieldVal::Bool(x), FieldVal::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn is_blank(v: &FieldVal) -> bool {
    matches!(v, FieldVal::Str(None)) || matches!(v, FieldVal::Str(Some(s)) if s.is_empty())
}

fn test(cond: &Cond, v: &FieldVal) -> bool {
    let first = &cond.values[0];
    let text = |f: fn(&str, &str) -> bool| match (v, first) {
        (FieldVal::Str(Some(a)), FieldVal::Str(Some(b))) => f(a, b),
        _ => false,
    };
    match cond.op {
        Op::Eq => cmp(v, first) == Some(Ordering::Equal),
        Op::NotEq => cmp(v, first) != Some(Ordering::Equal),
        Op::Gt => cmp(v, first) == Some(Ordering::Greater),
        Op::GtOrEq => matches!(cmp(v, first), Some(Ordering::Greater | Ordering::Equal)),
        Op::Lt => cmp(v, first) == Some(Ordering::Less),
        Op::LtOrEq => matches!(cmp(v, first), Some(Ordering::Less | Ordering::Equal)),
        Op::In => cond
            .values
            .iter()
            .any(|x| cmp(v, x) == Some(Ordering::Equal)),
        Op::NotIn => !cond
            .values
            .iter()
            .any(|x| cmp(v, x) == Some(Ordering::Equal)),
        Op::Contains => text(|a, b| a.contains(b)),
        Op::StartsWith => text(|a, b| a.starts_with(b)),
        Op::EndsWith => text(|a, b| a.ends_with(b)),
        Op::Blank => is_blank(v) == matches!(first, FieldVal::Bool(true)),
    }
}

impl Query {
    /// Different attributes AND together. Repeats of the same exact-match attribute
    /// (`status=a&status=b`) OR together — doubt: coupa.md §1.3 says it is not stated
    /// whether repeats OR or last-wins; OR is what Coupa's own example query implies.
    pub(crate) fn matches(&self, get: &dyn Fn(&str) -> FieldVal) -> bool {
        let mut eq_groups: Vec<(&str, bool)> = Vec::new();
        for c in &self.conds {
            let v = get(&c.field);
            let ok = test(c, &v);
            if c.op == Op::Eq {
                match eq_groups.iter_mut().find(|(f, _)| *f == c.field) {
                    Some(g) => g.1 |= ok,
                    None => eq_groups.push((&c.field, ok)),
                }
            } else if !ok {
                return false;
            }
        }
        eq_groups.iter().all(|(_, ok)| *ok)
    }

    /// Orders two records by the requested attribute, id as the tie-breaker.
    pub(crate) fn order(&self, a: (&FieldVal, i64), b: (&FieldVal, i64)) -> Ordering {
        let o = cmp(a.0, b.0).unwrap_or(Ordering::Equal).then(a.1.cmp(&b.1));
        if self.descending { o.reverse() } else { o }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> FixedOffset {
        FixedOffset::west_opt(7 * 3600).unwrap()
    }

    #[test]
    fn underscore_and_hyphen_keys_mean_the_same_attribute() {
        assert_eq!(
            split_key("updated_at[gt_or_eq]"),
            Some(("updated-at".into(), Op::GtOrEq))
        );
        assert_eq!(
            split_key("updated-at[gt_or_eq]"),
            Some(("updated-at".into(), Op::GtOrEq))
        );
        assert_eq!(
            split_key("supplier[id]"),
            Some(("supplier[id]".into(), Op::Eq))
        );
    }

    #[test]
    fn datetime_without_offset_is_read_in_the_instance_offset() {
        let a = parse_instant("2024-01-01T00:00:00", tz()).unwrap();
        let b = parse_instant("2024-01-01T07:00:00Z", tz()).unwrap();
        assert_eq!(a, b);
        assert!(parse_instant("2024-01-01T00:00:00 02:00", tz()).is_none());
    }
}
