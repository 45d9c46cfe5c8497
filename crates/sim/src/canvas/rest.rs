//! Canvas REST handlers for what coursewire reads and writes: accounts and their courses,
//! courses, sections, enrollments (per course, section and user, with state and type
//! filters), users, modules and module items (including creating a module and an
//! `ExternalUrl` item), assignments and submissions. Reads and writes go through the world
//! lock; writes go through [`crate::changes`] so they emit the same Live Events as the UI.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::canvas::error::ApiError;
use crate::canvas::pagination::{LinkBase, bookmarked, numbered};
use crate::canvas::params::BodyParams;
use crate::canvas::{Ctx, ItemCount, render};
use crate::changes::{self, NewEnrollment, NewItem};
use crate::clock::parse_iso;
use crate::live_events::envelope::Origin;
use crate::sim::AppState;
use crate::university::*;

type ApiResult = Result<Response, ApiError>;

fn list(items: Vec<Value>, link: String) -> Response {
    let n = items.len();
    let mut r = Json(items).into_response();
    if let Ok(v) = HeaderValue::from_str(&link) {
        r.headers_mut().insert(header::LINK, v);
    }
    r.extensions_mut().insert(ItemCount(n));
    r
}

fn one(v: Value) -> Response {
    let mut r = Json(v).into_response();
    r.extensions_mut().insert(ItemCount(1));
    r
}

fn id(raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

fn resolve(u: &University, kind: &str, raw: &str, caller: u64) -> Result<u64, ApiError> {
    u.resolve(kind, raw, caller).ok_or(ApiError::NotFound)
}

fn live_course(u: &University, raw: &str, caller: u64) -> Result<u64, ApiError> {
    let id = resolve(u, "course", raw, caller)?;
    match u.courses.get(id) {
        Some(c) if c.workflow_state != CourseState::Deleted => Ok(id),
        _ => Err(ApiError::NotFound),
    }
}

fn origin_for(ctx: &Ctx, method: &'static str, role: Option<&'static str>) -> Origin {
    Origin::Request {
        user_id: ctx.caller.user_id,
        method,
        path: ctx.path_and_query.clone(),
        api: true,
        role,
    }
}

// ---------------------------------------------------------------- accounts

pub async fn list_accounts(State(s): State<AppState>, ctx: Ctx) -> ApiResult {
    s.with_world(|w| {
        let all: Vec<Value> = w.uni.accounts.iter().map(render::account).collect();
        let (items, link) = numbered(
            &all,
            &ctx.params,
            &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
        );
        Ok(list(items, link))
    })
}

pub async fn get_account(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(account_id): Path<String>,
) -> ApiResult {
    let _ = &ctx;
    s.with_world(|w| {
        // `self` is the domain's root account, as in Canvas.
        let account_id = match account_id.as_str() {
            "self" => w.uni.root_account_id,
            other => id(other)?,
        };
        let a = w.uni.accounts.get(account_id).ok_or(ApiError::NotFound)?;
        Ok(one(render::account(a)))
    })
}

pub async fn list_sub_accounts(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(account_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let parent = id(&account_id)?;
        w.uni.accounts.get(parent).ok_or(ApiError::NotFound)?;
        let recursive = ctx.params.bool("recursive").unwrap_or(false);
        let all: Vec<Value> = w
            .uni
            .accounts
            .iter()
            .filter(|a| {
                a.parent_account_id == Some(parent)
                    || (recursive && a.root_account_id == Some(parent) && a.id != parent)
            })
            .map(render::account)
            .collect();
        let (items, link) = numbered(
            &all,
            &ctx.params,
            &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
        );
        Ok(list(items, link))
    })
}

/// Accounts under `account` (itself included).
fn account_tree(u: &University, account: u64) -> Vec<u64> {
    u.accounts
        .iter()
        .filter(|a| a.id == account || a.parent_account_id == Some(account))
        .map(|a| a.id)
        .collect()
}

pub async fn list_account_courses(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(account_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let u = &w.uni;
        let account = id(&account_id)?;
        u.accounts.get(account).ok_or(ApiError::NotFound)?;
        let p = &ctx.params;
        let states: Vec<&str> = p.all("state");
        let term = p.u64("enrollment_term_id")?;
        let search = p.text("search_term").map(|t| t.to_lowercase());
        if search.as_ref().is_some_and(|t| t.chars().count() < 2) {
            return Err(ApiError::bad_request(
                "search_term must be at least 2 characters",
            ));
        }
        let published = p.bool("published");
        let mut ids: Vec<u64> = account_tree(u, account)
            .into_iter()
            .flat_map(|a| University::ids(&u.account_courses, a).to_vec())
            .collect();
        ids.sort_unstable();
        let all: Vec<Value> = ids
            .iter()
            .filter_map(|c| u.courses.get(*c))
            .filter(|c| {
                let st = c.workflow_state.rest();
                // Default: everything but deleted (Canvas's `all` minus deleted).
                let state_ok = if states.is_empty() {
                    st != "deleted"
                } else {
                    states.contains(&st) || (states.contains(&"all") && st != "deleted")
                };
                state_ok
                    && term.is_none_or(|t| c.term_id == t)
                    && published.is_none_or(|pb| (c.workflow_state == CourseState::Available) == pb)
                    && search.as_ref().is_none_or(|t| {
                        c.name.to_lowercase().contains(t)
                            || c.course_code.to_lowercase().contains(t)
                            || c.sis_course_id
                                .as_ref()
                                .is_some_and(|x| x.to_lowercase().contains(t))
                    })
            })
            .map(|c| {
                render::with_includes(
                    render::course(u, c, &ctx.origin),
                    render::COURSE_INCLUDES,
                    &ctx.params.all("include"),
                )
            })
            .collect();
        let (items, link) = numbered(&all, p, &LinkBase::new(&ctx.origin, &ctx.path, p));
        Ok(list(items, link))
    })
}

