//! Panopto's SOAP 4.6 services, as WCF serves them: one path per service, the operation named
//! by the Body's first element, authentication inside the envelope (`AuthenticationInfo`: the
//! service user's password, an identity-provider `AuthCode`, or, as a simulator convenience,
//! a REST access token as the password), then the caller's rate limit, then the operation.
//! Faults come back as SOAP faults with HTTP 500. One file per service prepares its
//! operations; this one runs them.

mod access;
mod folders;
mod recorders;
mod sessions;
mod users;
pub mod wsdl;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use panopto::soap::{self, AuthenticationInfo, SoapError};

use super::ApiClient;
use crate::sim::AppState;
use crate::world::World;

/// Who is calling: the rate-limit key and the Panopto user key acting.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client: String,
    pub user_key: String,
}

/// What answers the call, once its caller is known: reads or changes the world and returns
/// the response envelope.
pub type Work = Box<dyn FnOnce(&mut World, &Caller) -> Result<String, SoapError> + Send>;

/// A prepared call: who it claims to be, and its work.
pub type Prepared = Result<(AuthenticationInfo, Work), SoapError>;

/// Facts every operation may need.
#[derive(Debug, Clone)]
pub struct Context {
    pub now: i64,
    pub host: String,
    pub seed: u64,
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn fault(code: &str, message: &str) -> Response {
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        soap::encode_fault(code, message),
    )
}

/// A client's mistake, as a SOAP fault's message.
pub fn refused(message: impl Into<String>) -> SoapError {
    SoapError::Fault {
        code: "s:Client".to_owned(),
        message: message.into(),
    }
}

/// Run one SOAP request: `prepare` picks the operation from its name and text.
async fn serve(
    s: &AppState,
    body: &Bytes,
    prepare: fn(&str, &str, &Context) -> Option<Prepared>,
) -> Response {
    let Ok(text) = std::str::from_utf8(body) else {
        return fault("s:Client", "the request is not UTF-8");
    };
    let op = match soap::operation_name(text) {
        Ok(op) => op,
        Err(e) => return fault("s:Client", &e.to_string()),
    };
    let ctx = Context {
        now: s.clock.now_ms(),
        host: s.config.panopto_hostname.clone(),
        seed: s.config.seed,
    };
    let (auth, work) = match prepare(&op, text, &ctx) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return fault("s:Client", &e.to_string()),
        None => return fault("s:Client", &format!("operation {op} is not simulated")),
    };
    let Some(caller) = s.panopto.soap_caller(&s.config, &auth, ctx.now) else {
        return fault("s:Client", "Invalid user key or password");
    };
    let mut resp = if let Err(wait) = s.panopto.admit(&caller.client, s.panopto_limits_now_ms()) {
        super::throttled(wait)
    } else {
        match s.with_world(|w| work(w, &caller)) {
            Ok(body) => xml(StatusCode::OK, body),
            Err(SoapError::Fault { code, message }) => fault(&code, &message),
            Err(e) => fault("s:Client", &e.to_string()),
        }
    };
    resp.extensions_mut().insert(ApiClient(caller.client));
    resp
}

/// A generic operation: decode the call, then `run` it with the world and the caller.
pub fn generic(
    text: &str,
    run: impl FnOnce(&mut World, &Caller, &soap::Call) -> Result<Option<soap::Value>, SoapError>
    + Send
    + 'static,
) -> Prepared {
    let call = soap::decode_call(text)?;
    let auth = call.auth.clone();
    Ok((
        auth,
        Box::new(move |w: &mut World, caller: &Caller| {
            let result = run(w, caller, &call)?;
            Ok(soap::encode_result(&call.op, result.as_ref()))
        }),
    ))
}

/// `GET <Service>.svc?wsdl` (or `?singleWsdl`): the service's WSDL, schemas inline, its port
/// at the address asked for.
pub async fn wsdl(headers: axum::http::HeaderMap, uri: axum::http::Uri) -> Response {
    let asked = uri
        .query()
        .is_some_and(|q| q.eq_ignore_ascii_case("wsdl") || q.eq_ignore_ascii_case("singlewsdl"));
    let service = uri
        .path()
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".svc"))
        .unwrap_or_default();
    if !asked || wsdl::operation_names(service).is_empty() {
        return fault("s:Client", "GET serves the WSDL: add ?wsdl or ?singleWsdl");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    xml(
        StatusCode::OK,
        wsdl::document(service, &format!("http://{host}{}", uri.path())),
    )
}

pub async fn session_management(State(s): State<AppState>, body: Bytes) -> Response {
    serve(&s, &body, |op, text, ctx| {
        sessions::prepare(op, text, ctx).or_else(|| folders::prepare(op, text, ctx))
    })
    .await
}

pub async fn remote_recorder_management(State(s): State<AppState>, body: Bytes) -> Response {
    serve(&s, &body, recorders::prepare).await
}

pub async fn user_management(State(s): State<AppState>, body: Bytes) -> Response {
    serve(&s, &body, users::prepare).await
}

pub async fn access_management(State(s): State<AppState>, body: Bytes) -> Response {
    serve(&s, &body, access::prepare).await
}
