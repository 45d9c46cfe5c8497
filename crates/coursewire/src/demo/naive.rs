//! The yardstick: what one downstream system's nightly crawl costs Canvas without coursewire —
//! every course, then per course its sections, its enrollments (Canvas's default states) and
//! its assignments, at Canvas's default page size of 10. Thirty such systems do their own, every
//! night. The crawl goes through our own governed client, so it is never throttled either; its
//! cost is what the simulator charged its token.

use futures::{StreamExt as _, TryStreamExt as _};

use canvas::client::{CanvasClient, ClientConfig, Priority, TokenSource};

/// Canvas's default `per_page`.
pub const DEFAULT_PAGE_SIZE: u32 = 10;

/// What one crawl read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrawlRead {
    pub courses: usize,
    pub sections: usize,
    pub enrollments: usize,
    pub assignments: usize,
}

/// A client like a naive integration's: default page size, `concurrency` requests at a time.
pub fn client(base_url: &str, token: &str, concurrency: usize) -> anyhow::Result<CanvasClient> {
    let mut config = ClientConfig::new(base_url).with_concurrency(concurrency);
    config.per_page = DEFAULT_PAGE_SIZE;
    Ok(CanvasClient::new(config, TokenSource::fixed(token))?)
}

async fn course(client: CanvasClient, course_id: u64) -> anyhow::Result<CrawlRead> {
    let p = Priority::Bulk;
    let sections = client
        .sections(course_id, p)
        .try_collect::<Vec<_>>()
        .await?;
    let enrollments = client
        .enrollments(course_id, &[], p)
        .try_collect::<Vec<_>>()
        .await?;
    let assignments = client
        .assignments(course_id, p)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(CrawlRead {
        courses: 1,
        sections: sections.len(),
        enrollments: enrollments.len(),
        assignments: assignments.len(),
    })
}

/// One nightly crawl of `account_id`'s courses, `concurrency` courses at a time.
pub async fn crawl(
    client: &CanvasClient,
    account_id: u64,
    concurrency: usize,
) -> anyhow::Result<CrawlRead> {
    let courses: Vec<_> = client
        .account_courses(account_id, Priority::Bulk)
        .try_collect()
        .await?;
    let parts: Vec<CrawlRead> = futures::stream::iter(courses.into_iter().map(|c| c.id))
        .map(|id| course(client.clone(), id))
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok(parts
        .into_iter()
        .fold(CrawlRead::default(), |a, b| CrawlRead {
            courses: a.courses + b.courses,
            sections: a.sections + b.sections,
            enrollments: a.enrollments + b.enrollments,
            assignments: a.assignments + b.assignments,
        }))
}
