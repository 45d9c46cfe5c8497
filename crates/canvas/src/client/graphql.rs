//! Canvas GraphQL reads (canvas.md C): one course with its sections, enrollments, assignments
//! and modules (with items) in as few `POST /api/graphql` requests as possible, and the course
//! ids of an account. Every request goes through [`CanvasClient::execute`], so it shares the
//! REST path's token, quota governor and throttle handling. It owns the query texts and the
//! mapping of GraphQL answers to the REST models of [`crate::client::types`], so callers see
//! one shape whichever API filled it; it must not hold sync logic (what to do with the course).
//!
//! **Why one query with `@include`.** A course's connections page independently (Relay
//! cursors). A follow-up request asks again for every connection that still has a page, each
//! from its own `endCursor`, and skips the finished ones with `@include(if: false)`. So a
//! course needs `max(⌈n / page⌉)` requests over its connections, not their sum: one request
//! for almost every course at page size 100.
//!
//! GraphQL errors arrive in a `200` body. They are a [`GraphQlError::Refused`] (the query or
//! the token is wrong: retrying will not help), distinct from a transport [`ClientError`].

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::error::ClientError;
use crate::client::governor::Priority;
use crate::client::transport::{Call, CanvasClient};
use crate::client::types::{Assignment, Course, Enrollment, Module, ModuleItem, Section, UserStub};

/// Canvas's largest GraphQL page (`default_max_page_size`).
pub const MAX_PAGE_SIZE: u32 = 100;

/// A course with every connection coursewire syncs. The `@include` flags and per-connection
/// `after` cursors let the same text fetch the next page of only the unfinished connections.
pub const COURSE_NESTED_QUERY: &str = r#"query CourseNested(
  $courseId: ID!
  $first: Int!
  $enrollmentStates: [EnrollmentWorkflowState!]
  $withSections: Boolean!
  $sectionsAfter: String
  $withEnrollments: Boolean!
  $enrollmentsAfter: String
  $withAssignments: Boolean!
  $assignmentsAfter: String
  $withModules: Boolean!
  $modulesAfter: String
) {
  course(id: $courseId) {
    _id
    name
    courseCode
    sisId
    state
    account { _id }
    term { _id }
    sectionsConnection(first: $first, after: $sectionsAfter) @include(if: $withSections) {
      nodes { _id name sisId }
      pageInfo { hasNextPage endCursor }
    }
    enrollmentsConnection(
      first: $first
      after: $enrollmentsAfter
      filter: { states: $enrollmentStates }
    ) @include(if: $withEnrollments) {
      nodes {
        _id
        type
        state
        userId
        courseSectionId
        limitPrivilegesToCourseSection
        updatedAt
        user { _id name sortableName shortName sisId loginId }
        associatedUser { _id }
      }
      pageInfo { hasNextPage endCursor }
    }
    assignmentsConnection(
      first: $first
      after: $assignmentsAfter
      filter: { gradingPeriodId: null }
    ) @include(if: $withAssignments) {
      nodes {
        _id
        name
        position
        dueAt
        unlockAt
        lockAt
        pointsPossible
        gradingType
        submissionTypes
        published
        state
        htmlUrl
      }
      pageInfo { hasNextPage endCursor }
    }
    modulesConnection(first: $first, after: $modulesAfter) @include(if: $withModules) {
      nodes {
        _id
        name
        position
        published
        unlockAt
        moduleItems {
          _id
          position
          indent
          url
          content {
            __typename
            title
            type
            published
            ... on LegacyIDInterface { _id }
            ... on ExternalUrl { url newTab }
            ... on ModuleExternalTool { url }
          }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}"#;

/// The course ids of an account (Canvas's `associated_courses`: sub-accounts included), one
/// page per request.
pub const ACCOUNT_COURSE_IDS_QUERY: &str = r#"query AccountCourseIds($accountId: ID!, $first: Int!, $after: String) {
  account(id: $accountId) {
    coursesConnection(first: $first, after: $after) {
      nodes { _id }
      pageInfo { hasNextPage endCursor }
    }
  }
}"#;

/// Every query this module sends, by operation name (tests validate each against the schema).
pub const QUERIES: &[(&str, &str)] = &[
    ("CourseNested", COURSE_NESTED_QUERY),
    ("AccountCourseIds", ACCOUNT_COURSE_IDS_QUERY),
];

/// What can go wrong with a GraphQL read, by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum GraphQlError {
    /// The request never got a usable answer (throttling, 5xx, credentials…).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Canvas answered `200` with GraphQL `errors`: the query, its variables or the token's
    /// permissions are wrong. Retrying the same request will not help.
    #[error("Canvas GraphQL refused {operation}: {}", messages.join("; "))]
    Refused {
        operation: &'static str,
        messages: Vec<String>,
    },
    /// The object (or one of its connections) is absent or hidden from this token. Treating it
    /// as empty would make a sync delete what it cannot see.
    #[error("Canvas GraphQL {operation}: {what} is missing or not visible to this token")]
    NotFound {
        operation: &'static str,
        what: String,
    },
    /// The answer does not have the shape the query asks for (a Canvas change or a bug).
    #[error("Canvas GraphQL {operation}: unexpected answer: {detail}")]
    Shape {
        operation: &'static str,
        detail: String,
    },
    /// The caller asked for something Canvas would refuse (e.g. a page size above 100).
    #[error("invalid GraphQL read: {0}")]
    Invalid(String),
}

impl GraphQlError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, GraphQlError::Client(e) if e.is_transient())
    }
}