pub async fn list_account_users(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(account_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let u = &w.uni;
        id(&account_id)
            .ok()
            .and_then(|a| u.accounts.get(a))
            .ok_or(ApiError::NotFound)?;
        let search = search_term(&ctx.params)?;
        let all: Vec<Value> = u
            .users
            .iter()
            .filter(|x| x.workflow_state != "deleted")
            .filter(|x| search.as_ref().is_none_or(|t| matches_user(x, t)))
            .map(|x| {
                render::with_includes(
                    render::user(x),
                    render::USER_LIST_INCLUDES,
                    &ctx.params.all("include"),
                )
            })
            .collect();
        let (items, link) = numbered(
            &all,
            &ctx.params,
            &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
        );
        Ok(list(items, link))
    })
}

/// `search_term` (lower-cased), at least 3 characters as Canvas requires.
fn search_term(p: &super::params::Params) -> Result<Option<String>, ApiError> {
    let search = p.text("search_term").map(|t| t.to_lowercase());
    if search.as_ref().is_some_and(|t| t.chars().count() < 3) {
        return Err(ApiError::bad_request(
            "search_term must be at least 3 characters",
        ));
    }
    Ok(search)
}

/// A user search matches the name, login or SIS id.
fn matches_user(x: &User, term: &str) -> bool {
    x.name.to_lowercase().contains(term)
        || x.login_id.to_lowercase().contains(term)
        || x.sis_user_id
            .as_ref()
            .is_some_and(|s| s.to_lowercase().contains(term))
}

// ---------------------------------------------------------------- courses, sections, users

/// `GET /courses`: the caller's own courses (by enrollment), as Canvas lists them.
pub async fn list_my_courses(State(s): State<AppState>, ctx: Ctx) -> ApiResult {
    s.with_world(|w| {
        let u = &w.uni;
        let wanted: Vec<EnrollmentState> = match ctx.params.get("enrollment_state") {
            None => vec![
                EnrollmentState::Active,
                EnrollmentState::Invited,
                EnrollmentState::CreationPending,
            ],
            Some("active") => vec![EnrollmentState::Active],
            Some("invited_or_pending") => {
                vec![EnrollmentState::Invited, EnrollmentState::CreationPending]
            }
            Some("completed") => vec![EnrollmentState::Completed],
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid enrollment_state {other}"
                )));
            }
        };
        let kind = match ctx.params.get("enrollment_type") {
            None => None,
            Some(t @ ("student" | "teacher" | "ta" | "observer" | "designer")) => {
                Some(t.to_owned())
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid enrollment_type {other}"
                )));
            }
        };
        let mut ids: Vec<u64> = University::ids(&u.user_enrollments, ctx.caller.user_id)
            .iter()
            .filter_map(|e| u.enrollments.get(*e))
            .filter(|e| wanted.contains(&e.state))
            .filter(|e| kind.as_deref().is_none_or(|k| e.kind.sis_role() == k))
            .map(|e| e.course_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let all: Vec<Value> = ids
            .iter()
            .filter_map(|c| u.courses.get(*c))
            .filter(|c| c.workflow_state != CourseState::Deleted)
            .map(|c| {
                render::with_includes(
                    render::course(u, c, &ctx.origin),
                    render::COURSE_INCLUDES,
                    &ctx.params.all("include"),
                )
            })
            .collect();
        let (items, link) = numbered(
            &all,
            &ctx.params,
            &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
        );
        Ok(list(items, link))
    })
}

pub async fn get_course(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let c = w.uni.courses.get(cid).ok_or(ApiError::NotFound)?;
        Ok(one(render::with_includes(
            render::course(&w.uni, c, &ctx.origin),
            render::COURSE_INCLUDES,
            &ctx.params.all("include"),
        )))
    })
}

pub async fn update_course(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let state = match p.get("course[event]") {
            None => None,
            Some("offer") => Some(CourseState::Available),
            Some("claim") => Some(CourseState::Unpublished),
            Some("conclude") => Some(CourseState::Completed),
            Some("delete") => Some(CourseState::Deleted),
            Some("undelete") => Some(CourseState::Unpublished),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid course[event] {other}"
                )));
            }
        };
        let origin = origin_for(&ctx, "PUT", None);
        changes::update_course(w, cid, p.text("course[name]"), state, &origin, now)?;
        let c = w.uni.courses.get(cid).ok_or(ApiError::NotFound)?;
        Ok(one(render::with_includes(
            render::course(&w.uni, c, &ctx.origin),
            render::COURSE_INCLUDES,
            &ctx.params.all("include"),
        )))
    })
}

fn active_sections(u: &University, course_id: u64) -> Vec<&Section> {
    University::ids(&u.course_sections, course_id)
        .iter()
        .filter_map(|s| u.sections.get(*s))
        .filter(|s| s.workflow_state == "active")
        .collect()
}

pub async fn list_sections(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let all: Vec<Value> = active_sections(&w.uni, cid)
            .into_iter()
            .map(|x| {
                render::with_includes(
                    render::section(&w.uni, x),
                    render::SECTION_INCLUDES,
                    &ctx.params.all("include"),
                )
            })
            .collect();
        // `?all=1` (undocumented) switches pagination off, as in Canvas.
        if ctx.params.bool("all") == Some(true) {
            let n = all.len();
            let mut r = Json(all).into_response();
            r.extensions_mut().insert(ItemCount(n));
            return Ok(r);
        }
        let (items, link) = numbered(
            &all,
            &ctx.params,
            &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
        );
        Ok(list(items, link))
    })
}

