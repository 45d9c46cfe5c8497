//! Rails-style request parameters as Canvas reads them: query string and body merged, with
//! `name[]=a&name[]=b` arrays and `obj[field]=v` objects, from form bodies or JSON bodies
//! (a JSON body is flattened to the same keys, so handlers read one shape).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::Value;

use crate::canvas::error::ApiError;

#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// Largest request body accepted (Canvas forms are small; SIS imports are not simulated here).
const MAX_BODY: usize = 2 * 1024 * 1024;

impl Params {
    pub fn parse(query: &str) -> Params {
        Params {
            pairs: form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Non-empty value of `key`.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// Values of `key[]` (and of a bare `key`, which Canvas also accepts).
    pub fn all(&self, key: &str) -> Vec<&str> {
        let arr = format!("{key}[]");
        self.pairs
            .iter()
            .filter(|(k, _)| *k == arr || k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    pub fn includes(&self, what: &str) -> bool {
        self.all("include").contains(&what)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)?.trim() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" | "" => Some(false),
            _ => None,
        }
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get(key).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("{key} must be an integer"))),
        }
    }

    pub fn f64(&self, key: &str) -> Result<Option<f64>, ApiError> {
        match self.get(key).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("{key} must be a number"))),
        }
    }

    pub fn extend(&mut self, other: Params) {
        self.pairs.extend(other.pairs);
    }

    /// Flatten a JSON body into Rails keys: `{"module":{"name":"x"}}` → `module[name]=x`.
    pub fn from_json(v: &Value) -> Params {
        let mut p = Params::default();
        flatten(&mut p.pairs, None, v);
        p
    }
}

fn flatten(out: &mut Vec<(String, String)>, prefix: Option<&str>, v: &Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = match prefix {
                    Some(p) => format!("{p}[{k}]"),
                    None => k.clone(),
                };
                flatten(out, Some(&key), v);
            }
        }
        Value::Array(items) => {
            let key = format!("{}[]", prefix.unwrap_or(""));
            for item in items {
                match item {
                    Value::Object(_) | Value::Array(_) => flatten(out, prefix, item),
                    _ => flatten(out, Some(&key), item),
                }
            }
        }
        Value::Null => {
            if let Some(p) = prefix {
                out.push((p.to_owned(), String::new()));
            }
        }
        Value::String(s) => {
            if let Some(p) = prefix {
                out.push((p.to_owned(), s.clone()));
            }
        }
        other => {
            if let Some(p) = prefix {
                out.push((p.to_owned(), other.to_string()));
            }
        }
    }
}

/// Body parameters (form or JSON) merged after the query string.
#[derive(Debug, Clone, Default)]
pub struct BodyParams(pub Params);

impl<S: Send + Sync> FromRequest<S> for BodyParams {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let query = Params::parse(req.uri().query().unwrap_or(""));
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::bad_request("could not read the request body"))?;
        if bytes.len() > MAX_BODY {
            return Err(ApiError::bad_request("request body too large"));
        }
        let mut params = query;
        if is_json && !bytes.is_empty() {
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
            params.extend(Params::from_json(&v));
        } else if !bytes.is_empty() {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
            params.extend(Params::parse(text));
        }
        Ok(BodyParams(params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arrays_objects_and_json_agree() {
        let q = Params::parse(
            "state%5B%5D=active&state[]=invited&module_item%5Btype%5D=ExternalUrl&per_page=5",
        );
        assert_eq!(q.all("state"), vec!["active", "invited"]);
        assert_eq!(q.get("module_item[type]"), Some("ExternalUrl"));
        let j = Params::from_json(
            &json!({"module_item": {"type": "ExternalUrl", "completion_requirement": {"type": "must_view"}}, "state": ["active"]}),
        );
        assert_eq!(j.get("module_item[type]"), Some("ExternalUrl"));
        assert_eq!(
            j.get("module_item[completion_requirement][type]"),
            Some("must_view")
        );
        assert_eq!(j.all("state"), vec!["active"]);
        assert!(q.u64("per_page").expect("ok") == Some(5));
        assert!(Params::parse("per_page=x").u64("per_page").is_err());
    }
}
