//! A small OData `$filter` parser and evaluator (business-central.md A3 "Filtering").
//!
//! Grammar: `expr := and ('or' and)*`, `and := unary ('and' unary)*`,
//! `unary := '(' expr ')' | 'not' unary | func '(' field ',' literal ')' | field op literal`.
//! Literals: `'text'` (with `''` for a quote), unquoted DateTimeOffset / Date / GUID,
//! numbers, true/false/null. `or` is allowed on ONE field only — BC refuses `or` across
//! fields with a documented message (A3, gotcha 7).

use chrono::{DateTime, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::errors::{ApiError, ApiResult};
use super::schema::{Entity, Ty};
use super::values::Scalar;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Func {
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        field: String,
        ty: Ty,
        op: Cmp,
        value: Scalar,
    },
    Call {
        func: Func,
        field: String,
        ty: Ty,
        value: String,
    },
}

#[derive(Debug, PartialEq, Clone)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Str(String),
    Word(String),
}

fn tokenize(s: &str) -> ApiResult<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(ApiError::syntax()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(text));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | ',' | '\'')
                {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

/// Reads an unquoted literal: GUID, DateTimeOffset, Date, number, boolean or null.
fn bare_literal(w: &str) -> ApiResult<Scalar> {
    match w {
        "true" => return Ok(Scalar::Bool(true)),
        "false" => return Ok(Scalar::Bool(false)),
        "null" => return Ok(Scalar::Null),
        _ => {}
    }
    if w.len() == 36
        && let Ok(g) = Uuid::parse_str(w)
    {
        return Ok(Scalar::Guid(g));
    }
    if w.contains('T') {
        // A DateTimeOffset needs its offset (`Z` or `±hh:mm`); an unencoded `+` arrives as a
        // space and fails here, as it would on the real service.
        return DateTime::parse_from_rfc3339(w)
            .map(|t| Scalar::DateTime(t.to_utc()))
            .map_err(|_| ApiError::syntax());
    }
    if let Ok(d) = NaiveDate::parse_from_str(w, "%Y-%m-%d") {
        return Ok(Scalar::Date(d));
    }
    let digits = w.trim_end_matches(['m', 'M', 'l', 'L', 'd', 'D']);
    digits
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(digits))
        .map(Scalar::Num)
        .map_err(|_| ApiError::syntax())
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    entity: &'a Entity,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> ApiResult<Tok> {
        let t = self
            .toks
            .get(self.pos)
            .cloned()
            .ok_or_else(ApiError::syntax)?;
        self.pos += 1;
        Ok(t)
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == k)
    }

    fn field(&self, name: &str) -> ApiResult<Ty> {
        self.entity.field(name).map(|f| f.1).ok_or_else(|| {
            ApiError::bad(
                "BadRequest_NotFound",
                format!(
                    "Could not find a property named '{name}' on type 'Microsoft.NAV.{}'.",
                    self.entity.type_name
                ),
            )
        })
    }

    fn expr(&mut self) -> ApiResult<Expr> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> ApiResult<Expr> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> ApiResult<Expr> {
        match self.next()? {
            Tok::LParen => {
                let e = self.expr()?;
                match self.next()? {
                    Tok::RParen => Ok(e),
                    _ => Err(ApiError::syntax()),
                }
            }
            Tok::Word(w) if w == "not" => Ok(Expr::Not(Box::new(self.unary()?))),
            Tok::Word(w) if matches!(self.peek(), Some(Tok::LParen)) => {
                let func = match w.as_str() {
                    "startswith" => Func::StartsWith,
                    "endswith" => Func::EndsWith,
                    "contains" => Func::Contains,
                    _ => return Err(ApiError::syntax()),
                };
                self.pos += 1;
                let Tok::Word(field) = self.next()? else {
                    return Err(ApiError::syntax());
                };
                let ty = self.field(&field)?;
                if self.next()? != Tok::Comma {
                    return Err(ApiError::syntax());
                }
                let Tok::Str(value) = self.next()? else {
                    return Err(ApiError::syntax());
                };
                if self.next()? != Tok::RParen {
                    return Err(ApiError::syntax());
                }
                Ok(Expr::Call {
                    func,
                    field,
                    ty,
                    value,
                })
            }
            Tok::Word(field) => {
                let ty = self.field(&field)?;
                let Tok::Word(op) = self.next()? else {
                    return Err(ApiError::syntax());
                };
                let op = match op.as_str() {
                    "eq" => Cmp::Eq,
                    "ne" => Cmp::Ne,
                    "gt" => Cmp::Gt,
                    "ge" => Cmp::Ge,
                    "lt" => Cmp::Lt,
                    "le" => Cmp::Le,
                    _ => return Err(ApiError::syntax()),
                };
                let value = match self.next()? {
                    Tok::Str(s) => Scalar::Str(s),
                    Tok::Word(w) => bare_literal(&w)?,
                    _ => return Err(ApiError::syntax()),
                };
                let value = check_types(ty, value, op)?;
                Ok(Expr::Compare {
                    field,
                    ty,
                    op,
                    value,
                })
            }
            _ => Err(ApiError::syntax()),
        }
    }
}

