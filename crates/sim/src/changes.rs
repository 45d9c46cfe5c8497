//! Changes to the university and the Live Events each one emits. REST handlers and the term
//! timeline both go through these functions, so a change made by coursewire through the API
//! and one made by the scenario produce the same rows and the same events. Each function
//! validates first and mutates only when the whole change is valid.

use crate::live_events::envelope::{self as ev, Context, Origin};
use crate::university::*;
use crate::world::World;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("The specified resource does not exist.")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ChangeError {
    ChangeError::Invalid(msg.into())
}

#[derive(Debug, Clone)]
pub struct NewEnrollment {
    pub course_id: u64,
    pub section_id: Option<u64>,
    pub user_id: u64,
    pub kind: EnrollmentType,
    pub state: EnrollmentState,
    pub limit_privileges_to_course_section: bool,
    pub associated_user_id: Option<u64>,
}

pub fn create_enrollment(
    w: &mut World,
    n: NewEnrollment,
    origin: &Origin,
    now: i64,
) -> Result<u64, ChangeError> {
    let u = &w.uni;
    let course = u
        .courses
        .get(n.course_id)
        .ok_or(ChangeError::NotFound("course"))?;
    if course.workflow_state == CourseState::Deleted {
        return Err(ChangeError::NotFound("course"));
    }
    u.users
        .get(n.user_id)
        .ok_or(ChangeError::NotFound("user"))?;
    let section_id = match n.section_id {
        Some(s) => {
            let sec = u.sections.get(s).ok_or(ChangeError::NotFound("section"))?;
            if sec.course_id != n.course_id || sec.workflow_state != "active" {
                return Err(ChangeError::NotFound("section"));
            }
            s
        }
        None => default_section(w, n.course_id, now)?,
    };
    let id = w.uni.add_enrollment(Enrollment {
        id: w.uni.enrollments.next_id(),
        course_id: n.course_id,
        section_id,
        user_id: n.user_id,
        kind: n.kind,
        state: n.state,
        associated_user_id: n.associated_user_id,
        limit_privileges_to_course_section: n.limit_privileges_to_course_section,
        created_at: now,
        updated_at: now,
        last_activity_at: None,
        from_sis: false,
    });
    emit_enrollment(
        w,
        id,
        "enrollment_created",
        "enrollment_state_created",
        origin,
        now,
    );
    Ok(id)
}

/// The course's default section, created (with its event) when the course has none active.
fn default_section(w: &mut World, course_id: u64, now: i64) -> Result<u64, ChangeError> {
    let existing = University::ids(&w.uni.course_sections, course_id)
        .iter()
        .copied()
        .filter(|s| {
            w.uni
                .sections
                .get(*s)
                .is_some_and(|x| x.workflow_state == "active")
        })
        .min_by_key(|s| {
            (
                w.uni.sections.get(*s).is_some_and(|x| !x.default_section),
                *s,
            )
        });
    if let Some(s) = existing {
        return Ok(s);
    }
    let name = w
        .uni
        .courses
        .get(course_id)
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let origin = Origin::Job {
        tag: "Course#default_section",
    };
    create_section_inner(w, course_id, name, None, true, &origin, now)
}

fn emit_enrollment(
    w: &mut World,
    id: u64,
    name: &str,
    state_name: &str,
    origin: &Origin,
    now: i64,
) {
    let Some(e) = w.uni.enrollments.get(id) else {
        return;
    };
    let course = e.course_id;
    let body = ev::enrollment_body(name, e, &w.uni);
    let state_body = ev::enrollment_state_body(state_name, e, &w.uni);
    w.emit(name, origin, Context::Course(course), body, now);
    w.emit(state_name, origin, Context::Course(course), state_body, now);
}

/// Move an enrollment to `state` (conclude, delete, inactivate, reactivate, accept…).
pub fn set_enrollment_state(
    w: &mut World,
    id: u64,
    state: EnrollmentState,
    origin: &Origin,
    now: i64,
) -> Result<(), ChangeError> {
    let e = w
        .uni
        .enrollments
        .get_mut(id)
        .ok_or(ChangeError::NotFound("enrollment"))?;
    if e.state == state {
        return Ok(());
    }
    e.state = state;
    e.updated_at = now;
    emit_enrollment(
        w,
        id,
        "enrollment_updated",
        "enrollment_state_updated",
        origin,
        now,
    );
    Ok(())
}

