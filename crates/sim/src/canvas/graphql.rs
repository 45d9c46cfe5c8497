//! Canvas GraphQL at `POST /api/graphql`. Every query is parsed and validated against
//! Canvas's published schema (`shared/data/canvas/graphql/schema.graphql`, read at first use;
//! `COURSEWIRE_SIM_GRAPHQL_SCHEMA` overrides the path), so the simulator never answers a query
//! Canvas would reject. Canvas's limits apply (canvas.md C): depth ≤ 15, complexity ≤ 375,000
//! (graphql-ruby's rule: 1 per field, connection children × page size), page size default 20
//! and at most 100. Execution uses apollo-compiler's resolver engine; the resolvers cover the
//! read subset an integration uses — a course with its sections, enrollments with users,
//! assignments and modules with items, plus accounts, terms and `legacyNode`/`node` lookups.
//! Fields outside that subset resolve to `null` (or an empty/false value when non-null).

use std::cell::Cell;
use std::sync::OnceLock;

use apollo_compiler::executable::{Fragment, Selection, SelectionSet};
use apollo_compiler::resolvers::{Execution, FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::canvas::{Ctx, ItemCount};
use crate::clock::iso;
use crate::sim::AppState;
use crate::university::*;

pub const MAX_DEPTH: usize = 15;
pub const MAX_COMPLEXITY: u64 = 375_000;
pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 100;
const MAX_QUERY_BYTES: usize = 100_000;

static SCHEMA: OnceLock<Result<Valid<Schema>, String>> = OnceLock::new();

fn schema_path() -> String {
    std::env::var("COURSEWIRE_SIM_GRAPHQL_SCHEMA").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/canvas/graphql/schema.graphql"
        )
        .to_owned()
    })
}

/// Canvas's schema, parsed and validated once.
pub fn schema() -> Result<&'static Valid<Schema>, &'static str> {
    SCHEMA
        .get_or_init(|| {
            let path = schema_path();
            let sdl = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the Canvas GraphQL schema at {path}: {e}"))?;
            Schema::parse_and_validate(sdl, "schema.graphql")
                .map_err(|e| format!("the Canvas GraphQL schema is invalid: {}", e.errors))
        })
        .as_ref()
        .map_err(String::as_str)
}

/// GraphQL error objects, as Canvas answers them: `message`, `locations` (line and column
/// in the query) where the error points into it, and `path` when it points at a field.
type Errors = Vec<Value>;

/// An error that points nowhere in the query (a limit, a bad request).
fn message(text: impl Into<String>) -> Errors {
    vec![json!({ "message": text.into() })]
}

fn error_response(status: StatusCode, errors: Errors) -> Response {
    (status, Json(json!({ "errors": errors }))).into_response()
}

/// graphql-ruby's words for the validation error clients see most (an unknown field):
/// "Field 'nme' doesn't exist on type 'Course'"; other messages as apollo writes them.
fn canvas_wording(message: &str) -> String {
    let unknown = message
        .strip_prefix("type `")
        .and_then(|rest| rest.split_once("` does not have a field `"))
        .and_then(|(ty, rest)| Some((ty, rest.strip_suffix('`')?)));
    match unknown {
        Some((ty, field)) => format!("Field '{field}' doesn't exist on type '{ty}'"),
        None => message.to_owned(),
    }
}

/// Parse and validate a query against the schema; each error with its `locations`.
pub fn validate(query: &str) -> Result<Valid<ExecutableDocument>, Errors> {
    let schema = schema().map_err(message)?;
    ExecutableDocument::parse_and_validate(schema, query, "query.graphql").map_err(|e| {
        let errors: Vec<_> = e.errors.iter().map(|d| d.to_json()).collect();
        // apollo also reports the selection an unknown field leaves empty; graphql-ruby
        // (Canvas) reports the unknown field alone.
        let unknown_field = errors
            .iter()
            .any(|error| error.message.contains("does not have a field"));
        errors
            .into_iter()
            .filter(|error| {
                !(unknown_field && error.message.contains("must have a subselection set"))
            })
            .map(|error| {
                let mut out = json!({ "message": canvas_wording(&error.message) });
                if !error.locations.is_empty() {
                    out["locations"] = error
                        .locations
                        .iter()
                        .map(|l| json!({ "line": l.line, "column": l.column }))
                        .collect();
                }
                if let Some(path) = error
                    .locations
                    .first()
                    .and_then(|l| super::graphql_path::path_at(query, l.line, l.column))
                {
                    out["path"] = json!(path);
                }
                out
            })
            .collect()
    })
}

struct Request {
    query: String,
    operation_name: Option<String>,
    variables: JsonMap,
}

fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<Request, String> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    let (query, operation_name, variables) = if is_json {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        (
            v.get("query").and_then(Value::as_str).map(str::to_owned),
            v.get("operationName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            v.get("variables").cloned().unwrap_or(Value::Null),
        )
    } else {
        let p = crate::canvas::params::Params::parse(
            std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?,
        );
        let vars = match p.get("variables") {
            Some(s) if !s.trim().is_empty() => {
                serde_json::from_str(s).map_err(|e| format!("invalid variables: {e}"))?
            }
            _ => Value::Null,
        };
        (
            p.get("query").map(str::to_owned),
            p.get("operationName").map(str::to_owned),
            vars,
        )
    };
    let query = query
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| "No query string was present".to_owned())?;
    if query.len() > MAX_QUERY_BYTES {
        return Err("query is too large".to_owned());
    }
    let variables = match variables {
        Value::Null => JsonMap::new(),
        Value::String(s) if s.trim().is_empty() => JsonMap::new(),
        Value::String(s) => {
            serde_json::from_str(&s).map_err(|e| format!("invalid variables: {e}"))?
        }
        v @ Value::Object(_) => {
            serde_json::from_value(v).map_err(|e| format!("invalid variables: {e}"))?
        }
        _ => return Err("variables must be an object".to_owned()),
    };
    Ok(Request {
        query,
        operation_name,
        variables,
    })
}