fn section_json(w: &crate::world::World, section: u64, course: Option<u64>) -> ApiResult {
    let s = w.uni.sections.get(section).ok_or(ApiError::NotFound)?;
    if s.workflow_state != "active" || course.is_some_and(|c| c != s.course_id) {
        return Err(ApiError::NotFound);
    }
    Ok(one(render::with_includes(
        render::section(&w.uni, s),
        render::SECTION_INCLUDES,
        &[],
    )))
}

pub async fn get_course_section(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, sid)): Path<(String, String)>,
) -> ApiResult {
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let sid = resolve(&w.uni, "section", &sid, ctx.caller.user_id)?;
        section_json(w, sid, Some(cid))
    })
}

pub async fn get_section(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(sid): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let sid = resolve(&w.uni, "section", &sid, ctx.caller.user_id)?;
        section_json(w, sid, None)
    })
}

pub async fn get_user(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(user_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let uid = resolve(&w.uni, "user", &user_id, ctx.caller.user_id)?;
        let user = w
            .uni
            .users
            .get(uid)
            .filter(|x| x.workflow_state != "deleted")
            .ok_or(ApiError::NotFound)?;
        Ok(one(render::with_includes(
            render::user(user),
            render::USER_INCLUDES,
            &ctx.params.all("include"),
        )))
    })
}

pub async fn list_course_users(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let u = &w.uni;
        let cid = live_course(u, &course_id, ctx.caller.user_id)?;
        let p = &ctx.params;
        let types: Vec<EnrollmentType> = p
            .all("enrollment_type")
            .iter()
            .filter_map(|t| match *t {
                "student" => Some(EnrollmentType::StudentEnrollment),
                "teacher" => Some(EnrollmentType::TeacherEnrollment),
                "ta" => Some(EnrollmentType::TaEnrollment),
                "designer" => Some(EnrollmentType::DesignerEnrollment),
                "observer" => Some(EnrollmentType::ObserverEnrollment),
                _ => None,
            })
            .collect();
        let states: Vec<&str> = p.all("enrollment_state");
        let search = search_term(p)?;
        let with_enrollments = p.includes("enrollments");
        let mut by_user: std::collections::BTreeMap<u64, Vec<&Enrollment>> =
            std::collections::BTreeMap::new();
        for e in University::ids(&u.course_enrollments, cid)
            .iter()
            .filter_map(|e| u.enrollments.get(*e))
        {
            let state_ok = if states.is_empty() {
                matches!(e.state, EnrollmentState::Active | EnrollmentState::Invited)
            } else {
                states.contains(&e.state.as_str())
            };
            if state_ok && (types.is_empty() || types.contains(&e.kind)) {
                by_user.entry(e.user_id).or_default().push(e);
            }
        }
        let mut all: Vec<(String, Value)> = by_user
            .iter()
            .filter_map(|(uid, es)| {
                let user = u
                    .users
                    .get(*uid)
                    .filter(|x| search.as_ref().is_none_or(|t| matches_user(x, t)))?;
                let mut v = render::user(user);
                if with_enrollments {
                    v["enrollments"] = json!(
                        es.iter()
                            .map(|e| render::enrollment(u, e, &ctx.origin))
                            .collect::<Vec<_>>()
                    );
                }
                let v = render::with_includes(v, render::USER_LIST_INCLUDES, &p.all("include"));
                Some((user.sortable_name.clone(), v))
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let all: Vec<Value> = all.into_iter().map(|(_, v)| v).collect();
        let (items, link) = numbered(&all, p, &LinkBase::new(&ctx.origin, &ctx.path, p));
        Ok(list(items, link))
    })
}

// ---------------------------------------------------------------- enrollments

/// The documented filters of the enrollments API.
fn enrollment_filter(
    ctx: &Ctx,
    user_context: bool,
) -> Result<impl Fn(&Enrollment) -> bool, ApiError> {
    let p = &ctx.params;
    // The `current_and_*` states are a user's view: on a user's path or with `user_id`.
    let user_context = user_context || p.get("user_id").is_some();
    let mut states: Vec<EnrollmentState> = Vec::new();
    for s in p.all("state") {
        use EnrollmentState::*;
        match s {
            // Canvas's scopes of the same names (enrollment.rb).
            "current_and_invited" if user_context => states.extend([Active, Invited]),
            "current_and_future" if user_context => {
                states.extend([Active, Invited, CreationPending]);
            }
            "current_and_concluded" if user_context => states.extend([Active, Completed]),
            other => states.push(
                EnrollmentState::parse(other)
                    .ok_or_else(|| ApiError::bad_request(format!("invalid state {other}")))?,
            ),
        }
    }
    if states.is_empty() {
        // Default: active and invited (admins in a course context also see inactive).
        states = vec![EnrollmentState::Active, EnrollmentState::Invited];
        if !user_context {
            states.push(EnrollmentState::Inactive);
        }
    }
    let mut types = Vec::new();
    for t in p.all("type").into_iter().chain(p.all("role")) {
        types.push(
            EnrollmentType::parse(t)
                .ok_or_else(|| ApiError::bad_request(format!("invalid type {t}")))?,
        );
    }
    let user = p.u64("user_id")?;
    Ok(move |e: &Enrollment| {
        states.contains(&e.state)
            && (types.is_empty() || types.contains(&e.kind))
            && user.is_none_or(|x| x == e.user_id)
    })
}

