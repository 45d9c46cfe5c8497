//! `POST /hooks/canvas` end to end: the real service on port 0, a real store, a JWKS server.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, JwksServer, TestApp, TestDb, enrollment_event, keys, sign};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPublicKey;
use serde_json::{Value, json};

async fn app(backend: Backend, jwks: &JwksServer, allow_unsigned: bool) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    Some(TestApp::spawn(db, &jwks.url, allow_unsigned).await)
}

async fn inbox_total(app: &TestApp) -> i64 {
    app.db.store().await.inbox_depth().await.unwrap().total()
}

both_backends!(
    by_backend:
    signed_event_is_stored_then_answered,
    every_forgery_is_refused_and_nothing_stored,
    an_event_from_another_institutions_canvas_is_refused,
    duplicate_delivery_is_stored_once,
    burst_of_a_thousand_distinct_events_leaves_a_thousand_rows,
);

async fn signed_event_is_stored_then_answered(backend: Backend) {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0], &k[1], &k[2]]).await;
    let Some(app) = app(backend, &jwks, false).await else {
        return;
    };
    let jws = sign(&enrollment_event(1), &k[1]);
    let (status, body) = app.post_canvas(jws.clone(), "application/jwt").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "accepted");
    let rows = app.db.store().await.inbox_after(0, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.verification, "kid:test-key-1");
    assert_eq!(row.event_name.as_deref(), Some("enrollment_updated"));
    assert_eq!(row.subject.as_deref(), Some("enrollment/40001"));
    // The processor (on by default) may already have applied it.
    assert!(
        matches!(row.status.as_str(), "pending" | "processed"),
        "{:?}",
        row.status
    );
    assert!(row.headers.contains("application/jwt"));
    assert_eq!(
        row.body,
        jws.as_bytes(),
        "the raw body is kept byte for byte"
    );
    app.stop().await.unwrap();
}

/// Each forged or invalid body gets 401 and leaves the inbox empty.
async fn every_forgery_is_refused_and_nothing_stored(backend: Backend) {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0], &k[1], &k[2]]).await;
    let Some(app) = app(backend, &jwks, false).await else {
        return;
    };
    let event = enrollment_event(7);
    let good = sign(&event, &k[1]);

    let forgeries: Vec<(&str, String)> = vec![
        ("alg none", alg_none(&event, &k[1].kid)),
        (
            "HS256 with the public key as secret",
            hs256_with_public_key(&event, &k[1]),
        ),
        ("tampered body", tamper(&good)),
        ("signed by a key not in the JWKS, claiming a known kid", {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(k[1].kid.clone());
            jsonwebtoken::encode(&header, &event, &k[3].encoding).unwrap()
        }),
        ("expired", {
            let mut claims = event.clone();
            claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
            sign(&claims, &k[1])
        }),
        ("issued two days ago (a replayed capture)", {
            let mut claims = event.clone();
            claims["iat"] = json!(chrono::Utc::now().timestamp() - 2 * 86_400);
            sign(&claims, &k[1])
        }),
        ("not valid for another hour", {
            let mut claims = event.clone();
            claims["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
            sign(&claims, &k[1])
        }),
        ("no kid", {
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &event, &k[1].encoding).unwrap()
        }),
        ("not a JWS at all", "hello there".to_string()),
    ];
    for (what, body) in &forgeries {
        let (status, answer) = app.post_canvas(body.clone(), "application/jwt").await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(answer["status"], "rejected", "{what}");
    }
    let (status, _) = app.post_canvas(event.to_string(), "application/json").await;
    assert_eq!(status, 401, "unsigned JSON while allow_unsigned = false");
    assert_eq!(inbox_total(&app).await, 0, "nothing stored");

    let (_, metrics) = app.get_text("/metrics").await;
    for reason in [
        "algorithm_not_allowed",
        "bad_signature",
        "expired",
        "stale",
        "not_yet_valid",
        "missing_kid",
        "malformed",
        "unsigned",
    ] {
        assert!(
            metrics.contains(&format!(
                "coursewire_ingest_events_rejected_total{{reason=\"{reason}\"}}"
            )),
            "{reason} counted:\n{metrics}"
        );
    }
    // The rejected-requests log is written asynchronously by the batch writer.
    let store = app.db.store().await;
    let mut logged = Vec::new();
    for _ in 0..100 {
        logged = store.recent_rejections(100).await.unwrap();
        if logged.len() == forgeries.len() + 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(logged.len(), forgeries.len() + 1, "{logged:?}");
    app.stop().await.unwrap();
}

