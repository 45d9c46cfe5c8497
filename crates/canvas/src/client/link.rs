//! `Link` header parsing (RFC 8288 subset, canvas.md B2). Canvas paginates with absolute URLs
//! under `rel="next"`; the header name is case-insensitive (`http::HeaderMap` already is) and
//! the rel value may not be (ucfopen/canvasapi #663), so rels are lower-cased. URLs are kept
//! opaque: nothing here builds or edits `page=` parameters.

use reqwest::header::{HeaderMap, LINK};

/// One `<url>; rel="..."` entry (an entry with several rels yields one `LinkRel` per rel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRel {
    pub rel: String,
    pub url: String,
}

/// Every link in one header value.
pub fn parse_link(value: &str) -> Vec<LinkRel> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else { break };
        let url = after[..end].trim();
        let tail = &after[end + 1..];
        let params_end = tail.find('<').unwrap_or(tail.len());
        for param in tail[..params_end].split(';') {
            let param = param.trim().trim_end_matches(',').trim();
            let Some((key, val)) = param.split_once('=') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("rel") {
                let val = val.trim().trim_matches('"');
                for rel in val.split_whitespace() {
                    out.push(LinkRel {
                        rel: rel.to_ascii_lowercase(),
                        url: url.to_owned(),
                    });
                }
            }
        }
        rest = &tail[params_end..];
    }
    out
}

/// The `rel` URL across every `Link` header of a response.
pub fn find_rel(headers: &HeaderMap, rel: &str) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_link)
        .find(|l| l.rel.eq_ignore_ascii_case(rel))
        .map(|l| l.url)
}

/// The next page, if any.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    find_rel(headers, "next")
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn parses_canvas_links_with_bookmarks_and_odd_case() {
        let v = "<https://c.test/api/v1/courses/1/enrollments?page=bookmark:WzEwOV0&per_page=10>; rel=\"current\",\
                 <https://c.test/api/v1/courses/1/enrollments?page=bookmark:WzExOV0&per_page=10>; REL=\"Next\",\
                 <https://c.test/api/v1/courses/1/enrollments?page=first&per_page=10>; rel=\"first\"";
        let links = parse_link(v);
        assert_eq!(links.len(), 3);
        let mut h = HeaderMap::new();
        h.insert("LINK", HeaderValue::from_str(v).expect("header"));
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://c.test/api/v1/courses/1/enrollments?page=bookmark:WzExOV0&per_page=10")
        );
        assert_eq!(find_rel(&h, "last"), None);
    }

    #[test]
    fn multiple_rels_and_headers_and_garbage() {
        let mut h = HeaderMap::new();
        h.append(LINK, HeaderValue::from_static("<a>; rel=\"first current\""));
        h.append(
            LINK,
            HeaderValue::from_static(" <b> ;rel=next ; title=\"x\""),
        );
        assert_eq!(next_link(&h).as_deref(), Some("b"));
        assert_eq!(find_rel(&h, "current").as_deref(), Some("a"));
        assert!(parse_link("garbage, <unterminated").is_empty());
        assert!(parse_link("").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn every_rel_round_trips(
            urls in proptest::collection::vec("https://[a-z]{1,8}\\.test/api/v1/[a-z0-9/]{0,20}\\?page=[A-Za-z0-9:_=-]{1,30}&per_page=[0-9]{1,3}", 1..6),
            upper in proptest::bool::ANY,
        ) {
            let rels = ["current", "next", "prev", "first", "last", "other"];
            let header = urls
                .iter()
                .zip(rels.iter())
                .map(|(u, r)| {
                    let r = if upper { r.to_uppercase() } else { (*r).to_owned() };
                    format!("<{u}>; rel=\"{r}\"")
                })
                .collect::<Vec<_>>()
                .join(",");
            let parsed = parse_link(&header);
            proptest::prop_assert_eq!(parsed.len(), urls.len());
            for (l, (u, r)) in parsed.iter().zip(urls.iter().zip(rels.iter())) {
                proptest::prop_assert_eq!(&l.url, u);
                proptest::prop_assert_eq!(&l.rel, r);
            }
        }
    }
}