fn enrollment_page(
    w: &crate::world::World,
    ctx: &Ctx,
    ids: &[u64],
    user_context: bool,
) -> ApiResult {
    let keep = enrollment_filter(ctx, user_context)?;
    let u = &w.uni;
    let matching: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|e| u.enrollments.get(*e).is_some_and(&keep))
        .collect();
    let (page, link) = bookmarked(
        &matching,
        &ctx.params,
        &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
    )?;
    let items = page
        .iter()
        .filter_map(|e| u.enrollments.get(*e))
        .map(|e| render::enrollment(u, e, &ctx.origin))
        .collect();
    Ok(list(items, link))
}

pub async fn list_course_enrollments(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let ids = University::ids(&w.uni.course_enrollments, cid).to_vec();
        enrollment_page(w, &ctx, &ids, false)
    })
}

pub async fn list_section_enrollments(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(section_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let sid = resolve(&w.uni, "section", &section_id, ctx.caller.user_id)?;
        w.uni
            .sections
            .get(sid)
            .filter(|x| x.workflow_state == "active")
            .ok_or(ApiError::NotFound)?;
        let ids = University::ids(&w.uni.section_enrollments, sid).to_vec();
        enrollment_page(w, &ctx, &ids, false)
    })
}

pub async fn list_user_enrollments(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(user_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let uid = resolve(&w.uni, "user", &user_id, ctx.caller.user_id)?;
        w.uni.users.get(uid).ok_or(ApiError::NotFound)?;
        let ids = University::ids(&w.uni.user_enrollments, uid).to_vec();
        enrollment_page(w, &ctx, &ids, true)
    })
}

pub async fn get_enrollment(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((account_id, eid)): Path<(String, String)>,
) -> ApiResult {
    s.with_world(|w| {
        let u = &w.uni;
        id(&account_id)
            .ok()
            .and_then(|a| u.accounts.get(a))
            .ok_or(ApiError::NotFound)?;
        let e = u.enrollments.get(id(&eid)?).ok_or(ApiError::NotFound)?;
        Ok(one(render::enrollment(u, e, &ctx.origin)))
    })
}

fn new_enrollment(
    u: &University,
    p: &crate::canvas::params::Params,
    course_id: u64,
    section_id: Option<u64>,
    caller: u64,
) -> Result<NewEnrollment, ApiError> {
    let user_raw = p
        .text("enrollment[user_id]")
        .ok_or_else(|| ApiError::bad_request("enrollment[user_id] is required"))?;
    let user_id = u
        .resolve("user", &user_raw, caller)
        .ok_or_else(|| ApiError::bad_request("enrollment[user_id] does not name a user"))?;
    let kind = match p.text("enrollment[type]") {
        None => EnrollmentType::StudentEnrollment,
        Some(t) => EnrollmentType::parse(&t)
            .ok_or_else(|| ApiError::bad_request(format!("invalid enrollment[type] {t}")))?,
    };
    let state = match p.text("enrollment[enrollment_state]").as_deref() {
        None | Some("invited") => EnrollmentState::Invited,
        Some("active") => EnrollmentState::Active,
        Some("inactive") => EnrollmentState::Inactive,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid enrollment[enrollment_state] {other}"
            )));
        }
    };
    let section_id = match (section_id, p.u64("enrollment[course_section_id]")?) {
        (Some(s), _) => Some(s),
        (None, s) => s,
    };
    let associated_user_id = p.u64("enrollment[associated_user_id]")?;
    Ok(NewEnrollment {
        course_id,
        section_id,
        user_id,
        kind,
        state,
        limit_privileges_to_course_section: p
            .bool("enrollment[limit_privileges_to_course_section]")
            .unwrap_or(false),
        associated_user_id,
    })
}

pub async fn enroll_in_course(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let n = new_enrollment(&w.uni, &p, cid, None, ctx.caller.user_id)?;
        let origin = origin_for(&ctx, "POST", None);
        let eid = changes::create_enrollment(w, n, &origin, now)?;
        let e = w.uni.enrollments.get(eid).ok_or(ApiError::Internal)?;
        Ok(one(render::enrollment(&w.uni, e, &ctx.origin)))
    })
}

pub async fn enroll_in_section(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(section_id): Path<String>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let sid = resolve(&w.uni, "section", &section_id, ctx.caller.user_id)?;
        let course_id = w
            .uni
            .sections
            .get(sid)
            .filter(|x| x.workflow_state == "active")
            .ok_or(ApiError::NotFound)?
            .course_id;
        let n = new_enrollment(&w.uni, &p, course_id, Some(sid), ctx.caller.user_id)?;
        let origin = origin_for(&ctx, "POST", None);
        let eid = changes::create_enrollment(w, n, &origin, now)?;
        let e = w.uni.enrollments.get(eid).ok_or(ApiError::Internal)?;
        Ok(one(render::enrollment(&w.uni, e, &ctx.origin)))
    })
}

fn course_enrollment(u: &University, course: u64, raw: &str) -> Result<u64, ApiError> {
    let eid = id(raw)?;
    match u.enrollments.get(eid) {
        Some(e) if e.course_id == course => Ok(eid),
        _ => Err(ApiError::NotFound),
    }
}

