//! The OData subset F&O serves (d365-fo.md B2, gotcha 12): key segments with every key field
//! named, and `$filter` with `eq ne gt ge lt le and or not` and grouping; `eq '*x*'` is F&O's
//! "contains"; enums as `Microsoft.Dynamics.DataEntities.<Enum>'<Value>'`; `in` and `has` are
//! refused. Property names are case-sensitive.

use std::cmp::Ordering;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use super::errors::{FoError, FoResult};
use super::schema::{EntitySet, KeyType};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(Decimal),
    Bool(bool),
    Null,
    /// A date-time literal (unquoted), kept as given and compared as an instant.
    DateTime(chrono::DateTime<chrono::FixedOffset>),
    /// `Microsoft.Dynamics.DataEntities.NoYes'Yes'` → "Yes".
    Enum(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Lit(Literal),
    Open,
    Close,
    Comma,
    Equals,
}

fn tokenize(s: &str) -> FoResult<Vec<Tok>> {
    let bad = |m: &str| FoError::bad_request(format!("Syntax error in '{s}': {m}."));
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let read_quoted = |i: &mut usize| -> FoResult<String> {
        // chars[*i] is the opening quote; '' inside is one quote.
        let mut v = String::new();
        *i += 1;
        loop {
            match chars.get(*i) {
                None => return Err(bad("unterminated string literal")),
                Some('\'') if chars.get(*i + 1) == Some(&'\'') => {
                    v.push('\'');
                    *i += 2;
                }
                Some('\'') => {
                    *i += 1;
                    return Ok(v);
                }
                Some(c) => {
                    v.push(*c);
                    *i += 1;
                }
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '=' => {
                out.push(Tok::Equals);
                i += 1;
            }
            '\'' => out.push(Tok::Lit(Literal::Str(read_quoted(&mut i)?))),
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                while i < chars.len() && !matches!(chars[i], ' ' | ')' | ',') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let lit = if let Ok(d) = Decimal::from_str(&text) {
                    Literal::Num(d)
                } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&text) {
                    Literal::DateTime(t)
                } else {
                    return Err(bad(&format!("'{text}' is not a literal")));
                };
                out.push(Tok::Lit(lit));
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '-'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if chars.get(i) == Some(&'\'') {
                    if !word.starts_with("Microsoft.Dynamics.DataEntities.") {
                        return Err(bad(&format!("unknown enum type '{word}'")));
                    }
                    out.push(Tok::Lit(Literal::Enum(read_quoted(&mut i)?)));
                } else {
                    out.push(match word.as_str() {
                        "true" => Tok::Lit(Literal::Bool(true)),
                        "false" => Tok::Lit(Literal::Bool(false)),
                        "null" => Tok::Lit(Literal::Null),
                        _ => Tok::Ident(word),
                    });
                }
            }
            other => return Err(bad(&format!("unexpected '{other}'"))),
        }
    }
    Ok(out)
}

/// The key of a by-key URL: every key field, named (B1: "all fields in the entity key must be
/// provided"). Returns the values in the set's key order.
pub(crate) fn parse_key(set: &EntitySet, inside: &str) -> FoResult<Vec<Value>> {
    let toks = tokenize(inside)?;
    let mut given: Vec<(String, Literal)> = Vec::new();
    let mut it = toks.into_iter().peekable();
    loop {
        match (it.next(), it.next(), it.next()) {
            (Some(Tok::Ident(name)), Some(Tok::Equals), Some(Tok::Lit(lit))) => {
                given.push((name, lit))
            }
            _ => {
                return Err(FoError::bad_request(format!(
                    "The key segment '({inside})' is not valid: every key property must be named (Name='value')."
                )));
            }
        }
        match it.next() {
            None => break,
            Some(Tok::Comma) => continue,
            Some(_) => {
                return Err(FoError::bad_request(format!(
                    "Bad key segment '({inside})'."
                )));
            }
        }
    }
    if given.len() != set.keys.len() {
        return Err(FoError::bad_request(format!(
            "The number of keys specified in the URI does not match number of key properties for the resource '{}'.",
            set.name
        )));
    }
    set.keys
        .iter()
        .map(|(k, ty)| {
            let lit = given
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, l)| l)
                .ok_or_else(|| {
                    FoError::bad_request(format!(
                        "Key property '{k}' of '{}' is missing from the URI.",
                        set.name
                    ))
                })?;
            match (ty, lit) {
                (KeyType::Str, Literal::Str(s)) => Ok(Value::String(s.clone())),
                (KeyType::Int, Literal::Num(n)) => Ok(crate::fo::store::decimal_value(*n)),
                _ => Err(FoError::bad_request(format!(
                    "Key property '{k}' has the wrong type."
                ))),
            }
        })
        .collect()
}

#[derive(Debug)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Cmp(String, Op, Literal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

pub(crate) fn parse_filter(set: &EntitySet, text: &str) -> FoResult<Filter> {
    let toks = tokenize(text)?;
    let mut p = Parser { toks, pos: 0, set };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(FoError::bad_request(format!(
            "Syntax error at position {} in '{text}'.",
            p.pos
        )));
    }
    Ok(f)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    set: &'a EntitySet,
}