pub async fn endpoint(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match parse_request(&headers, &body) {
        Ok(r) => r,
        Err(m) => return error_response(StatusCode::BAD_REQUEST, message(m)),
    };
    // Parsing the schema the first time takes a moment: keep it off the async workers.
    let state = s.clone();
    let origin = ctx.origin.clone();
    let result = tokio::task::spawn_blocking(move || run(&state, req, &origin)).await;
    match result {
        Ok(Ok((v, nodes))) => {
            let mut r = Json(v).into_response();
            r.extensions_mut().insert(ItemCount(nodes));
            r
        }
        Ok(Err(errors)) => error_response(StatusCode::OK, errors),
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, message("internal error")),
    }
}

fn run(s: &AppState, req: Request, origin: &str) -> Result<(Value, usize), Errors> {
    let schema = schema().map_err(message)?;
    let doc = validate(&req.query)?;
    let op = doc
        .operations
        .get(req.operation_name.as_deref())
        .map_err(|e| message(e.message().to_string()))?;
    if op.operation_type != apollo_compiler::ast::OperationType::Query {
        return Err(message(
            "The simulator answers queries only; use REST for writes",
        ));
    }
    let vars = apollo_compiler::request::coerce_variable_values(schema, op, &req.variables)
        .map_err(|e| message(e.message().to_string()))?;
    let depth = depth_of(&doc, &op.selection_set, 0);
    if depth > MAX_DEPTH {
        return Err(message(format!(
            "Query has depth of {depth}, which exceeds max depth of {MAX_DEPTH}"
        )));
    }
    let complexity = complexity_of(&doc, &op.selection_set, &vars, 0);
    if complexity > MAX_COMPLEXITY {
        return Err(message(format!(
            "Query has complexity of {complexity}, which exceeds max complexity of {MAX_COMPLEXITY}"
        )));
    }
    s.with_world_read(|w| {
        let g = Graph {
            u: &w.uni,
            origin: origin.to_owned(),
            nodes: Cell::new(0),
        };
        let root = Obj {
            g: &g,
            k: Kind::Query,
        };
        let response = Execution::new(schema, &doc)
            .operation(op)
            .coerced_variable_values(&vars)
            .execute_sync(&root)
            .map_err(|e| message(e.message().to_string()))?;
        let v = serde_json::to_value(&response).map_err(|e| message(e.to_string()))?;
        Ok((v, g.nodes.get()))
    })
}

fn fields_of<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    depth: usize,
    out: &mut Vec<&'a apollo_compiler::executable::Field>,
) {
    if depth > 64 {
        return;
    }
    for sel in &set.selections {
        match sel {
            Selection::Field(f) => out.push(f),
            Selection::InlineFragment(i) => fields_of(doc, &i.selection_set, depth + 1, out),
            Selection::FragmentSpread(s) => {
                if let Some(frag) = doc.fragments.get(&s.fragment_name) {
                    let frag: &Fragment = frag;
                    fields_of(doc, &frag.selection_set, depth + 1, out);
                }
            }
        }
    }
}

fn depth_of(doc: &ExecutableDocument, set: &SelectionSet, level: usize) -> usize {
    if level > MAX_DEPTH + 1 {
        return level;
    }
    let mut fields = Vec::new();
    fields_of(doc, set, 0, &mut fields);
    fields
        .iter()
        .map(|f| {
            if f.selection_set.selections.is_empty() {
                level + 1
            } else {
                depth_of(doc, &f.selection_set, level + 1)
            }
        })
        .max()
        .unwrap_or(level)
}

fn arg_int(f: &apollo_compiler::executable::Field, name: &str, vars: &JsonMap) -> Option<i64> {
    let a = f.arguments.iter().find(|a| a.name == name)?;
    match a.value.as_ref() {
        apollo_compiler::ast::Value::Int(i) => i.try_to_i32().ok().map(i64::from),
        apollo_compiler::ast::Value::Variable(v) => {
            vars.get(v.as_str()).and_then(JsonValue::as_i64)
        }
        _ => None,
    }
}

/// graphql-ruby's default: every field costs 1; a connection's children cost once per item
/// of the requested (or maximum) page.
fn complexity_of(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    vars: &JsonMap,
    level: usize,
) -> u64 {
    if level > MAX_DEPTH + 1 {
        return 0;
    }
    let mut fields = Vec::new();
    fields_of(doc, set, 0, &mut fields);
    fields
        .iter()
        .map(|f| {
            let children = complexity_of(doc, &f.selection_set, vars, level + 1);
            let is_connection = f
                .definition
                .ty
                .inner_named_type()
                .as_str()
                .ends_with("Connection");
            let per_page = if is_connection {
                arg_int(f, "first", vars)
                    .or_else(|| arg_int(f, "last", vars))
                    .map_or(MAX_PAGE_SIZE as u64, |n| {
                        n.clamp(0, MAX_PAGE_SIZE as i64) as u64
                    })
            } else {
                1
            };
            1u64.saturating_add(per_page.saturating_mul(children))
        })
        .fold(0u64, u64::saturating_add)
}