pub async fn end_enrollment(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, eid)): Path<(String, String)>,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let eid = course_enrollment(&w.uni, cid, &eid)?;
        let state = match ctx.params.get("task").unwrap_or("conclude") {
            "conclude" => EnrollmentState::Completed,
            "delete" => EnrollmentState::Deleted,
            "inactivate" | "deactivate" => EnrollmentState::Inactive,
            other => return Err(ApiError::bad_request(format!("invalid task {other}"))),
        };
        let origin = origin_for(&ctx, "DELETE", None);
        changes::set_enrollment_state(w, eid, state, &origin, now)?;
        let e = w.uni.enrollments.get(eid).ok_or(ApiError::Internal)?;
        Ok(one(render::enrollment(&w.uni, e, &ctx.origin)))
    })
}

pub async fn reactivate_enrollment(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, eid)): Path<(String, String)>,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let eid = course_enrollment(&w.uni, cid, &eid)?;
        let origin = origin_for(&ctx, "PUT", None);
        changes::set_enrollment_state(w, eid, EnrollmentState::Active, &origin, now)?;
        let e = w.uni.enrollments.get(eid).ok_or(ApiError::Internal)?;
        Ok(one(render::enrollment(&w.uni, e, &ctx.origin)))
    })
}

// ---------------------------------------------------------------- modules

fn course_module(u: &University, course: u64, raw: &str) -> Result<u64, ApiError> {
    let mid = id(raw)?;
    match u.modules.get(mid) {
        Some(m) if m.course_id == course && m.workflow_state != "deleted" => Ok(mid),
        _ => Err(ApiError::NotFound),
    }
}

pub async fn list_modules(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let u = &w.uni;
        let cid = live_course(u, &course_id, ctx.caller.user_id)?;
        let with_items = ctx.params.includes("items");
        let search = ctx.params.text("search_term").map(|t| t.to_lowercase());
        let mut modules: Vec<&Module> = University::ids(&u.course_modules, cid)
            .iter()
            .filter_map(|m| u.modules.get(*m))
            .filter(|m| m.workflow_state != "deleted")
            .filter(|m| {
                search
                    .as_ref()
                    .is_none_or(|t| m.name.to_lowercase().contains(t))
            })
            .collect();
        modules.sort_by_key(|m| (m.position, m.id));
        let all: Vec<Value> = modules
            .iter()
            .map(|m| render::module(u, m, &ctx.origin, with_items))
            .collect();
        let (items, link) = numbered(
            &all,
            &ctx.params,
            &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
        );
        Ok(list(items, link))
    })
}

pub async fn get_module(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, mid)): Path<(String, String)>,
) -> ApiResult {
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let mid = course_module(&w.uni, cid, &mid)?;
        let m = w.uni.modules.get(mid).ok_or(ApiError::NotFound)?;
        Ok(one(render::module(
            &w.uni,
            m,
            &ctx.origin,
            ctx.params.includes("items"),
        )))
    })
}

pub async fn create_module(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let name = p
            .text("module[name]")
            .ok_or_else(|| ApiError::bad_request("module[name] is required"))?;
        let position = p
            .u64("module[position]")?
            .map(|x| x.min(u64::from(u32::MAX)) as u32);
        let role = changes::role_in(&w.uni, cid, ctx.caller.user_id);
        let origin = origin_for(&ctx, "POST", role);
        let target = format!("{cid} {name}");
        let mid = changes::create_module(w, cid, name, position, &origin, now)?;
        w.writes.record("module.create", target);
        let m = w.uni.modules.get(mid).ok_or(ApiError::Internal)?;
        Ok(one(render::module(&w.uni, m, &ctx.origin, false)))
    })
}

pub async fn update_module(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, mid)): Path<(String, String)>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let mid = course_module(&w.uni, cid, &mid)?;
        let role = changes::role_in(&w.uni, cid, ctx.caller.user_id);
        let origin = origin_for(&ctx, "PUT", role);
        changes::update_module(
            w,
            cid,
            mid,
            p.text("module[name]"),
            p.bool("module[published]"),
            &origin,
            now,
        )?;
        w.writes.record("module.update", format!("{cid} {mid}"));
        let m = w.uni.modules.get(mid).ok_or(ApiError::Internal)?;
        Ok(one(render::module(&w.uni, m, &ctx.origin, false)))
    })
}

pub async fn delete_module(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, mid)): Path<(String, String)>,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let mid = course_module(&w.uni, cid, &mid)?;
        let role = changes::role_in(&w.uni, cid, ctx.caller.user_id);
        let origin = origin_for(&ctx, "DELETE", role);
        changes::delete_module(w, cid, mid, &origin, now)?;
        w.writes.record("module.delete", format!("{cid} {mid}"));
        let m = w.uni.modules.get(mid).ok_or(ApiError::Internal)?;
        Ok(one(render::module(&w.uni, m, &ctx.origin, false)))
    })
}

pub async fn list_module_items(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, mid)): Path<(String, String)>,
) -> ApiResult {
    s.with_world(|w| {
        let u = &w.uni;
        let cid = live_course(u, &course_id, ctx.caller.user_id)?;
        let mid = course_module(u, cid, &mid)?;
        let mut items: Vec<&ModuleItem> = University::ids(&u.module_items_by_module, mid)
            .iter()
            .filter_map(|i| u.module_items.get(*i))
            .filter(|i| i.workflow_state != "deleted")
            .collect();
        items.sort_by_key(|i| (i.position, i.id));
        let all: Vec<Value> = items
            .iter()
            .map(|i| render::module_item(u, i, &ctx.origin))
            .collect();
        let (page, link) = numbered(
            &all,
            &ctx.params,
            &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
        );
        Ok(list(page, link))
    })
}

