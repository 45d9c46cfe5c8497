//! Canvas `Link` pagination (canvas.md B2): `per_page` defaults to 10 and is clamped to
//! 1…100; numbered collections link current/next/prev/first/last; bookmark collections
//! (enrollments, ascending submissions) link current/next/first with opaque
//! `page=bookmark:<base64url JSON>` cursors and never `last`. Link URLs repeat the request's
//! own parameters except `page`, `per_page`, `access_token` and `api_key`, as Canvas does.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::canvas::error::ApiError;
use crate::canvas::params::Params;

pub const DEFAULT_PER_PAGE: usize = 10;
pub const MAX_PER_PAGE: usize = 100;

/// `per_page` as Canvas computes it: Ruby `to_i` (so junk is 0), then clamped to 1…100.
pub fn per_page(params: &Params) -> usize {
    match params.get("per_page") {
        None => DEFAULT_PER_PAGE,
        Some(v) => {
            let digits: String = v
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits
                .parse::<usize>()
                .unwrap_or(if digits.is_empty() { 0 } else { MAX_PER_PAGE })
                .clamp(1, MAX_PER_PAGE)
        }
    }
}

/// Where links point: the request's origin, path and kept parameters.
#[derive(Debug, Clone)]
pub struct LinkBase {
    pub origin: String,
    pub path: String,
    kept: Vec<(String, String)>,
}

impl LinkBase {
    pub fn new(origin: &str, path: &str, params: &Params) -> LinkBase {
        const DROP: [&str; 4] = ["page", "per_page", "access_token", "api_key"];
        LinkBase {
            origin: origin.to_owned(),
            path: path.to_owned(),
            kept: params
                .pairs()
                .iter()
                .filter(|(k, _)| !DROP.contains(&k.as_str()))
                .cloned()
                .collect(),
        }
    }

    fn url(&self, page: &str, per_page: usize) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.kept {
            ser.append_pair(k, v);
        }
        let kept = ser.finish();
        // Page values are digits, `first` or `bookmark:<base64url>`: no escaping needed, and
        // Canvas writes the bookmark colon as is.
        let sep = if kept.is_empty() { "" } else { "&" };
        format!(
            "{}{}?{kept}{sep}page={page}&per_page={per_page}",
            self.origin, self.path
        )
    }
}

fn header(links: &[(&str, String)]) -> String {
    links
        .iter()
        .map(|(rel, url)| format!("<{url}>; rel=\"{rel}\""))
        .collect::<Vec<_>>()
        .join(",")
}

/// A numbered page of `all` and its `Link` header.
pub fn numbered<T: Clone>(all: &[T], params: &Params, base: &LinkBase) -> (Vec<T>, String) {
    let per = per_page(params);
    let page = params
        .get("page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let total_pages = all.len().div_ceil(per).max(1);
    let start = (page - 1).saturating_mul(per);
    let items: Vec<T> = all.iter().skip(start).take(per).cloned().collect();
    let mut links = vec![("current", base.url(&page.to_string(), per))];
    if page < total_pages {
        links.push(("next", base.url(&(page + 1).to_string(), per)));
    }
    if page > 1 {
        links.push(("prev", base.url(&(page - 1).to_string(), per)));
    }
    links.push(("first", base.url("1", per)));
    links.push(("last", base.url(&total_pages.to_string(), per)));
    (items, header(&links))
}

pub fn encode_bookmark(last_id: u64) -> String {
    format!(
        "bookmark:{}",
        URL_SAFE_NO_PAD.encode(format!("[{last_id}]"))
    )
}

pub fn decode_bookmark(page: &str) -> Option<u64> {
    let raw = page.strip_prefix("bookmark:")?;
    let json = URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')).ok()?;
    let v: Vec<u64> = serde_json::from_slice(&json).ok()?;
    match v.as_slice() {
        [id] => Some(*id),
        _ => None,
    }
}

/// A bookmark page over ascending `ids`: the ids after the cursor, and the `Link` header.
pub fn bookmarked(
    ids: &[u64],
    params: &Params,
    base: &LinkBase,
) -> Result<(Vec<u64>, String), ApiError> {
    let per = per_page(params);
    let current = params.get("page").unwrap_or("first").to_owned();
    let after = match current.as_str() {
        "first" | "" => None,
        p => {
            Some(decode_bookmark(p).ok_or_else(|| ApiError::bad_request("invalid page bookmark"))?)
        }
    };
    let start = after.map_or(0, |a| ids.partition_point(|id| *id <= a));
    let page: Vec<u64> = ids[start..].iter().take(per).copied().collect();
    let has_next = start + page.len() < ids.len();
    let current = if current.is_empty() {
        "first".to_owned()
    } else {
        current
    };
    let mut links = vec![("current", base.url(&current, per))];
    if let (true, Some(last)) = (has_next, page.last()) {
        links.push(("next", base.url(&encode_bookmark(*last), per)));
    }
    links.push(("first", base.url("first", per)));
    Ok((page, header(&links)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(q: &str) -> (Params, LinkBase) {
        let p = Params::parse(q);
        let b = LinkBase::new("http://h", "/api/v1/x", &p);
        (p, b)
    }

    #[test]
    fn per_page_defaults_and_clamps() {
        assert_eq!(per_page(&Params::parse("")), 10);
        assert_eq!(per_page(&Params::parse("per_page=1000")), 100);
        assert_eq!(per_page(&Params::parse("per_page=0")), 1);
        assert_eq!(per_page(&Params::parse("per_page=abc")), 1);
        assert_eq!(per_page(&Params::parse("per_page=25")), 25);
    }

    #[test]
    fn numbered_links_drop_paging_and_token_params() {
        let all: Vec<u32> = (1..=21).collect();
        let (p, b) = base("per_page=10&page=2&access_token=secret&state%5B%5D=active");
        let (items, link) = numbered(&all, &p, &b);
        assert_eq!(items, (11..=20).collect::<Vec<_>>());
        assert!(!link.contains("secret"));
        assert!(
            link.contains("rel=\"next\"")
                && link.contains("rel=\"prev\"")
                && link.contains("rel=\"last\"")
        );
        assert!(link.contains("state%5B%5D=active&page=3&per_page=10>; rel=\"next\""));
        let (p, b) = base("page=9");
        let (items, link) = numbered(&all, &p, &b);
        assert!(items.is_empty());
        assert!(!link.contains("rel=\"next\""));
    }

    #[test]
    fn bookmarks_walk_without_last() {
        let ids: Vec<u64> = (100..125).collect();
        let (p, b) = base("per_page=10");
        let (first, link) = bookmarked(&ids, &p, &b).expect("ok");
        assert_eq!(first.len(), 10);
        assert!(!link.contains("rel=\"last\""));
        let next = encode_bookmark(109);
        assert!(link.contains(&next));
        assert_eq!(decode_bookmark(&next), Some(109));
        let (p, b) = base(&format!("per_page=10&page={next}"));
        let (second, _) = bookmarked(&ids, &p, &b).expect("ok");
        assert_eq!(second.first(), Some(&110));
        let (p, b) = base("page=bookmark:!!!");
        assert!(bookmarked(&ids, &p, &b).is_err());
    }
}
