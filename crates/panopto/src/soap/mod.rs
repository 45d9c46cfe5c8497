//! SOAP 4.6, the calls Panopto's REST API lacks. Endpoint per service:
//! `POST /Panopto/PublicAPI/4.6/<Service>.svc` with `SOAPAction:
//! "http://tempuri.org/I<Service>/<Operation>"` and a SOAP 1.1 envelope. Operation elements
//! live in `http://tempuri.org/`; each data contract keeps the namespace of the API version
//! that introduced it. Encoders and decoders for both directions sit here so the simulator
//! and the client cannot drift apart: this module holds the envelope, authentication, paging
//! and faults; one submodule per service holds its operations.

mod recorders;
mod sessions;

pub use recorders::*;
pub use sessions::*;

use serde::{Deserialize, Serialize};

use crate::xml::{self, Element};

pub const TEMPURI: &str = "http://tempuri.org/";
pub const DATA_NS: &str =
    "http://schemas.datacontract.org/2004/07/Panopto.Server.Services.PublicAPI.V40";
pub const ARRAYS_NS: &str = "http://schemas.microsoft.com/2003/10/Serialization/Arrays";

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