pub async fn get_module_item(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, mid, iid)): Path<(String, String, String)>,
) -> ApiResult {
    s.with_world(|w| {
        let u = &w.uni;
        let cid = live_course(u, &course_id, ctx.caller.user_id)?;
        let mid = course_module(u, cid, &mid)?;
        let item = u
            .module_items
            .get(id(&iid)?)
            .filter(|i| i.module_id == mid && i.workflow_state != "deleted")
            .ok_or(ApiError::NotFound)?;
        Ok(one(render::module_item(u, item, &ctx.origin)))
    })
}

pub async fn create_module_item(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, mid)): Path<(String, String)>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let mid = course_module(&w.uni, cid, &mid)?;
        let kind_raw = p
            .text("module_item[type]")
            .ok_or_else(|| ApiError::bad_request("module_item[type] is required"))?;
        let kind = ItemKind::parse(&kind_raw).ok_or_else(|| {
            ApiError::bad_request(format!("invalid module_item[type] {kind_raw}"))
        })?;
        let completion = match p.text("module_item[completion_requirement][type]") {
            None => None,
            Some(t) => Some(CompletionRequirement {
                kind: t,
                min_score: p.f64("module_item[completion_requirement][min_score]")?,
            }),
        };
        let item = NewItem {
            title: p.text("module_item[title]"),
            kind,
            content_id: p.u64("module_item[content_id]")?,
            page_url: p.text("module_item[page_url]"),
            external_url: p.text("module_item[external_url]"),
            position: p
                .u64("module_item[position]")?
                .map(|x| x.min(u64::from(u32::MAX)) as u32),
            indent: p.u64("module_item[indent]")?.unwrap_or(0).min(10) as u32,
            new_tab: p.bool("module_item[new_tab]").unwrap_or(false),
            completion,
        };
        let role = changes::role_in(&w.uni, cid, ctx.caller.user_id);
        let origin = origin_for(&ctx, "POST", role);
        let target = item.external_url.clone().or(item.title.clone());
        let iid = changes::create_module_item(w, cid, mid, item, &origin, now)?;
        w.writes.record(
            "module_item.create",
            format!("{cid} {}", target.unwrap_or_default()),
        );
        let item = w.uni.module_items.get(iid).ok_or(ApiError::Internal)?;
        Ok(one(render::module_item(&w.uni, item, &ctx.origin)))
    })
}

pub async fn update_module_item(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, mid, iid)): Path<(String, String, String)>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let mid = course_module(&w.uni, cid, &mid)?;
        let iid = id(&iid)?;
        let patch = changes::ItemPatch {
            title: p.text("module_item[title]"),
            external_url: p.text("module_item[external_url]"),
            indent: p.u64("module_item[indent]")?.map(|x| x.min(10) as u32),
            new_tab: p.bool("module_item[new_tab]"),
            published: p.bool("module_item[published]"),
        };
        let role = changes::role_in(&w.uni, cid, ctx.caller.user_id);
        let origin = origin_for(&ctx, "PUT", role);
        changes::update_module_item(w, cid, mid, iid, patch, &origin, now)?;
        w.writes
            .record("module_item.update", format!("{cid} {iid}"));
        let item = w.uni.module_items.get(iid).ok_or(ApiError::Internal)?;
        Ok(one(render::module_item(&w.uni, item, &ctx.origin)))
    })
}

pub async fn delete_module_item(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, mid, iid)): Path<(String, String, String)>,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let mid = course_module(&w.uni, cid, &mid)?;
        let iid = id(&iid)?;
        let origin = origin_for(&ctx, "DELETE", None);
        changes::delete_module_item(w, cid, mid, iid, &origin, now)?;
        w.writes
            .record("module_item.delete", format!("{cid} {iid}"));
        let item = w.uni.module_items.get(iid).ok_or(ApiError::Internal)?;
        Ok(one(render::module_item(&w.uni, item, &ctx.origin)))
    })
}

// ---------------------------------------------------------------- assignments and submissions

fn course_assignment(u: &University, course: u64, raw: &str) -> Result<u64, ApiError> {
    let aid = id(raw)?;
    match u.assignments.get(aid) {
        Some(a) if a.course_id == course && a.workflow_state != "deleted" => Ok(aid),
        _ => Err(ApiError::NotFound),
    }
}

fn assignment_json(u: &University, a: &Assignment, origin: &str, includes: &[&str]) -> Value {
    let mut needs = 0;
    let mut any = false;
    for ((_, _), s) in u.submissions.range((a.id, 0)..=(a.id, u64::MAX)) {
        if s.submitted_at.is_some() {
            any = true;
            if s.workflow_state == "submitted" {
                needs += 1;
            }
        }
    }
    render::with_includes(
        render::assignment(a, origin, needs, any),
        render::ASSIGNMENT_INCLUDES,
        includes,
    )
}

pub async fn list_assignments(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
) -> ApiResult {
    s.with_world(|w| {
        let u = &w.uni;
        let cid = live_course(u, &course_id, ctx.caller.user_id)?;
        let search = ctx.params.text("search_term").map(|t| t.to_lowercase());
        let wanted: Vec<u64> = ctx
            .params
            .all("assignment_ids")
            .iter()
            .filter_map(|x| x.parse().ok())
            .collect();
        let mut rows: Vec<&Assignment> = University::ids(&u.course_assignments, cid)
            .iter()
            .filter_map(|a| u.assignments.get(*a))
            .filter(|a| a.workflow_state != "deleted")
            .filter(|a| wanted.is_empty() || wanted.contains(&a.id))
            .filter(|a| {
                search
                    .as_ref()
                    .is_none_or(|t| a.name.to_lowercase().contains(t))
            })
            .collect();
        match ctx.params.get("order_by") {
            Some("name") => rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
            Some("due_at") => rows.sort_by_key(|a| (a.due_at.is_none(), a.due_at, a.id)),
            _ => rows.sort_by_key(|a| (a.position, a.id)),
        }
        let all: Vec<Value> = rows
            .iter()
            .map(|a| assignment_json(u, a, &ctx.origin, &ctx.params.all("include")))
            .collect();
        let (items, link) = numbered(
            &all,
            &ctx.params,
            &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
        );
        Ok(list(items, link))
    })
}

