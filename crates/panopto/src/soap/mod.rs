//! SOAP 4.6, the calls Panopto's REST API lacks. Endpoint per service:
//! `POST /Panopto/PublicAPI/4.6/<Service>.svc` with `SOAPAction:
//! "http://tempuri.org/I<Service>/<Operation>"` and a SOAP 1.1 envelope. Operation elements
//! live in `http://tempuri.org/`; each data contract keeps the namespace of the API version
//! that introduced it. Encoders and decoders for both directions sit here so the simulator
//! and the client cannot drift apart: this module holds the envelope, authentication, paging
//! and faults; one submodule per service holds its operations.

mod contracts;
mod recorders;
mod sessions;

pub use contracts::*;
pub use recorders::*;
pub use sessions::*;

use serde::{Deserialize, Serialize};

use crate::xml::{self, Element};

pub const TEMPURI: &str = "http://tempuri.org/";
pub const DATA_NS: &str =
    "http://schemas.datacontract.org/2004/07/Panopto.Server.Services.PublicAPI.V40";
pub const ARRAYS_NS: &str = "http://schemas.microsoft.com/2003/10/Serialization/Arrays";
pub const USER_MANAGEMENT_PATH: &str = "/Panopto/PublicAPI/4.6/UserManagement.svc";
pub const ACCESS_MANAGEMENT_PATH: &str = "/Panopto/PublicAPI/4.6/AccessManagement.svc";

/// `AuthCode` for an identity-provider user, as Panopto defines it:
/// `UPPERCASE_HEX(SHA1(userKey + "@" + lower(host) + "|" + lower(applicationKey)))`.
pub fn auth_code(user_key: &str, host: &str, application_key: &str) -> String {
    let payload = format!(
        "{user_key}@{}|{}",
        host.to_lowercase(),
        application_key.to_lowercase()
    );
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, payload.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

/// `AuthenticationInfo`: a user key with a password, or an identity-provider auth code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthenticationInfo {
    #[serde(default)]
    pub user_key: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub auth_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pagination {
    pub max_number_results: u32,
    pub page_number: u32,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            max_number_results: 25,
            page_number: 0,
        }
    }
}

/// `ListSessionsRequest` of `GetSessionsList`.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SoapError {
    #[error(transparent)]
    Xml(#[from] xml::XmlError),
    #[error("not a SOAP envelope with the expected body: {0}")]
    Shape(&'static str),
    #[error("invalid value for {field}: {value}")]
    Value { field: &'static str, value: String },
    #[error("SOAP fault {code}: {message}")]
    Fault { code: String, message: String },
}

pub(crate) fn opt(tag: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("<a:{tag}>{}</a:{tag}>", xml::escape(v)),
        None => format!("<a:{tag} i:nil=\"true\"/>"),
    }
}

pub(crate) fn envelope(body: &str) -> String {
    format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{body}</s:Body></s:Envelope>"
    )
}

/// The namespace declarations of a result holding contracts of namespace `ns`.
pub(crate) fn result_attrs(ns: &str) -> String {
    format!("xmlns:a=\"{ns}\" xmlns:i=\"{XSI}\"")
}

