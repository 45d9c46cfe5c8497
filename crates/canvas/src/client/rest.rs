//! Typed Canvas REST calls (canvas.md B5): the reads a crawl needs as streams, single-object
//! reads, and the two writes coursewire makes. The writes are **find-before-create** so a
//! retried workflow step does not duplicate a module or a link. That is idempotent for one
//! writer per course (coursewire serialises writes per course); two concurrent writers could
//! still both create, which Canvas gives no way to prevent.

use futures::TryStreamExt as _;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;

use crate::client::error::ClientError;
use crate::client::governor::Priority;
use crate::client::transport::{Call, CanvasClient};
use crate::client::types::{Assignment, Course, Enrollment, Module, ModuleItem, Section, User};

/// Stream of decoded items.
pub type Items<T> = BoxStream<'static, Result<T, ClientError>>;

/// Canvas form bodies name fields `object[field]`.
fn field(object: &str, name: &str, value: impl Into<String>) -> (String, String) {
    (format!("{object}[{name}]"), value.into())
}

impl CanvasClient {
    async fn get_one<T: DeserializeOwned>(&self, path: String) -> Result<T, ClientError> {
        let answer = self
            .execute(&Call::get(path.clone(), Priority::Interactive))
            .await?;
        answer.json(&path)
    }

    /// Every course of an account (sub-accounts included, as Canvas does).
    pub fn account_courses(&self, account_id: u64, priority: Priority) -> Items<Course> {
        self.items(Call::get(
            format!("/api/v1/accounts/{account_id}/courses"),
            priority,
        ))
    }

    pub async fn course(&self, course_id: u64) -> Result<Course, ClientError> {
        self.get_one(format!("/api/v1/courses/{course_id}")).await
    }

    /// A course by its SIS id (`sis_course_id:<id>`, canvas.md B5).
    pub async fn course_by_sis_id(&self, sis_course_id: &str) -> Result<Course, ClientError> {
        // Percent-encoded as a path segment: SIS ids may hold `/`, `.` or spaces.
        let encoded: String = sis_course_id
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        self.get_one(format!("/api/v1/courses/sis_course_id:{encoded}"))
            .await
    }

    pub fn sections(&self, course_id: u64, priority: Priority) -> Items<Section> {
        self.items(Call::get(
            format!("/api/v1/courses/{course_id}/sections"),
            priority,
        ))
    }

    /// Enrollments of a course in the given states (empty: Canvas's default, active +
    /// invited). Bookmark-paginated by Canvas.
    pub fn enrollments(
        &self,
        course_id: u64,
        states: &[&str],
        priority: Priority,
    ) -> Items<Enrollment> {
        let mut call = Call::get(format!("/api/v1/courses/{course_id}/enrollments"), priority);
        for s in states {
            call = call.query("state[]", *s);
        }
        self.items(call)
    }

    pub async fn user(&self, user_id: u64) -> Result<User, ClientError> {
        self.get_one(format!("/api/v1/users/{user_id}")).await
    }

    pub fn account_users(&self, account_id: u64, priority: Priority) -> Items<User> {
        self.items(Call::get(
            format!("/api/v1/accounts/{account_id}/users"),
            priority,
        ))
    }

    pub fn course_users(&self, course_id: u64, priority: Priority) -> Items<User> {
        self.items(Call::get(
            format!("/api/v1/courses/{course_id}/users"),
            priority,
        ))
    }

    pub fn modules(&self, course_id: u64, priority: Priority) -> Items<Module> {
        self.items(Call::get(
            format!("/api/v1/courses/{course_id}/modules"),
            priority,
        ))
    }

    pub fn module_items(
        &self,
        course_id: u64,
        module_id: u64,
        priority: Priority,
    ) -> Items<ModuleItem> {
        self.items(Call::get(
            format!("/api/v1/courses/{course_id}/modules/{module_id}/items"),
            priority,
        ))
    }

    pub fn assignments(&self, course_id: u64, priority: Priority) -> Items<Assignment> {
        self.items(Call::get(
            format!("/api/v1/courses/{course_id}/assignments"),
            priority,
        ))
    }

    /// The module named `name`, created (unpublished, as Canvas does) if there is none.
    pub async fn create_module(&self, course_id: u64, name: &str) -> Result<Module, ClientError> {
        let mut existing = self.modules(course_id, Priority::Write);
        while let Some(m) = existing.try_next().await? {
            if m.name.as_deref() == Some(name) {
                return Ok(m);
            }
        }
        let path = format!("/api/v1/courses/{course_id}/modules");
        let answer = self
            .execute(&Call::post(
                path.clone(),
                vec![field("module", "name", name)],
            ))
            .await?;
        answer.json(&path)
    }

    /// An `ExternalUrl` item linking `url` in the module, created if no item of that module
    /// already links it (the URL is the identity; the title may have been edited by staff).
    pub async fn create_external_url_item(
        &self,
        course_id: u64,
        module_id: u64,
        title: &str,
        url: &str,
    ) -> Result<ModuleItem, ClientError> {
        let mut existing = self.module_items(course_id, module_id, Priority::Write);
        while let Some(item) = existing.try_next().await? {
            if item.kind.as_deref() == Some("ExternalUrl")
                && item.external_url.as_deref() == Some(url)
            {
                return Ok(item);
            }
        }
        let path = format!("/api/v1/courses/{course_id}/modules/{module_id}/items");
        let form = vec![
            field("module_item", "type", "ExternalUrl"),
            field("module_item", "title", title),
            field("module_item", "external_url", url),
        ];
        let answer = self.execute(&Call::post(path.clone(), form)).await?;
        answer.json(&path)
    }

    /// Publishes a module (and moves it to `position` when given).
    pub async fn publish_module(
        &self,
        course_id: u64,
        module_id: u64,
        position: Option<u32>,
    ) -> Result<Module, ClientError> {
        let path = format!("/api/v1/courses/{course_id}/modules/{module_id}");
        let mut form = vec![field("module", "published", "true")];
        if let Some(p) = position {
            form.push(field("module", "position", p.to_string()));
        }
        let answer = self.execute(&Call::put(path.clone(), form)).await?;
        answer.json(&path)
    }

    /// Publishes a module item.
    pub async fn publish_module_item(
        &self,
        course_id: u64,
        module_id: u64,
        item_id: u64,
    ) -> Result<ModuleItem, ClientError> {
        let path = format!("/api/v1/courses/{course_id}/modules/{module_id}/items/{item_id}");
        let form = vec![field("module_item", "published", "true")];
        let answer = self.execute(&Call::put(path.clone(), form)).await?;
        answer.json(&path)
    }

    /// Deletes a module item; one already gone is not an error.
    pub async fn delete_module_item(
        &self,
        course_id: u64,
        module_id: u64,
        item_id: u64,
    ) -> Result<(), ClientError> {
        let path = format!("/api/v1/courses/{course_id}/modules/{module_id}/items/{item_id}");
        match self.execute(&Call::delete(path)).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
