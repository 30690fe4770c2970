//! The `$filter` subset the connector and public clients use (sap-b1.md §4.4, §4.8.7):
//! comparisons `eq ne gt ge lt le` of a field with a literal, joined by `and` / `or`, with
//! parentheses. Literals: `'quoted'` (with `''` for a quote), bare v4 dates (`2024-05-01`) and
//! times (`10:15:30`), integers, and qualified enums (`SAPB1.BoCardTypes'cSupplier'`).
//! A field the entity does not know, or anything else, is a 400: the real server refuses what
//! it cannot parse, and a silently ignored filter would hide a client bug.

use std::cmp::Ordering;

use chrono::{NaiveDate, NaiveTime};

/// A typed value, of a field or of a literal.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Int(i64),
    Str(String),
    Date(NaiveDate),
    Time(NaiveTime),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug)]
pub enum Filter {
    Cmp(String, Op2, Lit),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

/// An operator (public only through `Filter`).
#[derive(Clone, Copy, Debug)]
pub struct Op2(Op);

impl Filter {
    /// The field names the filter compares, so they can be checked before any row is read (a
    /// filter on an unknown field is refused even over an empty set).
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                let mut f = a.fields();
                f.extend(b.fields());
                f
            }
            Filter::Cmp(name, ..) => vec![name.as_str()],
        }
    }

    /// Whether an entity whose fields `field` reads passes; `Err` names a field it lacks.
    pub fn matches(&self, field: &dyn Fn(&str) -> Option<Lit>) -> Result<bool, String> {
        match self {
            Filter::And(a, b) => Ok(a.matches(field)? && b.matches(field)?),
            Filter::Or(a, b) => Ok(a.matches(field)? || b.matches(field)?),
            Filter::Cmp(name, Op2(op), lit) => {
                let value = field(name).ok_or_else(|| format!("Property '{name}' is invalid"))?;
                let ord = compare(&value, lit)
                    .ok_or_else(|| format!("Type mismatch in the comparison of '{name}'"))?;
                Ok(match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Ne => ord != Ordering::Equal,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                    Op::Lt => ord == Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                })
            }
        }
    }
}

/// A field against a literal; a quoted literal is read as the field's type (v1 quotes dates).
fn compare(value: &Lit, lit: &Lit) -> Option<Ordering> {
    match (value, lit) {
        (Lit::Int(a), Lit::Int(b)) => Some(a.cmp(b)),
        (Lit::Str(a), Lit::Str(b)) => Some(a.cmp(b)),
        (Lit::Date(a), Lit::Date(b)) => Some(a.cmp(b)),
        (Lit::Time(a), Lit::Time(b)) => Some(a.cmp(b)),
        (Lit::Date(a), Lit::Str(s)) => Some(a.cmp(&parse_date(s)?)),
        (Lit::Time(a), Lit::Str(s)) => Some(a.cmp(&parse_time(s)?)),
        _ => None,
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    // `2024-05-01` or a v4 date-time `2024-05-01T00:00:00Z` (its date part).
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

/// Parses a `$filter` value.
pub fn parse(text: &str) -> Result<Filter, String> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, pos: 0 };
    let f = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(format!(
            "Unexpected '{}' in $filter",
            p.tokens[p.pos].text()
        ));
    }
    Ok(f)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Quoted(String),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => format!("'{q}'"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if c == '\'' {
            let (s, next) = quoted(&chars, i)?;
            out.push(Tok::Quoted(s));
            i = next;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"()'".contains(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // A qualified enum literal: `SAPB1.BoCardTypes'cSupplier'` reads as its value.
            if i < chars.len() && chars[i] == '\'' && word.contains('.') {
                let (s, next) = quoted(&chars, i)?;
                out.push(Tok::Quoted(s));
                i = next;
            } else {
                out.push(Tok::Word(word));
            }
        }
    }
    Ok(out)
}