impl Parser<'_> {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(x)) if x == w)
    }

    fn or(&mut self) -> FoResult<Filter> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> FoResult<Filter> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> FoResult<Filter> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let f = self.or()?;
            if self.toks.get(self.pos) != Some(&Tok::Close) {
                return Err(FoError::bad_request("Syntax error: ')' expected."));
            }
            self.pos += 1;
            return Ok(f);
        }
        let Some(Tok::Ident(field)) = self.toks.get(self.pos).cloned() else {
            return Err(FoError::bad_request(
                "Syntax error: a property name expected.",
            ));
        };
        if !self.set.has_field(&field) {
            return Err(FoError::bad_request(format!(
                "Could not find a property named '{field}' on type 'Microsoft.Dynamics.DataEntities.{}'.",
                self.set.aot.trim_end_matches("Entity")
            )));
        }
        let op = match self.toks.get(self.pos + 1) {
            Some(Tok::Ident(o)) => match o.as_str() {
                "eq" => Op::Eq,
                "ne" => Op::Ne,
                "gt" => Op::Gt,
                "ge" => Op::Ge,
                "lt" => Op::Lt,
                "le" => Op::Le,
                // Gotcha 12: F&O supports neither.
                "in" | "has" => {
                    return Err(FoError::bad_request(format!(
                        "The query specified in the URI is not valid. The '{o}' operator is not supported."
                    )));
                }
                other => {
                    return Err(FoError::bad_request(format!(
                        "Syntax error: unknown operator '{other}'."
                    )));
                }
            },
            _ => return Err(FoError::bad_request("Syntax error: an operator expected.")),
        };
        let Some(Tok::Lit(lit)) = self.toks.get(self.pos + 2).cloned() else {
            return Err(FoError::bad_request("Syntax error: a literal expected."));
        };
        self.pos += 3;
        Ok(Filter::Cmp(field, op, lit))
    }
}

/// F&O's "contains": `*` in an `eq` string literal is a wildcard (B2).
fn wildcard_eq(pattern: &str, value: &str) -> bool {
    let (p, v) = (pattern.to_lowercase(), value.to_lowercase());
    if !p.contains('*') {
        return p == v;
    }
    let parts: Vec<&str> = p.split('*').collect();
    let mut rest = v.as_str();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

fn compare(field: &Value, lit: &Literal) -> Option<Ordering> {
    match (field, lit) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (_, Literal::Null) | (Value::Null, _) => None,
        // SQL Server's default collation: case-insensitive.
        (Value::String(s), Literal::Str(l) | Literal::Enum(l)) => {
            Some(s.to_lowercase().cmp(&l.to_lowercase()))
        }
        (Value::String(s), Literal::DateTime(l)) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.cmp(l)),
        (Value::Number(n), Literal::Num(l)) => {
            Decimal::from_str(&n.to_string()).ok().map(|d| d.cmp(l))
        }
        (Value::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        _ => None,
    }
}

impl Filter {
    pub(crate) fn matches(&self, row: &serde_json::Map<String, Value>) -> bool {
        match self {
            Filter::And(a, b) => a.matches(row) && b.matches(row),
            Filter::Or(a, b) => a.matches(row) || b.matches(row),
            Filter::Not(a) => !a.matches(row),
            Filter::Cmp(field, op, lit) => {
                let v = row.get(field).unwrap_or(&Value::Null);
                if let (Op::Eq | Op::Ne, Value::String(s), Literal::Str(p)) = (op, v, lit) {
                    return wildcard_eq(p, s) == (*op == Op::Eq);
                }
                match compare(v, lit) {
                    None => *op == Op::Ne,
                    Some(o) => match op {
                        Op::Eq => o == Ordering::Equal,
                        Op::Ne => o != Ordering::Equal,
                        Op::Gt => o == Ordering::Greater,
                        Op::Ge => o != Ordering::Less,
                        Op::Lt => o == Ordering::Less,
                        Op::Le => o != Ordering::Greater,
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fo::schema;

    #[test]
    fn wildcards_are_contains_starts_and_ends() {
        assert!(wildcard_eq("*retail*", "Big Retail Co"));
        assert!(wildcard_eq("inv*", "INV-1"));
        assert!(!wildcard_eq("*x", "xa"));
        assert!(wildcard_eq("abc", "ABC"));
    }

    #[test]
    fn in_is_refused_and_unknown_properties_too() {
        let set = schema::set(schema::HEADERS).unwrap();
        assert!(parse_filter(set, "InvoiceNumber in ('a')").is_err());
        assert!(parse_filter(set, "invoiceNumber eq 'a'").is_err());
        let f = parse_filter(
            set,
            "(dataAreaId eq 'usmf' and InvoiceNumber eq 'O''B') or IsOnHold eq Microsoft.Dynamics.DataEntities.NoYes'Yes'",
        )
        .unwrap();
        let row = serde_json::json!({"dataAreaId":"usmf","InvoiceNumber":"O'B"});
        assert!(f.matches(row.as_object().unwrap()));
    }
}
