//! Name templates: text with `{field}` and `{field:format}` holes (`{course_code} {section} —
//! {date:%a %d %b}`), `{{` and `}}` for braces. A template is checked against the fields its
//! use offers when a rule is saved, so a typo is refused with the field named instead of
//! producing odd names at 2 a.m.; rendering is then total.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono::format::{Item, StrftimeItems};

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field {
        name: String,
        format: Option<String>,
    },
}

/// A value a field renders.
#[derive(Debug, Clone)]
pub enum FieldValue {
    Text(String),
    /// A date; `{field:%d %b}` formats it with strftime, `{field}` as `YYYY-MM-DD`.
    Date(NaiveDate),
}

fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => inner.push(c),
                        None => return Err(format!("unclosed {{ in {text:?}")),
                    }
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                let (name, format) = match inner.split_once(':') {
                    Some((n, f)) => (n.trim().to_owned(), Some(f.to_owned())),
                    None => (inner.trim().to_owned(), None),
                };
                pieces.push(Piece::Field { name, format });
            }
            '}' => return Err(format!("a lone }} in {text:?} (write }}}} for a brace)")),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// Checks `text` against the fields `known` (name, whether it is a date): every field must be
/// one of them, and a format is allowed on dates only and must be a valid strftime format.
pub fn check(text: &str, known: &[(&str, bool)]) -> Result<(), String> {
    for piece in parse(text)? {
        let Piece::Field { name, format } = piece else {
            continue;
        };
        let Some((_, is_date)) = known.iter().find(|(k, _)| *k == name) else {
            let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "unknown field {{{name}}} (known: {})",
                names.join(", ")
            ));
        };
        if let Some(f) = format {
            if !is_date {
                return Err(format!("{{{name}}} is not a date: it takes no format"));
            }
            if StrftimeItems::new(&f).any(|i| matches!(i, Item::Error)) {
                return Err(format!("{{{name}:{f}}}: {f:?} is not a valid date format"));
            }
        }
    }
    Ok(())
}

/// Renders a template that [`check`] accepted; a field without a value renders empty.
pub fn render(text: &str, values: &BTreeMap<&str, FieldValue>) -> String {
    let Ok(pieces) = parse(text) else {
        return text.to_owned();
    };
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Field { name, format } => match (values.get(name.as_str()), format) {
                (Some(FieldValue::Text(t)), _) => out.push_str(t),
                (Some(FieldValue::Date(d)), Some(f)) => out.push_str(&d.format(&f).to_string()),
                (Some(FieldValue::Date(d)), None) => out.push_str(&d.to_string()),
                (None, _) => {}
            },
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[(&str, bool)] = &[("course_code", false), ("section", false), ("date", true)];

    #[test]
    fn a_template_names_its_unknown_field_and_renders_what_it_knows() {
        let t = "{course_code} {section} — {date:%a %d %b}";
        assert!(check(t, KNOWN).is_ok());
        let err = check("{course_code} {sectoin}", KNOWN).unwrap_err();
        assert!(err.contains("unknown field {sectoin}"), "{err}");
        assert!(err.contains("course_code, section, date"), "{err}");
        assert!(
            check("{section:%Y}", KNOWN)
                .unwrap_err()
                .contains("not a date")
        );
        assert!(
            check("{date:%Q}", KNOWN)
                .unwrap_err()
                .contains("not a valid date format")
        );
        assert!(
            check("{course_code", KNOWN)
                .unwrap_err()
                .contains("unclosed")
        );
        let mut v = BTreeMap::new();
        v.insert("course_code", FieldValue::Text("BIO 101".into()));
        v.insert("section", FieldValue::Text("A".into()));
        v.insert(
            "date",
            FieldValue::Date(NaiveDate::from_ymd_opt(2025, 11, 3).unwrap()),
        );
        assert_eq!(render(t, &v), "BIO 101 A — Mon 03 Nov");
        assert_eq!(render("{{{section}}}", &v), "{A}");
    }
}