fn quoted(chars: &[char], open: usize) -> Result<(String, usize), String> {
    let mut s = String::new();
    let mut i = open + 1;
    loop {
        match chars.get(i) {
            None => return Err("Unterminated string literal in $filter".into()),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                s.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((s, i + 1)),
            Some(c) => {
                s.push(*c);
                i += 1;
            }
        }
    }
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.factor()?;
        while self.peek_word("and") {
            self.pos += 1;
            let right = self.factor()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Filter, String> {
        match self.tokens.get(self.pos).cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                let f = self.or()?;
                if self.tokens.get(self.pos) != Some(&Tok::Close) {
                    return Err("Missing ')' in $filter".into());
                }
                self.pos += 1;
                Ok(f)
            }
            Some(Tok::Word(field)) => {
                let op = match self.tokens.get(self.pos + 1) {
                    Some(Tok::Word(o)) => match o.as_str() {
                        "eq" => Op::Eq,
                        "ne" => Op::Ne,
                        "gt" => Op::Gt,
                        "ge" => Op::Ge,
                        "lt" => Op::Lt,
                        "le" => Op::Le,
                        other => return Err(format!("Unsupported operator '{other}' in $filter")),
                    },
                    _ => return Err(format!("Expected an operator after '{field}'")),
                };
                let lit = match self.tokens.get(self.pos + 2) {
                    Some(Tok::Quoted(s)) => Lit::Str(s.clone()),
                    Some(Tok::Word(w)) => bare(w)?,
                    _ => return Err(format!("Expected a value after '{field}'")),
                };
                self.pos += 3;
                Ok(Filter::Cmp(field, Op2(op), lit))
            }
            other => Err(format!(
                "Unexpected '{}' in $filter",
                other.map(|t| t.text()).unwrap_or_default()
            )),
        }
    }
}

/// An unquoted literal: an integer, a v4 date or a v4 time of day.
fn bare(w: &str) -> Result<Lit, String> {
    if let Ok(n) = w.parse::<i64>() {
        return Ok(Lit::Int(n));
    }
    if let Some(d) = parse_date(w).filter(|_| w.len() == 10 || w.contains('T')) {
        return Ok(Lit::Date(d));
    }
    if let Some(t) = parse_time(w) {
        return Ok(Lit::Time(t));
    }
    Err(format!("Invalid literal '{w}' in $filter"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str) -> Option<Lit> {
        match name {
            "UpdateDate" => Some(Lit::Date(NaiveDate::from_ymd_opt(2024, 5, 1).unwrap())),
            "UpdateTime" => Some(Lit::Time(NaiveTime::from_hms_opt(10, 15, 31).unwrap())),
            "CardType" => Some(Lit::Str("cSupplier".into())),
            "DocEntry" => Some(Lit::Int(7)),
            _ => None,
        }
    }

    fn eval(f: &str) -> Result<bool, String> {
        parse(f)?.matches(&fields)
    }

    #[test]
    fn v1_quoted_date_and_v4_combined_date_time_filters() {
        assert_eq!(eval("UpdateDate ge '2024-05-01'"), Ok(true));
        assert_eq!(eval("UpdateDate gt '2024-05-01'"), Ok(false));
        assert_eq!(
            eval(
                "(UpdateDate gt 2024-05-01 or (UpdateDate eq 2024-05-01 and UpdateTime gt 10:15:30))"
            ),
            Ok(true)
        );
        assert_eq!(
            eval("UpdateDate eq 2024-05-01 and UpdateTime gt '10:16'"),
            Ok(false)
        );
    }

    #[test]
    fn enum_literals_quoted_or_qualified_and_integers() {
        assert_eq!(eval("CardType eq 'cSupplier'"), Ok(true));
        assert_eq!(eval("CardType eq SAPB1.BoCardTypes'cCustomer'"), Ok(false));
        assert_eq!(eval("DocEntry gt 6"), Ok(true));
    }

    #[test]
    fn unknown_fields_and_garbage_are_refused() {
        assert!(eval("Nope eq 1").is_err());
        assert!(eval("UpdateDate ge").is_err());
        assert!(eval("UpdateDate ge '2024-05-01' xor").is_err());
        assert!(eval("DocEntry eq '2024-05-01'").is_err());
    }
}