/// Everything resolvers share: the university, the request origin, a node counter (cost).
struct Graph<'a> {
    u: &'a University,
    origin: String,
    nodes: Cell<usize>,
}

#[derive(Clone)]
enum Kind<'a> {
    Query,
    Course(&'a Course),
    Section(&'a Section),
    Enrollment(&'a Enrollment),
    User(&'a User),
    Assignment(&'a Assignment),
    Module(&'a Module),
    ModuleItem(&'a ModuleItem),
    /// The `content` of a non-assignment module item (ExternalUrl, SubHeader, Page, File…).
    Content(&'a ModuleItem),
    Term(&'a Term),
    Account(&'a Account),
    Connection {
        type_name: String,
        items: Vec<Kind<'a>>,
        start: usize,
        has_next: bool,
        has_prev: bool,
    },
    Edge {
        type_name: String,
        cursor: String,
        node: Box<Kind<'a>>,
    },
    PageInfo {
        start: Option<String>,
        end: Option<String>,
        has_next: bool,
        has_prev: bool,
    },
    Grades {
        current: Option<f64>,
        final_score: Option<f64>,
    },
}

struct Obj<'a> {
    g: &'a Graph<'a>,
    k: Kind<'a>,
}

fn relay_id(type_name: &str, id: u64) -> String {
    STANDARD.encode(format!("{type_name}-{id}"))
}

fn decode_relay(id: &str) -> Option<(String, u64)> {
    let raw = String::from_utf8(STANDARD.decode(id).ok()?).ok()?;
    let (t, n) = raw.rsplit_once('-')?;
    Some((t.to_owned(), n.parse().ok()?))
}

fn cursor(index: usize) -> String {
    URL_SAFE_NO_PAD.encode((index + 1).to_string())
}

fn decode_cursor(c: &str) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(c.trim_end_matches('=')).ok()?).ok()?;
    raw.parse::<usize>().ok().filter(|n| *n >= 1)
}

fn ts(ms: Option<i64>) -> JsonValue {
    ms.map_or(JsonValue::Null, |t| JsonValue::from(iso(t)))
}

fn leaf<'a>(v: impl Into<JsonValue>) -> Result<ResolvedValue<'a>, FieldError> {
    Ok(ResolvedValue::leaf(v))
}

fn ferr(message: impl Into<String>) -> FieldError {
    FieldError {
        message: message.into(),
    }
}

fn arg_str<'b>(info: &'b ResolveInfo<'_>, name: &str) -> Option<&'b str> {
    info.arguments().get(name).and_then(JsonValue::as_str)
}

fn id_arg(raw: &str, type_name: &str) -> Option<u64> {
    raw.parse().ok().or_else(|| {
        decode_relay(raw)
            .filter(|(t, _)| t == type_name)
            .map(|(_, n)| n)
    })
}

impl<'a> Obj<'a> {
    fn obj(&self, k: Kind<'a>) -> ResolvedValue<'a> {
        self.g.nodes.set(self.g.nodes.get() + 1);
        ResolvedValue::object(Obj { g: self.g, k })
    }

    fn opt(&self, k: Option<Kind<'a>>) -> ResolvedValue<'a> {
        match k {
            Some(k) => self.obj(k),
            None => ResolvedValue::null(),
        }
    }

    fn list(&self, items: Vec<Kind<'a>>) -> ResolvedValue<'a> {
        let g = self.g;
        g.nodes.set(g.nodes.get() + items.len());
        ResolvedValue::list(
            items
                .into_iter()
                .map(move |k| ResolvedValue::object(Obj { g, k })),
        )
    }

    /// Page `items` per Relay arguments into a connection object.
    fn connection(
        &self,
        info: &ResolveInfo<'_>,
        items: Vec<Kind<'a>>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let a = info.arguments();
        let int = |n: &str| a.get(n).and_then(JsonValue::as_i64);
        let first = int("first");
        let last = int("last");
        if first.is_some_and(|n| n < 0) || last.is_some_and(|n| n < 0) {
            return Err(ferr("first and last must be non-negative"));
        }
        let after = match a.get("after").and_then(JsonValue::as_str) {
            Some(c) => Some(decode_cursor(c).ok_or_else(|| ferr("invalid cursor"))?),
            None => None,
        };
        let before = match a.get("before").and_then(JsonValue::as_str) {
            Some(c) => Some(decode_cursor(c).ok_or_else(|| ferr("invalid cursor"))?),
            None => None,
        };
        let lo = after.unwrap_or(0).min(items.len());
        let hi = before
            .map_or(items.len(), |b| (b - 1).min(items.len()))
            .max(lo);
        let (start, end) = match (first, last) {
            (Some(f), _) => (lo, hi.min(lo + (f as usize).min(MAX_PAGE_SIZE))),
            (None, Some(l)) => (
                hi.saturating_sub((l as usize).min(MAX_PAGE_SIZE)).max(lo),
                hi,
            ),
            (None, None) => (lo, hi.min(lo + DEFAULT_PAGE_SIZE)),
        };
        let type_name = info
            .field_definition()
            .ty
            .inner_named_type()
            .as_str()
            .to_owned();
        let page: Vec<Kind<'a>> = items[start..end].to_vec();
        Ok(self.obj(Kind::Connection {
            type_name,
            items: page,
            start,
            has_next: end < hi || end < items.len() && before.is_none(),
            has_prev: start > 0,
        }))
    }

    fn course_kind(&self, id: u64) -> Option<Kind<'a>> {
        self.g
            .u
            .courses
            .get(id)
            .filter(|c| c.workflow_state != CourseState::Deleted)
            .map(Kind::Course)
    }
}

/// What an unmodelled field resolves to: null, or for non-null fields an empty list, false,
/// zero or the empty string.
fn default_for<'a>(info: &ResolveInfo<'_>) -> ResolvedValue<'a> {
    let ty = &info.field_definition().ty;
    if !ty.is_non_null() {
        return ResolvedValue::null();
    }
    if ty.is_list() {
        return ResolvedValue::list(std::iter::empty());
    }
    match ty.inner_named_type().as_str() {
        "Boolean" => ResolvedValue::leaf(false),
        "Int" | "Float" => ResolvedValue::leaf(0),
        _ => ResolvedValue::leaf(""),
    }
}

impl<'a> ObjectValue for Obj<'a> {
    fn type_name(&self) -> &str {
        match &self.k {
            Kind::Query => "Query",
            Kind::Course(_) => "Course",
            Kind::Section(_) => "Section",
            Kind::Enrollment(_) => "Enrollment",
            Kind::User(_) => "User",
            Kind::Assignment(_) => "Assignment",
            Kind::Module(_) => "Module",
            Kind::ModuleItem(_) => "ModuleItem",
            Kind::Content(i) => match i.kind {
                ItemKind::ExternalUrl => "ExternalUrl",
                ItemKind::SubHeader => "SubHeader",
                ItemKind::Page => "Page",
                ItemKind::File => "File",
                ItemKind::Discussion => "Discussion",
                ItemKind::Quiz => "Quiz",
                ItemKind::ExternalTool => "ModuleExternalTool",
                ItemKind::Assignment => "Assignment",
            },
            Kind::Term(_) => "Term",
            Kind::Account(_) => "Account",
            Kind::Connection { type_name, .. } | Kind::Edge { type_name, .. } => type_name,
            Kind::PageInfo { .. } => "PageInfo",
            Kind::Grades { .. } => "Grades",
        }
    }

    fn resolve_field<'b>(
        &'b self,
        info: &'b ResolveInfo<'b>,
    ) -> Result<ResolvedValue<'b>, FieldError> {
        let u = self.g.u;
        let name = info.field_name();
        match (&self.k, name) {
            // ---------------------------------------------------------------- Query
            (Kind::Query, "course") => {
                let id = arg_str(info, "id").and_then(|r| id_arg(r, "Course"));
                let sis = arg_str(info, "sisId").and_then(|s| u.sis_courses.get(s).copied());
                Ok(self.opt(id.or(sis).and_then(|i| self.course_kind(i))))
            }
            (Kind::Query, "allCourses") => Ok(self.list(
                u.courses
                    .iter()
                    .filter(|c| c.workflow_state != CourseState::Deleted)
                    .map(Kind::Course)
                    .collect(),
            )),
            (Kind::Query, "account") => {
                let id = arg_str(info, "id").and_then(|r| id_arg(r, "Account"));
                let sis = arg_str(info, "sisId").and_then(|s| {
                    u.accounts
                        .iter()
                        .find(|a| a.sis_account_id.as_deref() == Some(s))
                        .map(|a| a.id)
                });
                Ok(self.opt(
                    id.or(sis)
                        .and_then(|i| u.accounts.get(i))
                        .map(Kind::Account),
                ))
            }
            (Kind::Query, "term") => {
                let id = arg_str(info, "id").and_then(|r| id_arg(r, "Term"));
                let sis = arg_str(info, "sisId").and_then(|s| {
                    u.terms
                        .iter()
                        .find(|t| t.sis_term_id.as_deref() == Some(s))
                        .map(|t| t.id)
                });
                Ok(self.opt(id.or(sis).and_then(|i| u.terms.get(i)).map(Kind::Term)))
            }
            (Kind::Query, "assignment") => {
                let id = arg_str(info, "id").and_then(|r| id_arg(r, "Assignment"));
                Ok(self.opt(
                    id.and_then(|i| u.assignments.get(i))
                        .filter(|a| a.workflow_state != "deleted")
                        .map(Kind::Assignment),
                ))
            }
            (Kind::Query, "moduleItem") => {
                let id = arg_str(info, "id").and_then(|r| id_arg(r, "ModuleItem"));
                Ok(self.opt(
                    id.and_then(|i| u.module_items.get(i))
                        .filter(|i| i.workflow_state != "deleted")
                        .map(Kind::ModuleItem),
                ))
            }
            (Kind::Query, "legacyNode") | (Kind::Query, "node") => {
                let (t, id) = if name == "node" {
                    match arg_str(info, "id").and_then(decode_relay) {
                        Some(x) => x,
                        None => return Ok(ResolvedValue::null()),
                    }
                } else {
                    let t = arg_str(info, "type").unwrap_or("").to_owned();
                    match arg_str(info, "_id").and_then(|i| i.parse().ok()) {
                        Some(i) => (t, i),
                        None => return Ok(ResolvedValue::null()),
                    }
                };
                let k = match t.as_str() {
                    "Course" => self.course_kind(id),
                    "Section" => u
                        .sections
                        .get(id)
                        .filter(|s| s.workflow_state == "active")
                        .map(Kind::Section),
                    "Enrollment" => u.enrollments.get(id).map(Kind::Enrollment),
                    "User" => u.users.get(id).map(Kind::User),
                    "Assignment" => u.assignments.get(id).map(Kind::Assignment),
                    "Module" => u
                        .modules
                        .get(id)
                        .filter(|m| m.workflow_state != "deleted")
                        .map(Kind::Module),
                    "ModuleItem" => u
                        .module_items
                        .get(id)
                        .filter(|i| i.workflow_state != "deleted")
                        .map(Kind::ModuleItem),
                    "Term" => u.terms.get(id).map(Kind::Term),
                    "Account" => u.accounts.get(id).map(Kind::Account),
                    _ => None,
                };
                Ok(self.opt(k))
            }

            // ---------------------------------------------------------------- Course
            (Kind::Course(c), "_id") => leaf(c.id.to_string()),
            (Kind::Course(c), "id") => leaf(relay_id("Course", c.id)),
            (Kind::Course(c), "name") => leaf(c.name.clone()),
            (Kind::Course(c), "courseCode") => leaf(c.course_code.clone()),
            (Kind::Course(c), "sisId") => leaf(c.sis_course_id.clone()),
            (Kind::Course(c), "state") => leaf(c.workflow_state.event()),
            (Kind::Course(c), "createdAt") => leaf(ts(Some(c.created_at))),
            (Kind::Course(c), "updatedAt") => leaf(ts(Some(c.updated_at))),
            (Kind::Course(c), "assetString") => leaf(format!("course_{}", c.id)),
            (Kind::Course(c), "account") => {
                Ok(self.opt(u.accounts.get(c.account_id).map(Kind::Account)))
            }
            (Kind::Course(c), "term") => Ok(self.opt(u.terms.get(c.term_id).map(Kind::Term))),
            (Kind::Course(c), "sectionsConnection") => {
                let items = University::ids(&u.course_sections, c.id)
                    .iter()
                    .filter_map(|s| u.sections.get(*s))
                    .filter(|s| s.workflow_state == "active")
                    .map(Kind::Section)
                    .collect();
                self.connection(info, items)
            }
            (Kind::Course(c), "enrollmentsConnection") => {
                let filter = info
                    .arguments()
                    .get("filter")
                    .and_then(JsonValue::as_object);
                let list = |key: &str| -> Option<Vec<String>> {
                    filter
                        .and_then(|f| f.get(key))
                        .and_then(JsonValue::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                };
                let states = list("states");
                let types = list("types");
                let users: Vec<u64> = list("userIds")
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| id_arg(i, "User"))
                    .collect();
                let observed: Vec<u64> = list("associatedUserIds")
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| id_arg(i, "User"))
                    .collect();
                let items = University::ids(&u.course_enrollments, c.id)
                    .iter()
                    .filter_map(|e| u.enrollments.get(*e))
                    .filter(|e| match &states {
                        Some(s) => s.iter().any(|x| x == e.state.as_str()),
                        None => e.state != EnrollmentState::Deleted,
                    })
                    .filter(|e| {
                        types
                            .as_ref()
                            .is_none_or(|t| t.iter().any(|x| x == e.kind.as_str()))
                    })
                    .filter(|e| users.is_empty() || users.contains(&e.user_id))
                    .filter(|e| {
                        observed.is_empty()
                            || e.associated_user_id.is_some_and(|a| observed.contains(&a))
                    })
                    .map(Kind::Enrollment)
                    .collect();
                self.connection(info, items)
            }
            (Kind::Course(c), "assignmentsConnection") => {
                let filter = info
                    .arguments()
                    .get("filter")
                    .and_then(JsonValue::as_object);
                let search = filter
                    .and_then(|f| f.get("searchTerm"))
                    .and_then(JsonValue::as_str)
                    .map(str::to_lowercase);
                let items = University::ids(&u.course_assignments, c.id)
                    .iter()
                    .filter_map(|a| u.assignments.get(*a))
                    .filter(|a| a.workflow_state != "deleted")
                    .filter(|a| {
                        search
                            .as_ref()
                            .is_none_or(|s| a.name.to_lowercase().contains(s))
                    })
                    .map(Kind::Assignment)
                    .collect();
                self.connection(info, items)
            }
            (Kind::Course(c), "modulesConnection") => {
                let mut mods: Vec<&Module> = University::ids(&u.course_modules, c.id)
                    .iter()
                    .filter_map(|m| u.modules.get(*m))
                    .filter(|m| m.workflow_state != "deleted")
                    .collect();
                mods.sort_by_key(|m| (m.position, m.id));
                self.connection(info, mods.into_iter().map(Kind::Module).collect())
            }
            (Kind::Course(c), "usersConnection") | (Kind::Course(c), "usersConnectionCount") => {
                let mut ids: Vec<u64> = University::ids(&u.course_enrollments, c.id)
                    .iter()
                    .filter_map(|e| u.enrollments.get(*e))
                    .filter(|e| {
                        matches!(e.state, EnrollmentState::Active | EnrollmentState::Invited)
                    })
                    .map(|e| e.user_id)
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                if name == "usersConnectionCount" {
                    return leaf(ids.len() as i64);
                }
                let items = ids
                    .iter()
                    .filter_map(|i| u.users.get(*i))
                    .map(Kind::User)
                    .collect();
                self.connection(info, items)
            }

            // ---------------------------------------------------------------- Section
            (Kind::Section(s), "_id") => leaf(s.id.to_string()),
            (Kind::Section(s), "id") => leaf(relay_id("Section", s.id)),
            (Kind::Section(s), "name") => leaf(s.name.clone()),
            (Kind::Section(s), "sisId") => leaf(s.sis_section_id.clone()),
            (Kind::Section(s), "createdAt") => leaf(ts(Some(s.created_at))),
            (Kind::Section(s), "updatedAt") => leaf(ts(Some(s.updated_at))),
            (Kind::Section(s), "userCount") => {
                let n = University::ids(&u.section_enrollments, s.id)
                    .iter()
                    .filter_map(|e| u.enrollments.get(*e))
                    .filter(|e| e.state == EnrollmentState::Active)
                    .count();
                leaf(n as i64)
            }

            // ---------------------------------------------------------------- Enrollment
            (Kind::Enrollment(e), "_id") => leaf(e.id.to_string()),
            (Kind::Enrollment(e), "id") => leaf(relay_id("Enrollment", e.id)),
            (Kind::Enrollment(e), "type") => leaf(e.kind.as_str()),
            (Kind::Enrollment(e), "state") => leaf(e.state.as_str()),
            (Kind::Enrollment(e), "sisRole") => leaf(e.kind.sis_role()),
            (Kind::Enrollment(e), "userId") => leaf(e.user_id.to_string()),
            (Kind::Enrollment(e), "courseSectionId") => leaf(e.section_id.to_string()),
            (Kind::Enrollment(e), "createdAt") => leaf(ts(Some(e.created_at))),
            (Kind::Enrollment(e), "updatedAt") => leaf(ts(Some(e.updated_at))),
            (Kind::Enrollment(e), "lastActivityAt") => leaf(ts(e.last_activity_at)),
            (Kind::Enrollment(e), "limitPrivilegesToCourseSection") => {
                leaf(e.limit_privileges_to_course_section)
            }
            (Kind::Enrollment(e), "concluded") => leaf(e.state == EnrollmentState::Completed),
            (Kind::Enrollment(_), "totalActivityTime") => leaf(0),
            (Kind::Enrollment(e), "assetString") => leaf(format!("enrollment_{}", e.id)),
            (Kind::Enrollment(e), "htmlUrl") => leaf(format!(
                "{}/courses/{}/users/{}",
                self.g.origin, e.course_id, e.user_id
            )),
            (Kind::Enrollment(e), "section") => {
                Ok(self.opt(u.sections.get(e.section_id).map(Kind::Section)))
            }
            (Kind::Enrollment(e), "course") => Ok(self.opt(self.course_kind(e.course_id))),
            (Kind::Enrollment(e), "user") => Ok(self.opt(u.users.get(e.user_id).map(Kind::User))),
            (Kind::Enrollment(e), "associatedUser") => Ok(self.opt(
                e.associated_user_id
                    .and_then(|a| u.users.get(a))
                    .map(Kind::User),
            )),
            (Kind::Enrollment(e), "grades") => {
                if e.kind != EnrollmentType::StudentEnrollment {
                    return Ok(ResolvedValue::null());
                }
                let (current, final_score) =
                    crate::changes::course_scores(u, e.course_id, e.user_id);
                Ok(self.obj(Kind::Grades {
                    current,
                    final_score,
                }))
            }

            // ---------------------------------------------------------------- Grades
            (Kind::Grades { current, .. }, "currentScore" | "unpostedCurrentScore") => {
                leaf(*current)
            }
            (Kind::Grades { final_score, .. }, "finalScore" | "unpostedFinalScore") => {
                leaf(*final_score)
            }
            (Kind::Grades { .. }, "state") => leaf("active"),

            // ---------------------------------------------------------------- User
            (Kind::User(x), "_id") => leaf(x.id.to_string()),
            (Kind::User(x), "id") => leaf(relay_id("User", x.id)),
            (Kind::User(x), "name") => leaf(x.name.clone()),
            (Kind::User(x), "sortableName") => leaf(x.sortable_name.clone()),
            (Kind::User(x), "shortName") => leaf(x.short_name.clone()),
            (Kind::User(x), "firstName") => leaf(x.first_name.clone()),
            (Kind::User(x), "lastName") => leaf(x.last_name.clone()),
            (Kind::User(x), "sisId") => leaf(x.sis_user_id.clone()),
            (Kind::User(x), "integrationId") => leaf(x.integration_id.clone()),
            (Kind::User(x), "loginId") => leaf(x.login_id.clone()),
            (Kind::User(x), "email") => leaf(x.email.clone()),
            (Kind::User(x), "pronouns") => leaf(x.pronouns.clone()),
            (Kind::User(x), "uuid") => leaf(x.uuid.clone()),
            (Kind::User(x), "createdAt") => leaf(ts(Some(x.created_at))),
            (Kind::User(x), "updatedAt") => leaf(ts(Some(x.updated_at))),
            (Kind::User(x), "enrollments") => {
                let course = arg_str(info, "courseId").and_then(|c| id_arg(c, "Course"));
                let items = University::ids(&u.user_enrollments, x.id)
                    .iter()
                    .filter_map(|e| u.enrollments.get(*e))
                    .filter(|e| {
                        course.is_none_or(|c| e.course_id == c)
                            && e.state != EnrollmentState::Deleted
                    })
                    .map(Kind::Enrollment)
                    .collect();
                Ok(self.list(items))
            }

            // ---------------------------------------------------------------- Assignment
            (Kind::Assignment(a), "_id") => leaf(a.id.to_string()),
            (Kind::Assignment(a), "id") => leaf(relay_id("Assignment", a.id)),
            (Kind::Assignment(a), "name" | "title") => leaf(a.name.clone()),
            (Kind::Assignment(a), "description") => leaf(a.description.clone()),
            (Kind::Assignment(a), "dueAt") => leaf(ts(a.due_at)),
            (Kind::Assignment(a), "lockAt") => leaf(ts(a.lock_at)),
            (Kind::Assignment(a), "unlockAt") => leaf(ts(a.unlock_at)),
            (Kind::Assignment(a), "pointsPossible") => leaf(a.points_possible),
            (Kind::Assignment(a), "state") => leaf(a.workflow_state),
            (Kind::Assignment(a), "published") => leaf(a.published),
            (Kind::Assignment(a), "submissionTypes") => Ok(ResolvedValue::list(
                a.submission_types.iter().map(|t| ResolvedValue::leaf(*t)),
            )),
            (Kind::Assignment(a), "gradingType") => leaf(a.grading_type),
            (Kind::Assignment(a), "position") => leaf(i64::from(a.position)),
            (Kind::Assignment(a), "courseId") => leaf(a.course_id.to_string()),
            (Kind::Assignment(a), "assignmentGroupId") => leaf(a.assignment_group_id.to_string()),
            (Kind::Assignment(a), "createdAt") => leaf(ts(Some(a.created_at))),
            (Kind::Assignment(a), "updatedAt") => leaf(ts(Some(a.updated_at))),
            (Kind::Assignment(a), "htmlUrl") => leaf(format!(
                "{}/courses/{}/assignments/{}",
                self.g.origin, a.course_id, a.id
            )),
            (Kind::Assignment(_), "type") => leaf("Assignment"),
            (Kind::Assignment(_), "visibleToEveryone") => leaf(true),
            (Kind::Assignment(a), "course") => Ok(self.opt(self.course_kind(a.course_id))),
            (Kind::Assignment(a), "needsGradingCount") => {
                let n = u
                    .submissions
                    .range((a.id, 0)..=(a.id, u64::MAX))
                    .filter(|(_, s)| s.workflow_state == "submitted")
                    .count();
                leaf(n as i64)
            }

            // ---------------------------------------------------------------- Module
            (Kind::Module(m), "_id") => leaf(m.id.to_string()),
            (Kind::Module(m), "id") => leaf(relay_id("Module", m.id)),
            (Kind::Module(m), "name") => leaf(m.name.clone()),
            (Kind::Module(m), "position") => leaf(i64::from(m.position)),
            (Kind::Module(m), "published") => leaf(m.published),
            (Kind::Module(m), "unlockAt") => leaf(ts(m.unlock_at)),
            (Kind::Module(m), "requireSequentialProgress") => leaf(m.require_sequential_progress),
            (Kind::Module(m), "createdAt") => leaf(ts(Some(m.created_at))),
            (Kind::Module(m), "updatedAt") => leaf(ts(Some(m.updated_at))),
            (Kind::Module(m), "moduleItems") => {
                let mut items: Vec<&ModuleItem> = University::ids(&u.module_items_by_module, m.id)
                    .iter()
                    .filter_map(|i| u.module_items.get(*i))
                    .filter(|i| i.workflow_state != "deleted")
                    .collect();
                items.sort_by_key(|i| (i.position, i.id));
                Ok(self.list(items.into_iter().map(Kind::ModuleItem).collect()))
            }
            (Kind::Module(m), "requirementCount") => {
                let n = University::ids(&u.module_items_by_module, m.id)
                    .iter()
                    .filter_map(|i| u.module_items.get(*i))
                    .filter(|i| i.workflow_state != "deleted" && i.completion_requirement.is_some())
                    .count();
                leaf(n as i64)
            }

            // ---------------------------------------------------------------- ModuleItem
            (Kind::ModuleItem(i), "_id") => leaf(i.id.to_string()),
            (Kind::ModuleItem(i), "id") => leaf(relay_id("ModuleItem", i.id)),
            (Kind::ModuleItem(i), "position") => leaf(i64::from(i.position)),
            (Kind::ModuleItem(i), "indent") => leaf(i64::from(i.indent)),
            (Kind::ModuleItem(i), "createdAt") => leaf(ts(Some(i.created_at))),
            (Kind::ModuleItem(i), "updatedAt") => leaf(ts(Some(i.updated_at))),
            (Kind::ModuleItem(i), "url") => leaf(format!(
                "{}/courses/{}/modules/items/{}",
                self.g.origin, i.course_id, i.id
            )),
            (Kind::ModuleItem(i), "module") => {
                Ok(self.opt(u.modules.get(i.module_id).map(Kind::Module)))
            }
            (Kind::ModuleItem(i), "content") => match i.kind {
                ItemKind::Assignment => Ok(self.opt(
                    i.content_id
                        .and_then(|a| u.assignments.get(a))
                        .map(Kind::Assignment),
                )),
                _ => Ok(self.obj(Kind::Content(i))),
            },

            // ---------------------------------------------------------------- module item content
            (Kind::Content(i), "_id") => leaf(i.content_id.unwrap_or(i.id).to_string()),
            (Kind::Content(i), "id") => {
                leaf(relay_id(i.kind.as_str(), i.content_id.unwrap_or(i.id)))
            }
            (Kind::Content(i), "title" | "displayName") => leaf(i.title.clone()),
            (Kind::Content(i), "url") => match i.kind {
                ItemKind::ExternalUrl | ItemKind::ExternalTool => leaf(i.external_url.clone()),
                ItemKind::File => leaf(format!(
                    "{}/files/{}",
                    self.g.origin,
                    i.content_id.unwrap_or(0)
                )),
                _ => Ok(ResolvedValue::null()),
            },
            (Kind::Content(i), "newTab") => leaf(i.new_tab),
            (Kind::Content(i), "published") => leaf(i.published),
            (Kind::Content(i), "type") => leaf(i.kind.as_str()),
            (Kind::Content(i), "createdAt") => leaf(ts(Some(i.created_at))),
            (Kind::Content(i), "updatedAt") => leaf(ts(Some(i.updated_at))),

            // ---------------------------------------------------------------- Term, Account
            (Kind::Term(t), "_id") => leaf(t.id.to_string()),
            (Kind::Term(t), "id") => leaf(relay_id("Term", t.id)),
            (Kind::Term(t), "name") => leaf(t.name.clone()),
            (Kind::Term(t), "sisId" | "sisTermId") => leaf(t.sis_term_id.clone()),
            (Kind::Term(t), "startAt") => leaf(ts(t.start_at)),
            (Kind::Term(t), "endAt") => leaf(ts(t.end_at)),
            (Kind::Term(t), "coursesConnection") => {
                let items = u
                    .courses
                    .iter()
                    .filter(|c| c.term_id == t.id && c.workflow_state != CourseState::Deleted)
                    .map(Kind::Course)
                    .collect();
                self.connection(info, items)
            }
            (Kind::Account(a), "_id") => leaf(a.id.to_string()),
            (Kind::Account(a), "id") => leaf(relay_id("Account", a.id)),
            (Kind::Account(a), "name") => leaf(a.name.clone()),
            (Kind::Account(a), "sisId") => leaf(a.sis_account_id.clone()),
            (Kind::Account(a), "coursesConnection") => {
                // Canvas answers `account.associated_courses`: sub-accounts' courses too
                // (the same tree REST's account courses list walks), in id order.
                let mut ids: Vec<u64> = u
                    .accounts
                    .iter()
                    .filter(|x| x.id == a.id || x.parent_account_id == Some(a.id))
                    .flat_map(|x| University::ids(&u.account_courses, x.id).to_vec())
                    .collect();
                ids.sort_unstable();
                let items = ids
                    .iter()
                    .filter_map(|c| u.courses.get(*c))
                    .filter(|c| c.workflow_state != CourseState::Deleted)
                    .map(Kind::Course)
                    .collect();
                self.connection(info, items)
            }
            (Kind::Account(a), "subAccountsConnection") => {
                let items = u
                    .accounts
                    .iter()
                    .filter(|x| x.parent_account_id == Some(a.id))
                    .map(Kind::Account)
                    .collect();
                self.connection(info, items)
            }

            // ---------------------------------------------------------------- connections
            (Kind::Connection { items, .. }, "nodes") => Ok(self.list(items.clone())),
            (
                Kind::Connection {
                    type_name,
                    items,
                    start,
                    ..
                },
                "edges",
            ) => {
                let edge = type_name
                    .strip_suffix("Connection")
                    .map_or_else(|| "Edge".to_owned(), |b| format!("{b}Edge"));
                let edges = items
                    .iter()
                    .enumerate()
                    .map(|(n, k)| Kind::Edge {
                        type_name: edge.clone(),
                        cursor: cursor(start + n),
                        node: Box::new(k.clone()),
                    })
                    .collect();
                Ok(self.list(edges))
            }
            (
                Kind::Connection {
                    items,
                    start,
                    has_next,
                    has_prev,
                    ..
                },
                "pageInfo",
            ) => Ok(self.obj(Kind::PageInfo {
                start: (!items.is_empty()).then(|| cursor(*start)),
                end: (!items.is_empty()).then(|| cursor(start + items.len() - 1)),
                has_next: *has_next,
                has_prev: *has_prev,
            })),
            (Kind::Edge { cursor, .. }, "cursor") => leaf(cursor.clone()),
            (Kind::Edge { node, .. }, "node") => Ok(self.obj((**node).clone())),
            (Kind::PageInfo { start, .. }, "startCursor") => leaf(start.clone()),
            (Kind::PageInfo { end, .. }, "endCursor") => leaf(end.clone()),
            (Kind::PageInfo { has_next, .. }, "hasNextPage") => leaf(*has_next),
            (Kind::PageInfo { has_prev, .. }, "hasPreviousPage") => leaf(*has_prev),

            _ => Ok(default_for(info)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_ids_round_trip() {
        assert_eq!(decode_cursor(&cursor(0)), Some(1));
        assert_eq!(decode_cursor(&cursor(41)), Some(42));
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(relay_id("Course", 1), "Q291cnNlLTE=");
        assert_eq!(decode_relay("Q291cnNlLTE="), Some(("Course".to_owned(), 1)));
        assert_eq!(id_arg("Q291cnNlLTE=", "Course"), Some(1));
        assert_eq!(id_arg("17", "Course"), Some(17));
        assert_eq!(id_arg("Q291cnNlLTE=", "User"), None);
    }
}