pub async fn get_assignment(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, aid)): Path<(String, String)>,
) -> ApiResult {
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let aid = course_assignment(&w.uni, cid, &aid)?;
        let a = w.uni.assignments.get(aid).ok_or(ApiError::NotFound)?;
        Ok(one(assignment_json(
            &w.uni,
            a,
            &ctx.origin,
            &ctx.params.all("include"),
        )))
    })
}

fn time_param(
    p: &crate::canvas::params::Params,
    key: &str,
) -> Result<Option<Option<i64>>, ApiError> {
    match p.get(key) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(Some(None)),
        Some(v) => parse_iso(v)
            .map(|t| Some(Some(t)))
            .ok_or_else(|| ApiError::bad_request(format!("{key} must be an ISO-8601 time"))),
    }
}

pub async fn create_assignment(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let name = p
            .text("assignment[name]")
            .ok_or_else(|| ApiError::bad_request("assignment[name] is required"))?;
        const TYPES: [&str; 10] = [
            "online_quiz",
            "none",
            "on_paper",
            "discussion_topic",
            "external_tool",
            "online_upload",
            "online_text_entry",
            "online_url",
            "media_recording",
            "student_annotation",
        ];
        let mut types = Vec::new();
        for t in p.all("assignment[submission_types]") {
            types.push(
                *TYPES
                    .iter()
                    .find(|x| **x == t)
                    .ok_or_else(|| ApiError::bad_request(format!("invalid submission type {t}")))?,
            );
        }
        if types.is_empty() {
            types.push("none");
        }
        let n = changes::NewAssignment {
            name,
            points_possible: p
                .f64("assignment[points_possible]")?
                .unwrap_or(0.0)
                .max(0.0),
            due_at: time_param(&p, "assignment[due_at]")?.flatten(),
            // Created unpublished unless `published=true` is sent (canvas.md B5).
            published: p.bool("assignment[published]").unwrap_or(false),
            submission_types: types,
            description: p.get("assignment[description]").unwrap_or("").to_owned(),
        };
        let role = changes::role_in(&w.uni, cid, ctx.caller.user_id);
        let origin = origin_for(&ctx, "POST", role);
        let aid = changes::create_assignment(w, cid, n, &origin, now)?;
        let a = w.uni.assignments.get(aid).ok_or(ApiError::Internal)?;
        Ok(one(assignment_json(
            &w.uni,
            a,
            &ctx.origin,
            &ctx.params.all("include"),
        )))
    })
}

pub async fn update_assignment(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, aid)): Path<(String, String)>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let aid = course_assignment(&w.uni, cid, &aid)?;
        let patch = changes::AssignmentPatch {
            name: p.text("assignment[name]"),
            due_at: time_param(&p, "assignment[due_at]")?,
            points_possible: p.f64("assignment[points_possible]")?,
            published: p.bool("assignment[published]"),
            description: p.get("assignment[description]").map(str::to_owned),
        };
        let role = changes::role_in(&w.uni, cid, ctx.caller.user_id);
        let origin = origin_for(&ctx, "PUT", role);
        changes::update_assignment(w, aid, patch, &origin, now)?;
        let a = w.uni.assignments.get(aid).ok_or(ApiError::Internal)?;
        Ok(one(assignment_json(
            &w.uni,
            a,
            &ctx.origin,
            &ctx.params.all("include"),
        )))
    })
}

pub async fn list_submissions(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, aid)): Path<(String, String)>,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let u = &w.uni;
        let cid = live_course(u, &course_id, ctx.caller.user_id)?;
        let aid = course_assignment(u, cid, &aid)?;
        let a = u.assignments.get(aid).ok_or(ApiError::NotFound)?;
        let all: Vec<Value> = u
            .course_students(cid)
            .into_iter()
            .map(|student| {
                render::with_includes(
                    render::submission(
                        &u.submission_or_implicit(a, student),
                        &ctx.origin,
                        now,
                        a.due_at,
                    ),
                    render::SUBMISSION_INCLUDES,
                    &ctx.params.all("include"),
                )
            })
            .collect();
        let (items, link) = numbered(
            &all,
            &ctx.params,
            &LinkBase::new(&ctx.origin, &ctx.path, &ctx.params),
        );
        Ok(list(items, link))
    })
}

pub async fn get_submission(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, aid, user)): Path<(String, String, String)>,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let u = &w.uni;
        let cid = live_course(u, &course_id, ctx.caller.user_id)?;
        let aid = course_assignment(u, cid, &aid)?;
        let uid = resolve(u, "user", &user, ctx.caller.user_id)?;
        if !u.course_students(cid).contains(&uid) {
            return Err(ApiError::NotFound);
        }
        let a = u.assignments.get(aid).ok_or(ApiError::NotFound)?;
        Ok(one(render::with_includes(
            render::submission(
                &u.submission_or_implicit(a, uid),
                &ctx.origin,
                now,
                a.due_at,
            ),
            render::SUBMISSION_INCLUDES,
            &ctx.params.all("include"),
        )))
    })
}