/// Instructure's one JWKS signs every customer's events: a valid signature on an event of
/// another root account (another university, or our own Beta) is still refused.
async fn an_event_from_another_institutions_canvas_is_refused(backend: Backend) {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0], &k[1], &k[2]]).await;
    let Some(app) = app(backend, &jwks, false).await else {
        return;
    };
    let ours = enrollment_event(11);
    let mut theirs = enrollment_event(12);
    theirs["metadata"]["root_account_uuid"] = json!("AnotherUniversityRootAccountUuid00000000");
    let mut nameless = enrollment_event(13);
    nameless["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("root_account_uuid");
    let caliper: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/canvas/live_events/caliper/course_created.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut foreign_caliper = caliper.clone();
    foreign_caliper["data"][0]["actor"]["extensions"]["com.instructure.canvas"]["root_account_uuid"] =
        json!("AnotherUniversityRootAccountUuid00000000");

    for (what, event) in [
        ("another root account", &theirs),
        ("no root account", &nameless),
        ("another root account, Caliper", &foreign_caliper),
    ] {
        let (status, answer) = app.post_signed(event, &k[1]).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(answer["reason"], "foreign_account", "{what}: {answer}");
    }
    assert_eq!(inbox_total(&app).await, 0, "nothing stored");
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("coursewire_ingest_events_rejected_total{reason=\"foreign_account\"} 3"),
        "{metrics}"
    );

    for (what, event) in [("ours", &ours), ("ours, Caliper", &caliper)] {
        let (status, answer) = app.post_signed(event, &k[1]).await;
        assert_eq!(status, 200, "{what}: {answer}");
        assert_eq!(answer["status"], "accepted", "{what}");
    }
    assert_eq!(inbox_total(&app).await, 2);
    app.stop().await.unwrap();
}

async fn duplicate_delivery_is_stored_once(backend: Backend) {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0], &k[1], &k[2]]).await;
    let Some(app) = app(backend, &jwks, false).await else {
        return;
    };
    let event = enrollment_event(3);
    // Canvas re-signs on retry: different JWS bytes, same event.
    let (s1, a1) = app.post_signed(&event, &k[1]).await;
    let mut resigned = event.clone();
    resigned["iat"] = json!(chrono::Utc::now().timestamp());
    let (s2, a2) = app.post_signed(&resigned, &k[2]).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a1["status"], "accepted");
    assert_eq!(a2["status"], "duplicate");
    assert_eq!(inbox_total(&app).await, 1);
    app.stop().await.unwrap();
}

async fn burst_of_a_thousand_distinct_events_leaves_a_thousand_rows(backend: Backend) {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0], &k[1], &k[2]]).await;
    let Some(app) = app(backend, &jwks, false).await else {
        return;
    };
    let bodies: Vec<String> = (0..1000)
        .map(|n| sign(&enrollment_event(n), &k[1]))
        .collect();
    let client = app.client.clone();
    let url = format!("{}/hooks/canvas", app.base);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in bodies.chunks(1000 / 50) {
        let chunk = chunk.to_vec();
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let mut accepted = 0;
            for body in chunk {
                let r = client.post(&url).body(body).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                accepted += 1;
            }
            accepted
        });
    }
    let mut answered = 0;
    while let Some(n) = tasks.join_next().await {
        answered += n.unwrap();
    }
    assert_eq!(answered, 1000);
    assert_eq!(inbox_total(&app).await, 1000);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn key_from_a_jwks_rotation_is_accepted() {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0], &k[1], &k[2]]).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, &jwks.url, |c| c.canvas.jwks_min_refresh_seconds = 0).await;
    assert_eq!(app.post_signed(&enrollment_event(1), &k[1]).await.0, 200);
    // Month end: previous key dropped, a new next key published; Canvas signs with it at once.
    jwks.set_keys(&[&k[1], &k[2], &k[3]]);
    let (status, body) = app.post_signed(&enrollment_event(2), &k[3]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(inbox_total(&app).await, 2);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_a_minute() {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0], &k[1]]).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn(db, &jwks.url, false).await;
    assert_eq!(app.post_signed(&enrollment_event(1), &k[1]).await.0, 200);
    let before = jwks.fetch_count();
    for n in 0..20 {
        let (status, body) = app.post_signed(&enrollment_event(100 + n), &k[3]).await;
        assert_eq!(status, 401);
        assert_eq!(body["reason"], "unknown_kid");
    }
    assert!(
        jwks.fetch_count() - before <= 1,
        "fetches: {}",
        jwks.fetch_count()
    );
    app.stop().await.unwrap();
}