/// `EnrollmentWorkflowState` (canvas.md C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentState {
    Active,
    Completed,
    CreationPending,
    Deleted,
    Inactive,
    Invited,
    Rejected,
}

impl EnrollmentState {
    /// Every state, deleted included: what a full catalog sync reads.
    pub const ALL: [EnrollmentState; 7] = [
        EnrollmentState::Active,
        EnrollmentState::Completed,
        EnrollmentState::CreationPending,
        EnrollmentState::Deleted,
        EnrollmentState::Inactive,
        EnrollmentState::Invited,
        EnrollmentState::Rejected,
    ];
}

/// How to read a course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseRead {
    /// Items per connection page, 1…100 (Canvas's maximum).
    pub page_size: u32,
    /// Enrollment states to return; empty means Canvas's GraphQL default (every state but
    /// `deleted`).
    pub enrollment_states: Vec<EnrollmentState>,
    pub priority: Priority,
}

impl Default for CourseRead {
    fn default() -> Self {
        CourseRead {
            page_size: MAX_PAGE_SIZE,
            enrollment_states: EnrollmentState::ALL.to_vec(),
            priority: Priority::Bulk,
        }
    }
}

/// A module with its items, in Canvas's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModuleWithItems {
    pub module: Module,
    pub items: Vec<ModuleItem>,
}

/// One course as a nested GraphQL read returns it, in the REST models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NestedCourse {
    pub course: Course,
    pub sections: Vec<Section>,
    pub enrollments: Vec<Enrollment>,
    pub assignments: Vec<Assignment>,
    pub modules: Vec<ModuleWithItems>,
    /// GraphQL requests the read took (1 unless a connection had more than one page).
    pub requests: u32,
}

// ------------------------------------------------------------------ wire shapes

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<WireError>,
}