fn edm_of(ty: Ty) -> &'static str {
    match ty {
        Ty::Guid => "Edm.Guid",
        Ty::Code(_) | Ty::Text(_) | Ty::Enum(_) => "Edm.String",
        Ty::Date => "Edm.Date",
        Ty::DateTime => "Edm.DateTimeOffset",
        Ty::Decimal => "Edm.Decimal",
        Ty::Int => "Edm.Int32",
        Ty::Bool => "Edm.Boolean",
    }
}

/// OData refuses comparisons between incompatible types (e.g. a GUID field with a quoted
/// string). Code literals are upper-cased like the stored values.
fn check_types(ty: Ty, value: Scalar, op: Cmp) -> ApiResult<Scalar> {
    let ok = matches!(
        (&value, ty),
        (Scalar::Null, _)
            | (Scalar::Str(_), Ty::Code(_) | Ty::Text(_) | Ty::Enum(_))
            | (Scalar::Guid(_), Ty::Guid)
            | (Scalar::Date(_), Ty::Date)
            | (Scalar::DateTime(_), Ty::DateTime)
            | (Scalar::Num(_), Ty::Decimal | Ty::Int)
            | (Scalar::Bool(_), Ty::Bool)
    );
    if !ok {
        let kind = match op {
            Cmp::Eq => "Equal",
            Cmp::Ne => "NotEqual",
            Cmp::Gt => "GreaterThan",
            Cmp::Ge => "GreaterThanOrEqual",
            Cmp::Lt => "LessThan",
            Cmp::Le => "LessThanOrEqual",
        };
        return Err(ApiError::bad(
            "BadRequest",
            format!(
                "A binary operator with incompatible types was detected. Found operand types '{}' and '{}' for operator kind '{kind}'.",
                edm_of(ty),
                value.edm()
            ),
        ));
    }
    Ok(match (value, ty) {
        (Scalar::Str(s), Ty::Code(_)) => Scalar::Str(s.to_uppercase()),
        (v, _) => v,
    })
}

fn fields_of(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            fields_of(a, out);
            fields_of(b, out);
        }
        Expr::Not(a) => fields_of(a, out),
        Expr::Compare { field, .. } | Expr::Call { field, .. } => {
            if !out.contains(field) {
                out.push(field.clone())
            }
        }
    }
}

/// A3: "The 'OR' operator is not supported on distinct fields on an OData filter."
fn check_or(e: &Expr) -> ApiResult<()> {
    match e {
        Expr::Or(a, b) => {
            let mut f = Vec::new();
            fields_of(e, &mut f);
            if f.len() > 1 {
                return Err(ApiError::bad(
                    "BadRequest",
                    "The 'OR' operator is not supported on distinct fields on an OData filter.",
                ));
            }
            check_or(a)?;
            check_or(b)
        }
        Expr::And(a, b) => {
            check_or(a)?;
            check_or(b)
        }
        Expr::Not(a) => check_or(a),
        _ => Ok(()),
    }
}

