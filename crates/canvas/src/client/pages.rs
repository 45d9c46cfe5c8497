//! `Link`-header pagination as a `futures::Stream` (canvas.md B2). It follows `rel="next"`
//! only, with the URL exactly as Canvas sent it (bookmark cursors included), and stops when
//! there is no `next`. It must not build `page=` parameters or guess totals; a `next` that
//! repeats a page already fetched is an error rather than an endless loop.

use std::collections::HashSet;

use futures::stream::{self, BoxStream, StreamExt as _, TryStreamExt as _};
use serde::de::DeserializeOwned;

use crate::client::error::ClientError;
use crate::client::link::next_link;
use crate::client::transport::{Call, CanvasClient};

struct Cursor {
    next: Option<Call>,
    seen: HashSet<String>,
}

impl CanvasClient {
    /// Every page of a list endpoint, in order. The first call carries `per_page` from the
    /// config unless it already sets one.
    pub fn pages<T>(&self, first: Call) -> BoxStream<'static, Result<Vec<T>, ClientError>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let mut first = first;
        if !first.query.iter().any(|(k, _)| k == "per_page") {
            first = first.query("per_page", self.config().per_page.to_string());
        }
        let client = self.clone();
        let start = Cursor {
            next: Some(first),
            seen: HashSet::new(),
        };
        stream::try_unfold(start, move |mut cur| {
            let client = client.clone();
            async move {
                let Some(call) = cur.next.take() else {
                    return Ok(None);
                };
                let answer = client.execute(&call).await?;
                let path = call.target.split('?').next().unwrap_or("").to_owned();
                let items: Vec<T> = answer.json(&path)?;
                if let Some(url) = next_link(&answer.headers) {
                    if !cur.seen.insert(url.clone()) {
                        return Err(ClientError::Pagination(path));
                    }
                    // Opaque: the next URL already carries every parameter.
                    cur.next = Some(crate::client::transport::Call {
                        target: url,
                        query: Vec::new(),
                        ..call
                    });
                }
                Ok(Some((items, cur)))
            }
        })
        .boxed()
    }

    /// Every item of a list endpoint, page after page.
    pub fn items<T>(&self, first: Call) -> BoxStream<'static, Result<T, ClientError>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.pages(first)
            .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// Collect a whole list.
    pub async fn collect<T>(&self, first: Call) -> Result<Vec<T>, ClientError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.items(first).try_collect().await
    }
}
