//! A deliberately small XML reader and escaper for SOAP 1.1 envelopes: elements, attributes,
//! text, CDATA, comments and the five predefined entities (plus numeric references).
//! Namespace prefixes are kept in `name` but lookups use the local name, because Panopto's
//! responses bind the same data-contract namespace to different prefixes. No DTDs, no
//! external entities: nothing here can be made to fetch or expand anything.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML at byte {at}: {reason}")]
pub struct XmlError {
    pub at: usize,
    pub reason: &'static str,
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

impl Element {
    /// The name without its namespace prefix.
    pub fn local_name(&self) -> &str {
        local(&self.name)
    }

    /// First child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.local_name() == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.local_name() == name)
    }

    /// Depth-first search for the first descendant (or self) with this local name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.local_name() == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| local(k) == name)
            .map(|(_, v)| v.as_str())
    }

    /// `xsi:nil="true"`.
    pub fn is_nil(&self) -> bool {
        self.attribute("nil") == Some("true")
    }

    /// Text of a child, `None` when absent, nil or empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        let c = self.child(name)?;
        if c.is_nil() {
            return None;
        }
        let t = c.text.trim();
        (!t.is_empty()).then_some(t)
    }
}

/// Parse a document and return its root element.
pub fn parse(input: &str) -> Result<Element, XmlError> {
    let mut p = Parser {
        s: input.as_bytes(),
        src: input,
        i: 0,
    };
    p.skip_prolog()?;
    let root = p.element(0)?;
    Ok(root)
}

/// SOAP envelopes are shallow; a bound keeps hostile input from exhausting the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> XmlError {
        XmlError { at: self.i, reason }
    }

    fn starts(&self, pat: &str) -> bool {
        self.s[self.i..].starts_with(pat.as_bytes())
    }

    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn skip_until(&mut self, pat: &str) -> Result<(), XmlError> {
        match self.src[self.i..].find(pat) {
            Some(off) => {
                self.i += off + pat.len();
                Ok(())
            }
            None => Err(self.err("unterminated construct")),
        }
    }

    fn skip_prolog(&mut self) -> Result<(), XmlError> {
        loop {
            self.skip_ws();
            if self.starts("<?") {
                self.skip_until("?>")?;
            } else if self.starts("<!--") {
                self.skip_until("-->")?;
            } else if self.starts("<!") {
                return Err(self.err("DTDs are not accepted"));
            } else {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<String, XmlError> {
        let start = self.i;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_whitespace() || c == b'>' || c == b'/' || c == b'=' {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return Err(self.err("expected a name"));
        }
        Ok(self.src[start..self.i].to_owned())
    }

    fn element(&mut self, depth: usize) -> Result<Element, XmlError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        if !self.starts("<") {
            return Err(self.err("expected '<'"));
        }
        self.i += 1;
        let name = self.name()?;
        let mut el = Element {
            name,
            attributes: Vec::new(),
            children: Vec::new(),
            text: String::new(),
        };
        loop {
            self.skip_ws();
            if self.starts("/>") {
                self.i += 2;
                return Ok(el);
            }
            if self.starts(">") {
                self.i += 1;
                break;
            }
            let key = self.name()?;
            self.skip_ws();
            if !self.starts("=") {
                return Err(self.err("expected '='"));
            }
            self.i += 1;
            self.skip_ws();
            let quote = *self
                .s
                .get(self.i)
                .ok_or_else(|| self.err("unexpected end"))?;
            if quote != b'"' && quote != b'\'' {
                return Err(self.err("expected a quoted attribute value"));
            }
            self.i += 1;
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != quote {
                self.i += 1;
            }
            if self.i >= self.s.len() {
                return Err(self.err("unterminated attribute"));
            }
            let value = unescape(&self.src[start..self.i]);
            self.i += 1;
            el.attributes.push((key, value));
        }
        loop {
            if self.i >= self.s.len() {
                return Err(self.err("unclosed element"));
            }
            if self.starts("</") {
                self.i += 2;
                let close = self.name()?;
                if close != el.name {
                    return Err(self.err("mismatched closing tag"));
                }
                self.skip_ws();
                if !self.starts(">") {
                    return Err(self.err("expected '>'"));
                }
                self.i += 1;
                return Ok(el);
            } else if self.starts("<!--") {
                self.skip_until("-->")?;
            } else if self.starts("<![CDATA[") {
                self.i += 9;
                let start = self.i;
                self.skip_until("]]>")?;
                el.text.push_str(&self.src[start..self.i - 3]);
            } else if self.starts("<") {
                let child = self.element(depth + 1)?;
                el.children.push(child);
            } else {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != b'<' {
                    self.i += 1;
                }
                el.text.push_str(&unescape(&self.src[start..self.i]));
            }
        }
    }
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let Some(end) = rest.find(';') else {
            out.push_str(rest);
            return out;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escape text for element content or a double-quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\r' && c != '\t' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_prefixed_elements_and_entities() {
        let doc = r#"<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Body>
            <a:Name>Tom &amp; Jerry &#65;</a:Name><a:Nil i:nil="true"/><!-- c --></s:Body></s:Envelope>"#;
        let root = parse(doc).expect("parses");
        assert_eq!(root.local_name(), "Envelope");
        let body = root.child("Body").expect("body");
        assert_eq!(body.child_text("Name"), Some("Tom & Jerry A"));
        assert!(body.child("Nil").expect("nil").is_nil());
        assert_eq!(body.child_text("Nil"), None);
    }

    #[test]
    fn rejects_garbage_and_dtds() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a/>").is_err());
        assert!(parse("<a").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn escape_round_trips() {
        let s = "a<b>&\"c'";
        let doc = format!("<x>{}</x>", escape(s));
        assert_eq!(parse(&doc).expect("parses").text, s);
    }
}