#[derive(Deserialize)]
struct WireError {
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Connection<T> {
    #[serde(default = "Vec::new")]
    nodes: Vec<Option<T>>,
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
}

#[derive(Deserialize)]
struct LegacyRef {
    #[serde(rename = "_id")]
    id: String,
}

#[derive(Deserialize)]
struct CourseData {
    course: Option<WireCourse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCourse {
    #[serde(rename = "_id")]
    id: String,
    name: Option<String>,
    course_code: Option<String>,
    sis_id: Option<String>,
    state: Option<String>,
    account: Option<LegacyRef>,
    term: Option<LegacyRef>,
    sections_connection: Option<Connection<WireSection>>,
    enrollments_connection: Option<Connection<WireEnrollment>>,
    assignments_connection: Option<Connection<WireAssignment>>,
    modules_connection: Option<Connection<WireModule>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSection {
    #[serde(rename = "_id")]
    id: String,
    name: Option<String>,
    sis_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUser {
    #[serde(rename = "_id")]
    id: String,
    name: Option<String>,
    sortable_name: Option<String>,
    short_name: Option<String>,
    sis_id: Option<String>,
    login_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEnrollment {
    #[serde(rename = "_id")]
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    state: Option<String>,
    user_id: Option<String>,
    course_section_id: Option<String>,
    limit_privileges_to_course_section: Option<bool>,
    updated_at: Option<DateTime<Utc>>,
    user: Option<WireUser>,
    associated_user: Option<LegacyRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAssignment {
    #[serde(rename = "_id")]
    id: String,
    name: Option<String>,
    position: Option<u32>,
    due_at: Option<DateTime<Utc>>,
    unlock_at: Option<DateTime<Utc>>,
    lock_at: Option<DateTime<Utc>>,
    points_possible: Option<f64>,
    grading_type: Option<String>,
    submission_types: Option<Vec<String>>,
    published: Option<bool>,
    state: Option<String>,
    html_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireModule {
    #[serde(rename = "_id")]
    id: String,
    name: Option<String>,
    position: Option<u32>,
    published: Option<bool>,
    unlock_at: Option<DateTime<Utc>>,
    module_items: Option<Vec<WireModuleItem>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireModuleItem {
    #[serde(rename = "_id")]
    id: String,
    position: Option<u32>,
    indent: Option<u32>,
    url: Option<String>,
    content: Option<WireContent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireContent {
    #[serde(rename = "__typename")]
    typename: Option<String>,
    #[serde(rename = "_id")]
    id: Option<String>,
    title: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    published: Option<bool>,
    url: Option<String>,
    new_tab: Option<bool>,
}

#[derive(Deserialize)]
struct AccountData {
    account: Option<WireAccount>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAccount {
    courses_connection: Option<Connection<LegacyRef>>,
}

// ------------------------------------------------------------------ mapping

fn legacy_id(operation: &'static str, what: &str, raw: &str) -> Result<u64, GraphQlError> {
    raw.parse().map_err(|_| GraphQlError::Shape {
        operation,
        detail: format!("{what} has a non-numeric legacy id {raw:?}"),
    })
}

fn opt_legacy_id(
    operation: &'static str,
    what: &str,
    raw: Option<&str>,
) -> Result<Option<u64>, GraphQlError> {
    raw.map(|r| legacy_id(operation, what, r)).transpose()
}

const OP_COURSE: &str = "CourseNested";
const OP_ACCOUNT: &str = "AccountCourseIds";

/// GraphQL's `CourseWorkflowState` names an unpublished course `claimed` (or `created`);
/// REST says `unpublished`.
fn rest_course_state(state: &str) -> String {
    match state {
        "claimed" | "created" => "unpublished".to_owned(),
        other => other.to_owned(),
    }
}

fn course_from(c: &WireCourse) -> Result<Course, GraphQlError> {
    Ok(Course {
        id: legacy_id(OP_COURSE, "course", &c.id)?,
        name: c.name.clone(),
        course_code: c.course_code.clone(),
        workflow_state: c.state.as_deref().map(rest_course_state),
        account_id: opt_legacy_id(OP_COURSE, "account", c.account.as_ref().map(|a| &*a.id))?,
        enrollment_term_id: opt_legacy_id(OP_COURSE, "term", c.term.as_ref().map(|t| &*t.id))?,
        sis_course_id: c.sis_id.clone(),
        ..Course::default()
    })
}

fn section_from(course_id: u64, s: WireSection) -> Result<Section, GraphQlError> {
    Ok(Section {
        id: legacy_id(OP_COURSE, "section", &s.id)?,
        course_id: Some(course_id),
        name: s.name,
        sis_section_id: s.sis_id,
        ..Section::default()
    })
}

fn enrollment_from(course_id: u64, e: WireEnrollment) -> Result<Enrollment, GraphQlError> {
    let id = e.id.as_deref().ok_or_else(|| GraphQlError::Shape {
        operation: OP_COURSE,
        detail: "an enrollment without _id".to_owned(),
    })?;
    let user = e
        .user
        .map(|u| -> Result<UserStub, GraphQlError> {
            Ok(UserStub {
                id: legacy_id(OP_COURSE, "user", &u.id)?,
                name: u.name,
                sortable_name: u.sortable_name,
                short_name: u.short_name,
                sis_user_id: u.sis_id,
                login_id: u.login_id,
            })
        })
        .transpose()?;
    let user_id = match opt_legacy_id(OP_COURSE, "enrollment user", e.user_id.as_deref())? {
        Some(id) => Some(id),
        None => user.as_ref().map(|u| u.id),
    };
    Ok(Enrollment {
        id: legacy_id(OP_COURSE, "enrollment", id)?,
        user_id,
        course_id: Some(course_id),
        course_section_id: opt_legacy_id(
            OP_COURSE,
            "enrollment section",
            e.course_section_id.as_deref(),
        )?,
        // Canvas names a base role after its type (`StudentEnrollment`).
        role: e.kind.clone(),
        kind: e.kind,
        enrollment_state: e.state,
        sis_user_id: user.as_ref().and_then(|u| u.sis_user_id.clone()),
        limit_privileges_to_course_section: e.limit_privileges_to_course_section,
        updated_at: e.updated_at,
        associated_user_id: opt_legacy_id(
            OP_COURSE,
            "observed user",
            e.associated_user.as_ref().map(|u| &*u.id),
        )?,
        user,
        ..Enrollment::default()
    })
}

fn assignment_from(course_id: u64, a: WireAssignment) -> Result<Assignment, GraphQlError> {
    Ok(Assignment {
        id: legacy_id(OP_COURSE, "assignment", &a.id)?,
        course_id: Some(course_id),
        name: a.name,
        position: a.position,
        due_at: a.due_at,
        unlock_at: a.unlock_at,
        lock_at: a.lock_at,
        points_possible: a.points_possible,
        grading_type: a.grading_type,
        submission_types: a.submission_types,
        published: a.published,
        workflow_state: a.state,
        html_url: a.html_url,
        integration_id: None,
    })
}

/// REST's module item `type` for a GraphQL content object.
fn item_kind(content: &WireContent) -> Option<String> {
    if let Some(kind) = content.kind.as_deref().filter(|k| !k.is_empty()) {
        return Some(kind.to_owned());
    }
    content.typename.as_deref().map(|t| match t {
        "ModuleExternalTool" => "ExternalTool".to_owned(),
        "Discussion" => "Discussion".to_owned(),
        other => other.to_owned(),
    })
}

fn module_from(m: WireModule) -> Result<ModuleWithItems, GraphQlError> {
    let module_id = legacy_id(OP_COURSE, "module", &m.id)?;
    let items = m
        .module_items
        .unwrap_or_default()
        .into_iter()
        .map(|i| module_item_from(module_id, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ModuleWithItems {
        module: Module {
            id: module_id,
            name: m.name,
            position: m.position,
            published: m.published,
            items_count: u32::try_from(items.len()).ok(),
            unlock_at: m.unlock_at,
            ..Module::default()
        },
        items,
    })
}

fn module_item_from(module_id: u64, i: WireModuleItem) -> Result<ModuleItem, GraphQlError> {
    let content = i.content;
    let kind = content.as_ref().and_then(item_kind);
    // Links and headers have no content object of their own in Canvas (REST gives no
    // `content_id`); the rest point at an assignment, page, file, quiz…
    let has_content_object = !matches!(kind.as_deref(), Some("ExternalUrl" | "SubHeader"));
    let content_id = match content.as_ref().and_then(|c| c.id.as_deref()) {
        Some(raw) if has_content_object => Some(legacy_id(OP_COURSE, "module item content", raw)?),
        _ => None,
    };
    let is_link = matches!(kind.as_deref(), Some("ExternalUrl" | "ExternalTool"));
    Ok(ModuleItem {
        id: legacy_id(OP_COURSE, "module item", &i.id)?,
        module_id: Some(module_id),
        position: i.position,
        title: content.as_ref().and_then(|c| c.title.clone()),
        indent: i.indent,
        content_id,
        html_url: i.url,
        external_url: if is_link {
            content.as_ref().and_then(|c| c.url.clone())
        } else {
            None
        },
        new_tab: content.as_ref().and_then(|c| c.new_tab),
        published: content.as_ref().and_then(|c| c.published),
        kind,
        ..ModuleItem::default()
    })
}

// ------------------------------------------------------------------ paging state

/// One connection's paging: `None` once finished, else the cursor to continue after.
#[derive(Debug)]
struct Cursor {
    name: &'static str,
    pending: Option<Option<String>>,
    seen: HashSet<String>,
}

impl Cursor {
    fn start(name: &'static str) -> Cursor {
        Cursor {
            name,
            pending: Some(None),
            seen: HashSet::new(),
        }
    }

    fn wanted(&self) -> bool {
        self.pending.is_some()
    }

    fn after(&self) -> Value {
        match &self.pending {
            Some(Some(c)) => Value::String(c.clone()),
            _ => Value::Null,
        }
    }

    /// Take one page of this connection, if it was asked for. Returns its nodes.
    fn take<T>(
        &mut self,
        course_id: u64,
        conn: Option<Connection<T>>,
    ) -> Result<Vec<T>, GraphQlError> {
        if !self.wanted() {
            return Ok(Vec::new());
        }
        let conn = conn.ok_or_else(|| GraphQlError::NotFound {
            operation: OP_COURSE,
            what: format!("{} of course {course_id}", self.name),
        })?;
        self.pending = if conn.page_info.has_next_page {
            let next = conn
                .page_info
                .end_cursor
                .ok_or_else(|| GraphQlError::Shape {
                    operation: OP_COURSE,
                    detail: format!("{} has a next page but no endCursor", self.name),
                })?;
            if !self.seen.insert(next.clone()) {
                return Err(ClientError::Pagination(format!(
                    "/api/graphql {} of course {course_id}",
                    self.name
                ))
                .into());
            }
            Some(Some(next))
        } else {
            None
        };
        Ok(conn.nodes.into_iter().flatten().collect())
    }
}

// ------------------------------------------------------------------ client

impl CanvasClient {
    /// Run one GraphQL query through the governed transport and decode its `data`.
    /// The query is read-only, so a request that failed in flight (5xx, timeout) is retried
    /// here, which the transport does not do for a `POST`.
    pub async fn graphql<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        query: &str,
        variables: Value,
        priority: Priority,
    ) -> Result<T, GraphQlError> {
        let call = Call {
            method: Method::POST,
            target: "/api/graphql".to_owned(),
            query: Vec::new(),
            // Canvas takes the GraphQL body as a form too, which the transport can send.
            form: vec![
                ("query".to_owned(), query.to_owned()),
                ("operationName".to_owned(), operation.to_owned()),
                ("variables".to_owned(), variables.to_string()),
            ],
            priority,
        };
        let mut attempt: u32 = 0;
        let answer = loop {
            match self.execute(&call).await {
                Ok(a) => break a,
                Err(e @ ClientError::Unavailable { .. }) if attempt < self.config().max_retries => {
                    tracing::info!(operation, attempt, error = %e, "retrying a GraphQL read");
                    let cfg = self.config();
                    tokio::time::sleep(retry_step(cfg.backoff_base, cfg.backoff_max, attempt))
                        .await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let envelope: Envelope<T> = answer.json(&format!("/api/graphql ({operation})"))?;
        if !envelope.errors.is_empty() {
            return Err(GraphQlError::Refused {
                operation,
                messages: envelope.errors.into_iter().map(|e| e.message).collect(),
            });
        }
        envelope.data.ok_or_else(|| GraphQlError::Shape {
            operation,
            detail: "neither data nor errors".to_owned(),
        })
    }

    /// One course with its sections, enrollments (with users), assignments and modules with
    /// items, following every connection's cursor until it is exhausted (see the module doc
    /// for why that takes `max`, not the sum, of the connections' page counts).
    pub async fn nested_course(
        &self,
        course_id: u64,
        read: &CourseRead,
    ) -> Result<NestedCourse, GraphQlError> {
        if !(1..=MAX_PAGE_SIZE).contains(&read.page_size) {
            return Err(GraphQlError::Invalid(format!(
                "page size {} is outside 1…{MAX_PAGE_SIZE}",
                read.page_size
            )));
        }
        let states = if read.enrollment_states.is_empty() {
            Value::Null
        } else {
            json!(read.enrollment_states)
        };
        let mut sections = Cursor::start("sectionsConnection");
        let mut enrollments = Cursor::start("enrollmentsConnection");
        let mut assignments = Cursor::start("assignmentsConnection");
        let mut modules = Cursor::start("modulesConnection");
        let mut out = NestedCourse::default();
        while sections.wanted() || enrollments.wanted() || assignments.wanted() || modules.wanted()
        {
            let variables = json!({
                "courseId": course_id.to_string(),
                "first": read.page_size,
                "enrollmentStates": states,
                "withSections": sections.wanted(),
                "sectionsAfter": sections.after(),
                "withEnrollments": enrollments.wanted(),
                "enrollmentsAfter": enrollments.after(),
                "withAssignments": assignments.wanted(),
                "assignmentsAfter": assignments.after(),
                "withModules": modules.wanted(),
                "modulesAfter": modules.after(),
            });
            let data: CourseData = self
                .graphql(OP_COURSE, COURSE_NESTED_QUERY, variables, read.priority)
                .await?;
            out.requests += 1;
            let mut c = data.course.ok_or_else(|| GraphQlError::NotFound {
                operation: OP_COURSE,
                what: format!("course {course_id}"),
            })?;
            if out.requests == 1 {
                out.course = course_from(&c)?;
            }
            let id = out.course.id;
            for s in sections.take(id, c.sections_connection.take())? {
                out.sections.push(section_from(id, s)?);
            }
            for e in enrollments.take(id, c.enrollments_connection.take())? {
                out.enrollments.push(enrollment_from(id, e)?);
            }
            for a in assignments.take(id, c.assignments_connection.take())? {
                out.assignments.push(assignment_from(id, a)?);
            }
            for m in modules.take(id, c.modules_connection.take())? {
                out.modules.push(module_from(m)?);
            }
        }
        Ok(out)
    }

    /// The ids of every live course of an account and its sub-accounts, 100 per request.
    pub async fn account_course_ids(
        &self,
        account_id: u64,
        priority: Priority,
    ) -> Result<Vec<u64>, GraphQlError> {
        let mut ids = Vec::new();
        let mut cursor = Cursor::start("coursesConnection");
        while cursor.wanted() {
            let variables = json!({
                "accountId": account_id.to_string(),
                "first": MAX_PAGE_SIZE,
                "after": cursor.after(),
            });
            let data: AccountData = self
                .graphql(OP_ACCOUNT, ACCOUNT_COURSE_IDS_QUERY, variables, priority)
                .await?;
            let account = data.account.ok_or_else(|| GraphQlError::NotFound {
                operation: OP_ACCOUNT,
                what: format!("account {account_id}"),
            })?;
            let page = cursor
                .take(account_id, account.courses_connection)
                .map_err(|e| match e {
                    GraphQlError::NotFound { what, .. } => GraphQlError::NotFound {
                        operation: OP_ACCOUNT,
                        what,
                    },
                    other => other,
                })?;
            for c in page {
                ids.push(legacy_id(OP_ACCOUNT, "course", &c.id)?);
            }
        }
        Ok(ids)
    }
}

/// How long to wait before retrying a GraphQL read that failed in flight.
fn retry_step(base: Duration, max: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_states_and_item_kinds_map_to_rest_names() {
        assert_eq!(rest_course_state("claimed"), "unpublished");
        assert_eq!(rest_course_state("available"), "available");
        let tool = WireContent {
            typename: Some("ModuleExternalTool".into()),
            id: None,
            title: None,
            kind: None,
            published: None,
            url: None,
            new_tab: None,
        };
        assert_eq!(item_kind(&tool).as_deref(), Some("ExternalTool"));
    }

    #[test]
    fn a_cursor_that_repeats_is_a_pagination_error() {
        let mut c = Cursor::start("enrollmentsConnection");
        let page = |cursor: &str| Connection::<LegacyRef> {
            nodes: vec![Some(LegacyRef { id: "1".into() })],
            page_info: PageInfo {
                has_next_page: true,
                end_cursor: Some(cursor.into()),
            },
        };
        assert_eq!(c.take(1, Some(page("a"))).expect("first page").len(), 1);
        assert!(matches!(
            c.take(1, Some(page("a"))),
            Err(GraphQlError::Client(ClientError::Pagination(_)))
        ));
        let mut c = Cursor::start("sectionsConnection");
        assert!(matches!(
            c.take::<LegacyRef>(7, None),
            Err(GraphQlError::NotFound { .. })
        ));
    }

    #[test]
    fn legacy_ids_must_be_numeric() {
        assert_eq!(legacy_id(OP_COURSE, "course", "42").expect("numeric"), 42);
        let err = legacy_id(OP_COURSE, "course", "Q291cnNlLTE=").expect_err("relay id");
        assert!(err.to_string().contains("non-numeric"), "{err}");
    }
}