pub(crate) fn data_attrs() -> String {
    format!("xmlns:a=\"{DATA_NS}\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"")
}

pub(crate) fn encode_auth(auth: &AuthenticationInfo) -> String {
    format!(
        "<auth {}>{}{}{}</auth>",
        data_attrs(),
        opt("AuthCode", auth.auth_code.as_deref()),
        opt("Password", auth.password.as_deref()),
        opt("UserKey", auth.user_key.as_deref()),
    )
}

pub(crate) fn body_of(doc: &Element) -> Result<&Element, SoapError> {
    if doc.local_name() != "Envelope" {
        return Err(SoapError::Shape("root is not Envelope"));
    }
    let body = doc.child("Body").ok_or(SoapError::Shape("no Body"))?;
    if let Some(fault) = body.child("Fault") {
        return Err(SoapError::Fault {
            code: fault.child_text("faultcode").unwrap_or("").to_owned(),
            message: fault.child_text("faultstring").unwrap_or("").to_owned(),
        });
    }
    Ok(body)
}

pub(crate) fn decode_auth(op: &Element) -> AuthenticationInfo {
    let Some(a) = op.child("auth") else {
        return AuthenticationInfo::default();
    };
    AuthenticationInfo {
        user_key: a.child_text("UserKey").map(str::to_owned),
        password: a.child_text("Password").map(str::to_owned),
        auth_code: a.child_text("AuthCode").map(str::to_owned),
    }
}

pub(crate) fn parse_u32(el: &Element, name: &'static str) -> Result<Option<u32>, SoapError> {
    el.child_text(name)
        .map(|t| {
            t.parse().map_err(|_| SoapError::Value {
                field: name,
                value: t.to_owned(),
            })
        })
        .transpose()
}

/// Which operation an envelope calls (the local name of the Body's first child).
pub fn operation_name(text: &str) -> Result<String, SoapError> {
    let doc = xml::parse(text)?;
    let body = body_of(&doc)?;
    body.children
        .first()
        .map(|c| c.local_name().to_owned())
        .ok_or(SoapError::Shape("empty Body"))
}

/// A SOAP 1.1 fault envelope (served with HTTP 500, as WCF does).
pub fn encode_fault(code: &str, message: &str) -> String {
    envelope(&format!(
        "<s:Fault><faultcode>{}</faultcode><faultstring xml:lang=\"en-US\">{}</faultstring></s:Fault>",
        xml::escape(code),
        xml::escape(message)
    ))
}

pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Data-contract namespaces: each type keeps the namespace of the API version that introduced
/// it (the captured responses show a `Session` in `V42.Soap`, a `Folder` in `V46.Soap`, a
/// `User`, a `Group` and the access details in `V40`).
pub const V40: &str =
    "http://schemas.datacontract.org/2004/07/Panopto.Server.Services.PublicAPI.V40";
pub const V42_SOAP: &str =
    "http://schemas.datacontract.org/2004/07/Panopto.Server.Services.PublicAPI.V42.Soap";
pub const V46_SOAP: &str =
    "http://schemas.datacontract.org/2004/07/Panopto.Server.Services.PublicAPI.V46.Soap";

/// A parameter or result value as WCF's DataContractSerializer writes it: the one writer of
/// every operation added after `GetSessionsList` (requests and responses alike).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Nil,
    Bool(bool),
    Int(i64),
    /// `ArrayOfguid` (items `guid` in the serialization arrays namespace).
    Guids(Vec<String>),
    /// `ArrayOfstring`.
    Strings(Vec<String>),
    /// A data contract: members in serialization order, in namespace `ns`.
    Contract {
        ns: &'static str,
        members: Vec<(&'static str, Value)>,
    },
    /// `ArrayOf<item>` of contracts in namespace `ns`.
    List {
        ns: &'static str,
        item: &'static str,
        items: Vec<Vec<(&'static str, Value)>>,
    },
}

impl Value {
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    pub fn opt(s: Option<&str>) -> Value {
        s.map_or(Value::Nil, |s| Value::Text(s.to_owned()))
    }
}

/// `<tag>` holding `value`; `prefix` is the namespace prefix of the tag itself (`a:` inside a
/// contract, empty for an operation's parameters); `in_scope` the contract namespace already
/// declared as `a`.
fn write(out: &mut String, tag: &str, value: &Value, in_scope: Option<&str>) {
    use std::fmt::Write;
    let nil = |out: &mut String| {
        if in_scope.is_some() {
            let _ = write!(out, "<{tag} i:nil=\"true\"/>");
        } else {
            let _ = write!(out, "<{tag} i:nil=\"true\" xmlns:i=\"{XSI}\"/>");
        }
    };
    match value {
        Value::Nil => nil(out),
        Value::Text(t) => {
            let _ = write!(out, "<{tag}>{}</{tag}>", xml::escape(t));
        }
        Value::Bool(b) => {
            let _ = write!(out, "<{tag}>{b}</{tag}>");
        }
        Value::Int(n) => {
            let _ = write!(out, "<{tag}>{n}</{tag}>");
        }
        Value::Guids(items) | Value::Strings(items) => {
            let item = if matches!(value, Value::Guids(_)) {
                "guid"
            } else {
                "string"
            };
            let _ = write!(out, "<{tag} xmlns:b=\"{ARRAYS_NS}\">");
            for i in items {
                let _ = write!(out, "<b:{item}>{}</b:{item}>", xml::escape(i));
            }
            let _ = write!(out, "</{tag}>");
        }
        Value::Contract { ns, members } => {
            open_contract(out, tag, ns, in_scope);
            for (name, v) in members {
                write(out, &format!("a:{name}"), v, Some(ns));
            }
            let _ = write!(out, "</{tag}>");
        }
        Value::List { ns, item, items } => {
            open_contract(out, tag, ns, in_scope);
            for members in items {
                let _ = write!(out, "<a:{item}>");
                for (name, v) in members {
                    write(out, &format!("a:{name}"), v, Some(ns));
                }
                let _ = write!(out, "</a:{item}>");
            }
            let _ = write!(out, "</{tag}>");
        }
    }
}

fn open_contract(out: &mut String, tag: &str, ns: &str, in_scope: Option<&str>) {
    use std::fmt::Write;
    if in_scope == Some(ns) {
        let _ = write!(out, "<{tag}>");
    } else {
        let _ = write!(out, "<{tag} xmlns:a=\"{ns}\" xmlns:i=\"{XSI}\">");
    }
}

/// A request envelope: `<op xmlns="http://tempuri.org/">` with `auth`, then `params` in order.
pub fn encode_call(op: &str, auth: &AuthenticationInfo, params: &[(&str, Value)]) -> String {
    let mut body = format!("<{op} xmlns=\"{TEMPURI}\">{}", encode_auth(auth));
    for (name, v) in params {
        write(&mut body, name, v, None);
    }
    body.push_str(&format!("</{op}>"));
    envelope(&body)
}

/// A response envelope: `<opResponse>` with `<opResult>` holding `result` (nothing for the
/// operations that return nothing).
pub fn encode_result(op: &str, result: Option<&Value>) -> String {
    let mut body = format!("<{op}Response xmlns=\"{TEMPURI}\">");
    if let Some(v) = result {
        write(&mut body, &format!("{op}Result"), v, None);
    }
    body.push_str(&format!("</{op}Response>"));
    envelope(&body)
}

/// A decoded request: the operation, its authentication and its element (parameters by name).
#[derive(Debug, Clone)]
pub struct Call {
    pub op: String,
    pub auth: AuthenticationInfo,
    pub params: Element,
}

pub fn decode_call(text: &str) -> Result<Call, SoapError> {
    let doc = xml::parse(text)?;
    let body = body_of(&doc)?;
    let params = body
        .children
        .first()
        .ok_or(SoapError::Shape("empty Body"))?
        .clone();
    Ok(Call {
        op: params.local_name().to_owned(),
        auth: decode_auth(&params),
        params,
    })
}

impl Call {
    /// A required text parameter.
    pub fn text(&self, name: &'static str) -> Result<String, SoapError> {
        self.optional(name)?.ok_or(SoapError::Value {
            field: name,
            value: "(missing)".to_owned(),
        })
    }

    /// An optional text parameter (absent or nil: `None`).
    pub fn optional(&self, name: &'static str) -> Result<Option<String>, SoapError> {
        Ok(self
            .params
            .child(name)
            .filter(|e| !e.is_nil())
            .map(|e| e.text.trim().to_owned()))
    }

    pub fn bool(&self, name: &'static str) -> Result<bool, SoapError> {
        match self.text(name)?.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(SoapError::Value {
                field: name,
                value: other.to_owned(),
            }),
        }
    }

    /// An array parameter (`ArrayOfguid`, `ArrayOfstring`): its items' text, in order.
    pub fn list(&self, name: &'static str) -> Vec<String> {
        self.params.child(name).map_or_else(Vec::new, items)
    }
}

/// The text of each child of an array element.
pub fn items(el: &Element) -> Vec<String> {
    el.children
        .iter()
        .filter(|c| !c.is_nil())
        .map(|c| c.text.trim().to_owned())
        .collect()
}

/// The result element of a response envelope (`<opResult>`), or `None` for an operation that
/// returns nothing; a fault is an error.
pub fn decode_result(text: &str, op: &str) -> Result<Option<Element>, SoapError> {
    let doc = xml::parse(text)?;
    let body = body_of(&doc)?;
    let response = body
        .child(&format!("{op}Response"))
        .ok_or(SoapError::Shape("no operation response"))?;
    Ok(response.child(&format!("{op}Result")).cloned())
}

#[cfg(test)]
mod generic_tests {
    use super::*;

    #[test]
    fn auth_code_follows_panoptos_recipe() {
        // Python: hashlib.sha1(b"canvas-sim\\jdoe@panopto.example.edu|abc-def").hexdigest().upper()
        assert_eq!(
            auth_code("canvas-sim\\jdoe", "Panopto.Example.EDU", "ABC-def"),
            "5B266001F04BF397B83071DAE958A21675CA62A9"
        );
    }

    #[test]
    fn a_generic_call_round_trips_its_parameters() {
        let auth = AuthenticationInfo {
            user_key: Some("admin".into()),
            password: Some("p<w>".into()),
            auth_code: None,
        };
        let text = encode_call(
            "AddMembersToExternalGroup",
            &auth,
            &[
                ("externalProviderName", Value::text("canvas-sim")),
                ("externalGroupId", Value::text("section:501")),
                ("memberIds", Value::Guids(vec!["g1".into(), "g2".into()])),
                ("note", Value::Nil),
            ],
        );
        let call = decode_call(&text).expect("decodes");
        assert_eq!(call.op, "AddMembersToExternalGroup");
        assert_eq!(call.auth, auth);
        assert_eq!(call.text("externalGroupId").unwrap(), "section:501");
        assert_eq!(call.list("memberIds"), ["g1", "g2"]);
        assert_eq!(call.optional("note").unwrap(), None);
        assert!(call.text("missing").is_err());
        let result = Value::List {
            ns: V40,
            item: "Group",
            items: vec![vec![("Id", Value::text("g")), ("Name", Value::Nil)]],
        };
        let answer = encode_result("GetGroupsByName", Some(&result));
        let el = decode_result(&answer, "GetGroupsByName")
            .expect("decodes")
            .expect("a result");
        let group = el.child("Group").expect("item");
        assert_eq!(group.child_text("Id"), Some("g"));
        assert!(group.child("Name").expect("member").is_nil());
        assert!(answer.contains(&format!("xmlns:a=\"{V40}\"")));
        assert_eq!(
            decode_result(&encode_result("DeleteGroup", None), "DeleteGroup").unwrap(),
            None
        );
    }
}