pub fn create_section(
    w: &mut World,
    course_id: u64,
    name: String,
    sis_section_id: Option<String>,
    origin: &Origin,
    now: i64,
) -> Result<u64, ChangeError> {
    let c = w
        .uni
        .courses
        .get(course_id)
        .ok_or(ChangeError::NotFound("course"))?;
    if c.workflow_state == CourseState::Deleted {
        return Err(ChangeError::NotFound("course"));
    }
    if let Some(sis) = &sis_section_id
        && w.uni.sis_sections.contains_key(sis)
    {
        return Err(invalid(format!("sis_section_id {sis} is already in use")));
    }
    create_section_inner(w, course_id, name, sis_section_id, false, origin, now)
}

fn create_section_inner(
    w: &mut World,
    course_id: u64,
    name: String,
    sis_section_id: Option<String>,
    default_section: bool,
    origin: &Origin,
    now: i64,
) -> Result<u64, ChangeError> {
    let id = w.uni.add_section(Section {
        id: w.uni.sections.next_id(),
        course_id,
        name,
        sis_section_id,
        integration_id: None,
        created_at: now,
        updated_at: now,
        start_at: None,
        end_at: None,
        restrict_enrollments_to_section_dates: false,
        default_section,
        workflow_state: "active",
    });
    emit_section(w, id, "course_section_created", origin, now);
    Ok(id)
}

fn emit_section(w: &mut World, id: u64, name: &str, origin: &Origin, now: i64) {
    let Some(s) = w.uni.sections.get(id) else {
        return;
    };
    let course = s.course_id;
    let body = ev::section_body(name, s, &w.uni);
    w.emit(name, origin, Context::Course(course), body, now);
}

pub fn update_section(
    w: &mut World,
    id: u64,
    name: Option<String>,
    delete: bool,
    origin: &Origin,
    now: i64,
) -> Result<(), ChangeError> {
    let s = w
        .uni
        .sections
        .get_mut(id)
        .ok_or(ChangeError::NotFound("section"))?;
    if s.workflow_state == "deleted" {
        return Err(ChangeError::NotFound("section"));
    }
    let mut changed = false;
    if let Some(n) = name.filter(|n| *n != s.name) {
        s.name = n;
        changed = true;
    }
    if delete {
        s.workflow_state = "deleted";
        changed = true;
    }
    if changed {
        s.updated_at = now;
        emit_section(w, id, "course_section_updated", origin, now);
    }
    Ok(())
}