pub(crate) fn parse(text: &str, entity: &Entity) -> ApiResult<Expr> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err(ApiError::syntax());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        entity,
    };
    let e = p.expr()?;
    if p.pos != p.toks.len() {
        return Err(ApiError::syntax());
    }
    check_or(&e)?;
    Ok(e)
}

impl Expr {
    /// Whether every field the expression reads is one of `fields`.
    pub(crate) fn uses_only(&self, fields: &[&str]) -> bool {
        let mut used = Vec::new();
        fields_of(self, &mut used);
        used.iter().all(|u| fields.contains(&u.as_str()))
    }

    /// Evaluates against a rendered entity (its JSON fields).
    pub(crate) fn eval(&self, row: &Map<String, Value>) -> bool {
        match self {
            Expr::And(a, b) => a.eval(row) && b.eval(row),
            Expr::Or(a, b) => a.eval(row) || b.eval(row),
            Expr::Not(a) => !a.eval(row),
            Expr::Compare {
                field,
                ty,
                op,
                value,
            } => {
                let actual = Scalar::of_field(*ty, row.get(field).unwrap_or(&Value::Null));
                let ord = actual.compare(value);
                use std::cmp::Ordering::*;
                match op {
                    Cmp::Eq => ord == Some(Equal),
                    Cmp::Ne => ord != Some(Equal),
                    Cmp::Gt => ord == Some(Greater),
                    Cmp::Ge => matches!(ord, Some(Greater | Equal)),
                    Cmp::Lt => ord == Some(Less),
                    Cmp::Le => matches!(ord, Some(Less | Equal)),
                }
            }
            Expr::Call {
                func,
                field,
                ty,
                value,
            } => {
                let Scalar::Str(actual) =
                    Scalar::of_field(*ty, row.get(field).unwrap_or(&Value::Null))
                else {
                    return false;
                };
                let value = if matches!(ty, Ty::Code(_)) {
                    value.to_uppercase()
                } else {
                    value.clone()
                };
                match func {
                    Func::StartsWith => actual.starts_with(&value),
                    Func::EndsWith => actual.ends_with(&value),
                    Func::Contains => actual.contains(&value),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::{INVOICE, VENDOR};
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn doubled_quote_is_an_escaped_quote() {
        let e = parse("displayName eq 'O''Brien & Co #1/2'", &VENDOR).unwrap();
        assert!(e.eval(&row(json!({"displayName": "O'Brien & Co #1/2"}))));
    }

    #[test]
    fn or_across_fields_is_refused_but_same_field_is_fine() {
        assert!(parse("number eq '1' or number eq '2'", &INVOICE).is_ok());
        let err = parse("number eq '1' or vendorNumber eq '2'", &INVOICE).unwrap_err();
        assert!(
            err.message
                .contains("'OR' operator is not supported on distinct fields")
        );
    }

    #[test]
    fn datetime_literals_compare_as_instants() {
        let e = parse("lastModifiedDateTime gt 2024-01-01T00:00:00Z", &INVOICE).unwrap();
        assert!(e.eval(&row(
            json!({"lastModifiedDateTime": "2024-01-01T00:00:00.5Z"})
        )));
        assert!(!e.eval(&row(
            json!({"lastModifiedDateTime": "2023-12-31T23:59:59Z"})
        )));
    }

    #[test]
    fn malformed_filters_are_syntax_errors() {
        for f in [
            "number eq",
            "number eq 'x",
            "(number eq 'x'",
            "number zz 'x'",
            "number eq 'x' and",
        ] {
            assert_eq!(
                parse(f, &INVOICE).unwrap_err().code,
                "BadRequest_NotFound",
                "{f}"
            );
        }
    }

    #[test]
    fn code_fields_compare_case_insensitively() {
        let e = parse("vendorInvoiceNumber eq 'inv-1'", &INVOICE).unwrap();
        assert!(e.eval(&row(json!({"vendorInvoiceNumber": "INV-1"}))));
    }
}
