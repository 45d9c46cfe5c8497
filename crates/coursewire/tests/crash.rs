//! Durability under SIGKILL: the `coursewire serve` binary is killed right after answering 2xx
//! and restarted; every event it acknowledged must be in the inbox.

mod common;

use std::time::Duration;

use common::{Backend, JwksServer, ServeProcess, TestDb, enrollment_event, keys, sign};

async fn start(db_url: &str, jwks_url: &str, port: u16) -> ServeProcess {
    ServeProcess::start(db_url, port, &[("COURSEWIRE_CANVAS_JWKS_URL", jwks_url)]).await
}

async fn killed_right_after_2xx_loses_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let k = keys();
    let jwks = JwksServer::start(&[&k[0]]).await;
    let port = ServeProcess::free_port();
    let serve = start(&db.url, &jwks.url, port).await;
    let client = coursewire::app::http_client().unwrap();

    // One event, then SIGKILL the moment its 2xx arrives.
    let r = client
        .post(format!("{}/hooks/canvas", serve.base))
        .body(sign(&enrollment_event(1), &k[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    serve.sigkill();

    // Many concurrent events, SIGKILL while they are in flight: every 2xx must survive.
    let serve = start(&db.url, &jwks.url, port).await;
    let url = format!("{}/hooks/canvas", serve.base);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 2..400u64 {
        let (client, url, body) = (
            client.clone(),
            url.clone(),
            sign(&enrollment_event(n), &k[0]),
        );
        tasks.spawn(async move {
            match client.post(&url).body(body).send().await {
                Ok(r) if r.status().is_success() => Some(n),
                _ => None,
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    serve.sigkill();
    let mut acknowledged = vec![1u64];
    while let Some(result) = tasks.join_next().await {
        if let Some(n) = result.unwrap() {
            acknowledged.push(n);
        }
    }

    let serve = start(&db.url, &jwks.url, port).await;
    let store = db.store().await;
    for n in &acknowledged {
        let key_source = enrollment_event(*n);
        let decoded = canvas::live_events::decode_value(&key_source).unwrap();
        let row = store
            .inbox_by_key("canvas", &decoded[0].dedup_key)
            .await
            .unwrap();
        assert!(
            row.is_some(),
            "event {n} was acknowledged but is missing after SIGKILL"
        );
    }
    eprintln!(
        "{} events acknowledged before SIGKILL, all present",
        acknowledged.len()
    );
    let status = serve.sigterm();
    assert!(status.success(), "graceful SIGTERM exit: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_right_after_2xx_loses_nothing() {
    killed_right_after_2xx_loses_nothing(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_right_after_2xx_loses_nothing() {
    killed_right_after_2xx_loses_nothing(Backend::Postgres).await
}