pub fn update_course(
    w: &mut World,
    id: u64,
    name: Option<String>,
    state: Option<CourseState>,
    origin: &Origin,
    now: i64,
) -> Result<(), ChangeError> {
    let c = w
        .uni
        .courses
        .get_mut(id)
        .ok_or(ChangeError::NotFound("course"))?;
    let mut changed = false;
    if let Some(n) = name.filter(|n| *n != c.name) {
        c.name = n;
        changed = true;
    }
    if let Some(s) = state.filter(|s| *s != c.workflow_state) {
        c.workflow_state = s;
        changed = true;
    }
    if changed {
        c.updated_at = now;
        let body = ev::course_body("course_updated", c);
        w.emit("course_updated", origin, Context::Course(id), body, now);
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub login_id: String,
    pub sis_user_id: Option<String>,
    pub email: Option<String>,
    pub kind: UserKind,
}

pub fn create_user(
    w: &mut World,
    n: NewUser,
    origin: &Origin,
    now: i64,
) -> Result<u64, ChangeError> {
    if n.login_id.trim().is_empty() {
        return Err(invalid("pseudonym[unique_id] is required"));
    }
    if w.uni.logins.contains_key(&n.login_id) {
        return Err(invalid(format!(
            "ID already in use for this account and authentication provider: {}",
            n.login_id
        )));
    }
    if let Some(sis) = &n.sis_user_id
        && w.uni.sis_users.contains_key(sis)
    {
        return Err(invalid(format!("SIS ID {sis} is already in use")));
    }
    let (first, last) = match n.name.rsplit_once(' ') {
        Some((f, l)) => (f.to_owned(), l.to_owned()),
        None => (n.name.clone(), String::new()),
    };
    let uuid = crate::ids::canvas_uuid(&mut crate::ids::rng(w.uni.seed ^ now as u64, &n.login_id));
    let email = n
        .email
        .unwrap_or_else(|| format!("{}@sim.coursewire.test", n.login_id));
    let id = w.uni.add_user(User {
        id: w.uni.users.next_id(),
        sortable_name: if last.is_empty() {
            first.clone()
        } else {
            format!("{last}, {first}")
        },
        short_name: n.name.clone(),
        name: n.name,
        first_name: first,
        last_name: last,
        sis_user_id: n.sis_user_id,
        integration_id: None,
        login_id: n.login_id,
        email,
        uuid,
        pronouns: None,
        created_at: now,
        updated_at: now,
        workflow_state: "registered",
        kind: n.kind,
    });
    let root = w.uni.root_account_id;
    if let Some(user) = w.uni.users.get(id) {
        let body = ev::user_body("user_created", user);
        w.emit("user_created", origin, Context::Account(root), body, now);
    }
    Ok(id)
}

pub fn update_user(
    w: &mut World,
    id: u64,
    name: Option<String>,
    origin: &Origin,
    now: i64,
) -> Result<(), ChangeError> {
    let user = w
        .uni
        .users
        .get_mut(id)
        .ok_or(ChangeError::NotFound("user"))?;
    let Some(name) = name.filter(|n| *n != user.name && !n.trim().is_empty()) else {
        return Ok(());
    };
    if let Some((f, l)) = name.rsplit_once(' ') {
        user.first_name = f.to_owned();
        user.last_name = l.to_owned();
        user.sortable_name = format!("{l}, {f}");
    }
    user.short_name = name.clone();
    user.name = name;
    user.updated_at = now;
    let body = ev::user_body("user_updated", user);
    let root = w.uni.root_account_id;
    w.emit("user_updated", origin, Context::Account(root), body, now);
    Ok(())
}

pub fn create_module(
    w: &mut World,
    course_id: u64,
    name: String,
    position: Option<u32>,
    origin: &Origin,
    now: i64,
) -> Result<u64, ChangeError> {
    let c = w
        .uni
        .courses
        .get(course_id)
        .ok_or(ChangeError::NotFound("course"))?;
    if c.workflow_state == CourseState::Deleted {
        return Err(ChangeError::NotFound("course"));
    }
    if name.trim().is_empty() {
        return Err(invalid("module[name] is required"));
    }
    let siblings: Vec<u64> = live_modules(&w.uni, course_id);
    let last = siblings.len() as u32;
    let position = position
        .filter(|p| *p >= 1 && *p <= last)
        .unwrap_or(last + 1);
    for m in &siblings {
        if let Some(module) = w.uni.modules.get_mut(*m)
            && module.position >= position
        {
            module.position += 1;
        }
    }
    // New modules are created unpublished (canvas.md B5).
    let id = w.uni.add_module(Module {
        id: w.uni.modules.next_id(),
        course_id,
        name,
        position,
        published: false,
        workflow_state: "active",
        unlock_at: None,
        require_sequential_progress: false,
        created_at: now,
        updated_at: now,
    });
    if let Some(m) = w.uni.modules.get(id) {
        let body = ev::module_body("module_created", m);
        w.emit(
            "module_created",
            origin,
            Context::Course(course_id),
            body,
            now,
        );
    }
    Ok(id)
}

fn live_modules(u: &University, course_id: u64) -> Vec<u64> {
    University::ids(&u.course_modules, course_id)
        .iter()
        .copied()
        .filter(|m| {
            u.modules
                .get(*m)
                .is_some_and(|x| x.workflow_state != "deleted")
        })
        .collect()
}

pub fn update_module(
    w: &mut World,
    course_id: u64,
    id: u64,
    name: Option<String>,
    published: Option<bool>,
    origin: &Origin,
    now: i64,
) -> Result<(), ChangeError> {
    let m = w
        .uni
        .modules
        .get_mut(id)
        .ok_or(ChangeError::NotFound("module"))?;
    if m.course_id != course_id || m.workflow_state == "deleted" {
        return Err(ChangeError::NotFound("module"));
    }
    let mut changed = false;
    if let Some(n) = name.filter(|n| *n != m.name && !n.trim().is_empty()) {
        m.name = n;
        changed = true;
    }
    if let Some(p) = published.filter(|p| *p != m.published) {
        m.published = p;
        changed = true;
    }
    if changed {
        m.updated_at = now;
        let body = ev::module_body("module_updated", m);
        w.emit(
            "module_updated",
            origin,
            Context::Course(course_id),
            body,
            now,
        );
    }
    Ok(())
}

/// `DELETE /courses/:course_id/modules/:id`: the module and its items are deleted.
pub fn delete_module(
    w: &mut World,
    course_id: u64,
    id: u64,
    origin: &Origin,
    now: i64,
) -> Result<(), ChangeError> {
    let m = w
        .uni
        .modules
        .get_mut(id)
        .filter(|m| m.course_id == course_id && m.workflow_state != "deleted")
        .ok_or(ChangeError::NotFound("module"))?;
    m.workflow_state = "deleted";
    m.updated_at = now;
    let body = ev::module_body("module_updated", m);
    w.emit(
        "module_updated",
        origin,
        Context::Course(course_id),
        body,
        now,
    );
    for item in University::ids(&w.uni.module_items_by_module, id).to_vec() {
        if let Ok(i) = live_item(w, course_id, id, item) {
            i.workflow_state = "deleted";
            i.updated_at = now;
            emit_item_updated(w, item, origin, now);
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NewItem {
    pub title: Option<String>,
    pub kind: ItemKind,
    pub content_id: Option<u64>,
    pub page_url: Option<String>,
    pub external_url: Option<String>,
    pub position: Option<u32>,
    pub indent: u32,
    pub new_tab: bool,
    pub completion: Option<CompletionRequirement>,
}

pub fn create_module_item(
    w: &mut World,
    course_id: u64,
    module_id: u64,
    n: NewItem,
    origin: &Origin,
    now: i64,
) -> Result<u64, ChangeError> {
    let m = w
        .uni
        .modules
        .get(module_id)
        .ok_or(ChangeError::NotFound("module"))?;
    if m.course_id != course_id || m.workflow_state == "deleted" {
        return Err(ChangeError::NotFound("module"));
    }
    let published = m.published;
    let title = match n.kind {
        ItemKind::ExternalUrl | ItemKind::ExternalTool => {
            let url = n.external_url.as_deref().unwrap_or("");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("module_item[external_url] must be an http(s) URL"));
            }
            n.title.clone().unwrap_or_else(|| url.to_owned())
        }
        ItemKind::SubHeader => n
            .title
            .clone()
            .ok_or_else(|| invalid("module_item[title] is required"))?,
        ItemKind::Page => {
            let page = n
                .page_url
                .clone()
                .ok_or_else(|| invalid("module_item[page_url] is required"))?;
            n.title.clone().unwrap_or(page)
        }
        ItemKind::Assignment => {
            let a = n
                .content_id
                .and_then(|id| w.uni.assignments.get(id))
                .filter(|a| a.course_id == course_id)
                .ok_or_else(|| {
                    invalid("module_item[content_id] must name an assignment of this course")
                })?;
            n.title.clone().unwrap_or_else(|| a.name.clone())
        }
        _ => {
            if n.content_id.is_none() {
                return Err(invalid("module_item[content_id] is required"));
            }
            n.title
                .clone()
                .unwrap_or_else(|| n.kind.as_str().to_owned())
        }
    };
    if let Some(c) = &n.completion {
        const KINDS: [&str; 5] = [
            "must_view",
            "must_contribute",
            "must_submit",
            "min_score",
            "must_mark_done",
        ];
        if !KINDS.contains(&c.kind.as_str()) {
            return Err(invalid(
                "module_item[completion_requirement][type] is invalid",
            ));
        }
    }
    let siblings: Vec<u64> = University::ids(&w.uni.module_items_by_module, module_id)
        .iter()
        .copied()
        .filter(|i| {
            w.uni
                .module_items
                .get(*i)
                .is_some_and(|x| x.workflow_state != "deleted")
        })
        .collect();
    let last = siblings.len() as u32;
    let position = n
        .position
        .filter(|p| *p >= 1 && *p <= last)
        .unwrap_or(last + 1);
    for i in &siblings {
        if let Some(item) = w.uni.module_items.get_mut(*i)
            && item.position >= position
        {
            item.position += 1;
        }
    }
    let id = w.uni.add_module_item(ModuleItem {
        id: w.uni.module_items.next_id(),
        module_id,
        course_id,
        position,
        title,
        kind: n.kind,
        content_id: n.content_id,
        page_url: n.page_url,
        external_url: n.external_url,
        new_tab: n.new_tab,
        indent: n.indent,
        published,
        workflow_state: "active",
        completion_requirement: n.completion,
        created_at: now,
        updated_at: now,
    });
    if let Some(item) = w.uni.module_items.get(id) {
        let body = ev::module_item_body("module_item_created", item);
        w.emit(
            "module_item_created",
            origin,
            Context::Course(course_id),
            body,
            now,
        );
    }
    Ok(id)
}

/// The item `id` of `module_id` in `course_id`, if it is there and not deleted.
fn live_item(
    w: &mut World,
    course_id: u64,
    module_id: u64,
    id: u64,
) -> Result<&mut ModuleItem, ChangeError> {
    w.uni
        .module_items
        .get_mut(id)
        .filter(|i| {
            i.course_id == course_id && i.module_id == module_id && i.workflow_state != "deleted"
        })
        .ok_or(ChangeError::NotFound("module item"))
}

fn emit_item_updated(w: &mut World, id: u64, origin: &Origin, now: i64) {
    if let Some(item) = w.uni.module_items.get(id) {
        let course_id = item.course_id;
        let body = ev::module_item_body("module_item_updated", item);
        w.emit(
            "module_item_updated",
            origin,
            Context::Course(course_id),
            body,
            now,
        );
    }
}

/// What `PUT …/items/:id` may change.
#[derive(Debug, Clone, Default)]
pub struct ItemPatch {
    pub title: Option<String>,
    pub external_url: Option<String>,
    pub indent: Option<u32>,
    pub new_tab: Option<bool>,
    pub published: Option<bool>,
}

pub fn update_module_item(
    w: &mut World,
    course_id: u64,
    module_id: u64,
    id: u64,
    patch: ItemPatch,
    origin: &Origin,
    now: i64,
) -> Result<(), ChangeError> {
    if let Some(url) = &patch.external_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(invalid("module_item[external_url] must be an http(s) URL"));
    }
    if patch.title.as_ref().is_some_and(|t| t.trim().is_empty()) {
        return Err(invalid("module_item[title] cannot be blank"));
    }
    let item = live_item(w, course_id, module_id, id)?;
    if let Some(t) = patch.title {
        item.title = t;
    }
    if let Some(u) = patch.external_url {
        item.external_url = Some(u);
    }
    if let Some(i) = patch.indent {
        item.indent = i;
    }
    if let Some(n) = patch.new_tab {
        item.new_tab = n;
    }
    if let Some(p) = patch.published {
        item.published = p;
    }
    item.updated_at = now;
    emit_item_updated(w, id, origin, now);
    Ok(())
}

pub fn delete_module_item(
    w: &mut World,
    course_id: u64,
    module_id: u64,
    id: u64,
    origin: &Origin,
    now: i64,
) -> Result<(), ChangeError> {
    let item = live_item(w, course_id, module_id, id)?;
    item.workflow_state = "deleted";
    item.updated_at = now;
    emit_item_updated(w, id, origin, now);
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct AssignmentPatch {
    pub name: Option<String>,
    pub due_at: Option<Option<i64>>,
    pub points_possible: Option<f64>,
    pub published: Option<bool>,
    pub description: Option<String>,
}

pub fn update_assignment(
    w: &mut World,
    id: u64,
    p: AssignmentPatch,
    origin: &Origin,
    now: i64,
) -> Result<(), ChangeError> {
    let host = w.envelopes.hostname.clone();
    let a = w
        .uni
        .assignments
        .get_mut(id)
        .ok_or(ChangeError::NotFound("assignment"))?;
    if a.workflow_state == "deleted" {
        return Err(ChangeError::NotFound("assignment"));
    }
    let before = (
        a.name.clone(),
        a.due_at,
        a.points_possible,
        a.published,
        a.description.clone(),
    );
    if let Some(n) = p.name.filter(|n| !n.trim().is_empty()) {
        a.name = n;
    }
    if let Some(d) = p.due_at {
        a.due_at = d;
    }
    if let Some(pts) = p.points_possible.filter(|x| x.is_finite() && *x >= 0.0) {
        a.points_possible = pts;
    }
    if let Some(pb) = p.published {
        a.published = pb;
        a.workflow_state = if pb { "published" } else { "unpublished" };
    }
    if let Some(d) = p.description {
        a.description = d;
    }
    if before
        == (
            a.name.clone(),
            a.due_at,
            a.points_possible,
            a.published,
            a.description.clone(),
        )
    {
        return Ok(());
    }
    a.updated_at = now;
    let course = a.course_id;
    let a = a.clone();
    let body = ev::assignment_body("assignment_updated", &a, &w.uni, &host);
    w.emit(
        "assignment_updated",
        origin,
        Context::Course(course),
        body,
        now,
    );
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NewAssignment {
    pub name: String,
    pub points_possible: f64,
    pub due_at: Option<i64>,
    pub published: bool,
    pub submission_types: Vec<&'static str>,
    pub description: String,
}

pub fn create_assignment(
    w: &mut World,
    course_id: u64,
    n: NewAssignment,
    origin: &Origin,
    now: i64,
) -> Result<u64, ChangeError> {
    let c = w
        .uni
        .courses
        .get(course_id)
        .ok_or(ChangeError::NotFound("course"))?;
    if c.workflow_state == CourseState::Deleted {
        return Err(ChangeError::NotFound("course"));
    }
    if n.name.trim().is_empty() {
        return Err(invalid("assignment[name] is required"));
    }
    let position = University::ids(&w.uni.course_assignments, course_id).len() as u32 + 1;
    let lti = crate::ids::uuid(&mut crate::ids::rng(
        w.uni.seed,
        &format!("assignment-{}", w.uni.assignments.next_id()),
    ))
    .to_string();
    let id = w.uni.add_assignment(Assignment {
        id: w.uni.assignments.next_id(),
        course_id,
        assignment_group_id: course_id * 10 + 1,
        name: n.name,
        description: n.description,
        position,
        points_possible: n.points_possible,
        grading_type: "points",
        submission_types: n.submission_types,
        due_at: n.due_at,
        unlock_at: None,
        lock_at: None,
        published: n.published,
        workflow_state: if n.published {
            "published"
        } else {
            "unpublished"
        },
        created_at: now,
        updated_at: now,
        lti_assignment_id: lti,
    });
    let host = w.envelopes.hostname.clone();
    if let Some(a) = w.uni.assignments.get(id).cloned() {
        let body = ev::assignment_body("assignment_created", &a, &w.uni, &host);
        w.emit(
            "assignment_created",
            origin,
            Context::Course(course_id),
            body,
            now,
        );
    }
    Ok(id)
}

fn is_student(u: &University, course_id: u64, user_id: u64) -> bool {
    University::ids(&u.user_enrollments, user_id)
        .iter()
        .any(|e| {
            u.enrollments.get(*e).is_some_and(|e| {
                e.course_id == course_id
                    && e.kind == EnrollmentType::StudentEnrollment
                    && !matches!(
                        e.state,
                        EnrollmentState::Deleted | EnrollmentState::Rejected
                    )
            })
        })
}

/// A student submits (or re-submits) an assignment.
pub fn submit(
    w: &mut World,
    assignment_id: u64,
    user_id: u64,
    now: i64,
) -> Result<u64, ChangeError> {
    let a = w
        .uni
        .assignments
        .get(assignment_id)
        .ok_or(ChangeError::NotFound("assignment"))?
        .clone();
    if !a.published || !is_student(&w.uni, a.course_id, user_id) {
        return Err(invalid("user cannot submit to this assignment"));
    }
    let mut s = w.uni.submission_or_implicit(&a, user_id);
    let first = s.submitted_at.is_none();
    let kind = a
        .submission_types
        .first()
        .copied()
        .unwrap_or("online_text_entry");
    s.submission_type = Some(kind);
    match kind {
        "online_url" => {
            s.url = Some(format!(
                "https://www.example.edu/work/{user_id}/{assignment_id}"
            ))
        }
        "online_text_entry" => s.body = Some(format!("<p>Submission by student {user_id}.</p>")),
        _ => {}
    }
    s.attempt = Some(s.attempt.unwrap_or(0) + 1);
    s.submitted_at = Some(now);
    s.late = a.due_at.is_some_and(|d| now > d);
    s.missing = false;
    // A re-submission after grading needs grading again.
    s.workflow_state = "submitted";
    s.updated_at = now;
    let id = s.id;
    let body = ev::submission_body(
        if first {
            "submission_created"
        } else {
            "submission_updated"
        },
        &s,
        &a,
    );
    w.uni.submissions.insert((assignment_id, user_id), s);
    let origin = Origin::Request {
        user_id,
        method: "POST",
        path: format!(
            "/api/v1/courses/{}/assignments/{assignment_id}/submissions",
            a.course_id
        ),
        api: false,
        role: Some("StudentEnrollment"),
    };
    let name = if first {
        "submission_created"
    } else {
        "submission_updated"
    };
    w.emit(name, &origin, Context::Course(a.course_id), body, now);
    Ok(id)
}

/// Current and final course scores (percent) of a student.
pub fn course_scores(u: &University, course_id: u64, user_id: u64) -> (Option<f64>, Option<f64>) {
    let mut earned = 0.0;
    let mut graded_points = 0.0;
    let mut all_points = 0.0;
    for aid in University::ids(&u.course_assignments, course_id) {
        let Some(a) = u.assignments.get(*aid) else {
            continue;
        };
        if !a.published {
            continue;
        }
        all_points += a.points_possible;
        if let Some(score) = u.submissions.get(&(a.id, user_id)).and_then(|s| s.score) {
            earned += score;
            graded_points += a.points_possible;
        }
    }
    let pct = |num: f64, den: f64| (den > 0.0).then(|| (num / den * 10_000.0).round() / 100.0);
    (pct(earned, graded_points), pct(earned, all_points))
}

/// A grader sets (or clears, with `None`) a student's score.
pub fn grade(
    w: &mut World,
    assignment_id: u64,
    user_id: u64,
    score: Option<f64>,
    grader_id: Option<u64>,
    origin: &Origin,
    now: i64,
) -> Result<u64, ChangeError> {
    let a = w
        .uni
        .assignments
        .get(assignment_id)
        .ok_or(ChangeError::NotFound("assignment"))?
        .clone();
    if !is_student(&w.uni, a.course_id, user_id) {
        return Err(ChangeError::NotFound("user"));
    }
    if let Some(sc) = score
        && (!sc.is_finite() || sc < 0.0)
    {
        return Err(invalid("submission[posted_grade] is invalid"));
    }
    let (old_current, old_final) = course_scores(&w.uni, a.course_id, user_id);
    let mut s = w.uni.submission_or_implicit(&a, user_id);
    let old_score = s.score;
    if old_score == score {
        return Ok(s.id);
    }
    s.score = score;
    s.grade = score.map(grade_for);
    s.graded_at = score.map(|_| now);
    s.grader_id = grader_id;
    s.posted_at = score.map(|_| now);
    s.workflow_state = if score.is_some() {
        "graded"
    } else if s.submitted_at.is_some() {
        "submitted"
    } else {
        "unsubmitted"
    };
    s.updated_at = now;
    let id = s.id;
    let sis = w.uni.users.get(user_id).and_then(|x| x.sis_user_id.clone());
    let grade_body = ev::grade_change_body(&ev::GradeChange {
        submission: &s,
        assignment: &a,
        old_score,
        grader_id,
        student_sis_id: sis,
    });
    let sub_body = ev::submission_body("submission_updated", &s, &a);
    w.uni.submissions.insert((assignment_id, user_id), s);
    let (current, final_score) = course_scores(&w.uni, a.course_id, user_id);
    let ctx = Context::Course(a.course_id);
    w.emit("grade_change", origin, ctx, grade_body, now);
    w.emit("submission_updated", origin, ctx, sub_body, now);
    if (current, final_score) != (old_current, old_final) {
        let enrolled_at = University::ids(&w.uni.user_enrollments, user_id)
            .iter()
            .filter_map(|e| w.uni.enrollments.get(*e))
            .find(|e| e.course_id == a.course_id)
            .map(|e| e.created_at)
            .unwrap_or(now);
        let body = ev::course_grade_change_body(&ev::CourseGrade {
            user_id,
            course_id: a.course_id,
            created_at: enrolled_at,
            updated_at: now,
            current,
            old_current,
            final_score,
            old_final,
        });
        w.emit("course_grade_change", origin, ctx, body, now);
    }
    Ok(id)
}

/// The role an actor has in a course, for `context_role`.
pub fn role_in(u: &University, course_id: u64, user_id: u64) -> Option<&'static str> {
    University::ids(&u.user_enrollments, user_id)
        .iter()
        .filter_map(|e| u.enrollments.get(*e))
        .find(|e| e.course_id == course_id)
        .map(|e| e.kind.as_str())
}