/// `submission[posted_grade]`: points (`"13.5"`), a percentage (`"40%"`), or pass/fail words.
fn parse_grade(raw: &str, points: f64) -> Result<Option<f64>, ApiError> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::bad_request(format!("invalid submission[posted_grade] {t}"));
    match t {
        "pass" | "complete" => return Ok(Some(points)),
        "fail" | "incomplete" => return Ok(Some(0.0)),
        _ => {}
    }
    if let Some(pct) = t.strip_suffix('%') {
        let x: f64 = pct.trim().parse().map_err(|_| bad())?;
        return if x.is_finite() && x >= 0.0 {
            Ok(Some(points * x / 100.0))
        } else {
            Err(bad())
        };
    }
    let x: f64 = t.parse().map_err(|_| bad())?;
    if x.is_finite() && x >= 0.0 {
        Ok(Some(x))
    } else {
        Err(bad())
    }
}

pub async fn grade_submission(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((course_id, aid, user)): Path<(String, String, String)>,
    BodyParams(p): BodyParams,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let cid = live_course(&w.uni, &course_id, ctx.caller.user_id)?;
        let aid = course_assignment(&w.uni, cid, &aid)?;
        let uid = resolve(&w.uni, "user", &user, ctx.caller.user_id)?;
        let points = w
            .uni
            .assignments
            .get(aid)
            .map_or(0.0, |a| a.points_possible);
        if let Some(raw) = p.get("submission[posted_grade]") {
            let score = parse_grade(raw, points)?;
            let role = changes::role_in(&w.uni, cid, ctx.caller.user_id);
            let origin = origin_for(&ctx, "PUT", role);
            changes::grade(w, aid, uid, score, Some(ctx.caller.user_id), &origin, now)?;
        } else if !w.uni.course_students(cid).contains(&uid) {
            return Err(ApiError::NotFound);
        }
        let u = &w.uni;
        let a = u.assignments.get(aid).ok_or(ApiError::NotFound)?;
        Ok(one(render::with_includes(
            render::submission(
                &u.submission_or_implicit(a, uid),
                &ctx.origin,
                now,
                a.due_at,
            ),
            render::SUBMISSION_INCLUDES,
            &ctx.params.all("include"),
        )))
    })
}

/// `GET /courses/:id/students/submissions`: bookmark-paginated by submission id.
pub async fn list_student_submissions(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(course_id): Path<String>,
) -> ApiResult {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let u = &w.uni;
        let cid = live_course(u, &course_id, ctx.caller.user_id)?;
        let p = &ctx.params;
        let student_ids: Vec<&str> = p.all("student_ids");
        let wanted_students: Option<Vec<u64>> =
            if student_ids.is_empty() || student_ids.contains(&"all") {
                None
            } else {
                if student_ids.len() > 100 {
                    return Err(ApiError::bad_request("too many student_ids (max 100)"));
                }
                Some(
                    student_ids
                        .iter()
                        .filter_map(|x| u.resolve("user", x, ctx.caller.user_id))
                        .collect(),
                )
            };
        let wanted_assignments: Vec<u64> = p
            .all("assignment_ids")
            .iter()
            .filter_map(|x| x.parse().ok())
            .collect();
        let submitted_since = time_param(p, "submitted_since")?.flatten();
        let graded_since = time_param(p, "graded_since")?.flatten();
        let state = p.get("workflow_state").filter(|x| !x.is_empty());
        let students: Vec<u64> = u
            .course_students(cid)
            .into_iter()
            .filter(|x| wanted_students.as_ref().is_none_or(|w| w.contains(x)))
            .collect();
        let mut subs: Vec<Submission> = Vec::new();
        for a in University::ids(&u.course_assignments, cid)
            .iter()
            .filter_map(|a| u.assignments.get(*a))
        {
            if a.workflow_state == "deleted"
                || !a.published
                || (!wanted_assignments.is_empty() && !wanted_assignments.contains(&a.id))
            {
                continue;
            }
            for student in &students {
                let sub = u.submission_or_implicit(a, *student);
                let keep = submitted_since.is_none_or(|t| sub.submitted_at.is_some_and(|x| x >= t))
                    && graded_since.is_none_or(|t| sub.graded_at.is_some_and(|x| x >= t))
                    && state.is_none_or(|st| st == sub.workflow_state);
                if keep {
                    subs.push(sub);
                }
            }
        }
        subs.sort_by_key(|x| x.id);
        let ids: Vec<u64> = subs.iter().map(|x| x.id).collect();
        let (page, link) = bookmarked(&ids, p, &LinkBase::new(&ctx.origin, &ctx.path, p))?;
        let due: std::collections::BTreeMap<u64, Option<i64>> =
            University::ids(&u.course_assignments, cid)
                .iter()
                .filter_map(|a| u.assignments.get(*a))
                .map(|a| (a.id, a.due_at))
                .collect();
        let items: Vec<Value> = page
            .iter()
            .filter_map(|id| {
                subs.binary_search_by_key(id, |x| x.id)
                    .ok()
                    .map(|i| &subs[i])
            })
            .map(|x| {
                render::with_includes(
                    render::submission(
                        x,
                        &ctx.origin,
                        now,
                        due.get(&x.assignment_id).copied().flatten(),
                    ),
                    render::SUBMISSION_INCLUDES,
                    &ctx.params.all("include"),
                )
            })
            .collect();
        Ok(list(items, link))
    })
}