/// While the JWKS host is down, a burst of 200 unknown `kid`s causes one fetch (not one each),
/// is answered 503 so Canvas retries, and events signed with cached keys are still taken. A
/// JWKS that comes back empty, oversized or garbled never wipes the cached keys; keys it
/// stops serving are dropped after the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_cache_survives_outages_floods_and_bad_answers() {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0], &k[1]]).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, &jwks.url, |c| {
        c.canvas.jwks_min_refresh_seconds = 2;
        c.canvas.jwks_refresh_seconds = 3600;
        c.canvas.jwks_key_grace_seconds = 0;
    })
    .await;
    assert_eq!(app.post_signed(&enrollment_event(1), &k[0]).await.0, 200);
    let fetched = jwks.fetch_count();
    jwks.go_down();
    // Past min_refresh, so an unknown kid may fetch again.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let bodies: Vec<String> = (0..200)
        .map(|n| sign(&enrollment_event(1000 + n), &k[3]))
        .collect();
    let mut burst = tokio::task::JoinSet::new();
    for body in bodies {
        let (client, url) = (app.client.clone(), format!("{}/hooks/canvas", app.base));
        burst.spawn(async move {
            client
                .post(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(status) = burst.join_next().await {
        assert_eq!(
            status.unwrap(),
            503,
            "unknown kid while the JWKS is down: retry later"
        );
    }
    assert_eq!(
        jwks.fetch_count() - fetched,
        1,
        "one fetch for the whole burst"
    );
    assert_eq!(
        app.post_signed(&enrollment_event(2), &k[1]).await.0,
        200,
        "cached keys still verify during the outage"
    );

    // Bad answers after the outage: each is one fetch (a new unknown kid, min_refresh later),
    // and none of them empties the cache.
    for bad in [
        json!({"keys": []}).to_string(),
        "not json".to_owned(),
        format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(100_000)),
    ] {
        jwks.answer_with(bad);
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let (status, _) = app.post_signed(&enrollment_event(3000), &k[3]).await;
        assert_eq!(status, 503);
        assert_eq!(
            app.post_signed(&enrollment_event(3001 + jwks.fetch_count() as u64), &k[0])
                .await
                .0,
            200
        );
    }

    // Canvas rotates k[0] out (grace 0 here): after the next fetch it is refused.
    jwks.set_keys(&[&k[1], &k[2]]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        app.post_signed(&enrollment_event(4000), &k[2]).await.0,
        200,
        "the new key"
    );
    let (status, body) = app.post_signed(&enrollment_event(4001), &k[0]).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("unknown_kid")),
        "{body}"
    );
    app.stop().await.unwrap();
}

/// A JWS header is size-checked before it is decoded, and a `kid` or `alg` the sender chose is
/// cut short wherever it is echoed.
#[tokio::test]
async fn oversized_headers_and_long_kids_are_refused_short() {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0]]).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn(db, &jwks.url, false).await;
    let huge = format!("{}.e30.c2ln", "A".repeat(10_000));
    let (status, body) = app.post_canvas(huge, "application/jwt").await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("malformed")),
        "{body}"
    );
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k".repeat(1000));
    let token = jsonwebtoken::encode(&header, &enrollment_event(1), &k[0].encoding).unwrap();
    let (status, body) = app.post_canvas(token, "application/jwt").await;
    assert_eq!(status, 401);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.len() < 200, "{detail}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn envelope_under_one_wrapping_claim_is_accepted() {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0]]).await;
    let app = TestApp::spawn(
        TestDb::new(Backend::Sqlite).await.unwrap(),
        &jwks.url,
        false,
    )
    .await;
    let claims = json!({"iss": "canvas", "iat": chrono::Utc::now().timestamp(), "data": enrollment_event(5)});
    let (status, body) = app.post_signed(&claims, &k[0]).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("accepted")),
        "{body}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn verified_but_unparseable_events_are_quarantined_with_the_reason() {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0]]).await;
    let app = TestApp::spawn(TestDb::new(Backend::Sqlite).await.unwrap(), &jwks.url, true).await;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "signed claims that hold no event",
            sign(&json!({"hello": "world"}), &k[0]),
            "application/jwt",
        ),
        (
            "truncated JSON",
            r#"{"metadata": {"event_name": "enrollment_cr"#.to_string(),
            "application/json",
        ),
        (
            "deeply nested JSON",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            "application/json",
        ),
        (
            "JSON with no event_name",
            json!({"metadata": {"root_account_uuid": common::ROOT_ACCOUNT}, "body": {}})
                .to_string(),
            "application/json",
        ),
    ];
    for (what, body, content_type) in &cases {
        let (status, answer) = app.post_canvas(body.clone(), content_type).await;
        assert_eq!(status, 200, "{what}: {answer}");
        assert_eq!(answer["status"], "quarantined", "{what}: {answer}");
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(
            !reason.is_empty() && reason.len() < 300,
            "{what}: clear reason, got {reason:?}"
        );
    }
    let depth = app.db.store().await.inbox_depth().await.unwrap();
    assert_eq!(depth.quarantined, cases.len() as i64, "kept, not lost");
    // Re-delivery of the same broken body is still one row.
    let (_, again) = app
        .post_canvas(cases[1].1.clone(), "application/json")
        .await;
    assert_eq!(again["status"], "duplicate");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn unsigned_events_are_accepted_only_when_allowed() {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0]]).await;
    let app = TestApp::spawn(TestDb::new(Backend::Sqlite).await.unwrap(), &jwks.url, true).await;
    let (status, body) = app
        .post_canvas(enrollment_event(9).to_string(), "application/json")
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    let rows = app.db.store().await.inbox_after(0, 10).await.unwrap();
    assert_eq!(rows[0].verification, "unsigned-allowed");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0]]).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, &jwks.url, |c| c.ingest.max_body_bytes = 4096).await;
    let (status, _) = app.post_canvas("x".repeat(5000), "application/jwt").await;
    assert_eq!(status, 413);
    let (status, _) = app.post_signed(&enrollment_event(1), &k[0]).await;
    assert_eq!(status, 200, "a normal event still fits");
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains("coursewire_ingest_events_rejected_total{reason=\"too_large\"} 1"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let k = keys();
    let jwks = JwksServer::start(&[&k[0]]).await;
    // Ingest alone, so the inbox depth is what ingest left.
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, &jwks.url, |c| c.processor.enabled = false).await;
    assert_eq!(app.get_text("/healthz").await.0, 200);
    let (status, ready) = app.get_text("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert!(ready.contains("writable"), "{ready}");
    app.post_signed(&enrollment_event(1), &k[0]).await;
    app.post_signed(&enrollment_event(1), &k[0]).await;
    let (_, metrics) = app.get_text("/metrics").await;
    for line in [
        "coursewire_ingest_events_received_total 2",
        "coursewire_ingest_events_accepted_total 1",
        "coursewire_ingest_events_duplicate_total 1",
        "coursewire_inbox_depth_events{status=\"pending\"} 1",
        "coursewire_ingest_latency_seconds_count 2",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    app.stop().await.unwrap();
}

/// `/readyz` means "can take events": while another process holds the SQLite write lock it
/// answers 503 (without the database's error text), and 200 again once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_inbox_cannot_be_written() {
    use sqlx::Connection;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn(db, "http://127.0.0.1:9/jwks", true).await;
    assert_eq!(app.get_text("/readyz").await.0, 200);
    let mut other = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["inbox"], "cannot write", "{body}");
    assert!(
        !body.to_string().to_lowercase().contains("locked"),
        "no raw error text: {body}"
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    let mut status = 0;
    for _ in 0..50 {
        status = app.get_text("/readyz").await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "ready again once the lock is released");
    app.stop().await.unwrap();
}

fn alg_none(claims: &Value, kid: &str) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

fn hs256_with_public_key(claims: &Value, key: &common::SigningKey) -> String {
    let public_pem = key
        .private
        .to_public_key()
        .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap()
}

fn tamper(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
    let mut claims: Value = serde_json::from_slice(&payload).unwrap();
    claims["body"]["workflow_state"] = json!("deleted");
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    )
}
