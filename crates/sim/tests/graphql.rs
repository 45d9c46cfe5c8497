//! Canvas GraphQL: the published example query answers from the university, connections page
//! with cursors (default 20, at most 100), Canvas's depth and complexity limits apply, and
//! every query is validated against `schema.graphql` (invalid ones get errors, never data).

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{Value, json};

async fn gql(
    t: &TestSim,
    query: &str,
    variables: Value,
) -> (reqwest::StatusCode, Value, Option<String>) {
    let r = t
        .http
        .post(t.url("/api/graphql"))
        .bearer_auth(TOKEN)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("graphql");
    let status = r.status();
    let cost = r
        .headers()
        .get("x-request-cost")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, r.json().await.expect("json"), cost)
}

fn example_query() -> String {
    std::fs::read_to_string(data_path("canvas/graphql/example_course_query.graphql"))
        .expect("example query")
}

#[tokio::test]
async fn the_published_example_query_reads_a_course_in_one_request() {
    let t = TestSim::start(config(61)).await;
    let gt = t.sim.ground_truth();
    let course = gt
        .courses
        .iter()
        .find(|c| c.workflow_state == "available")
        .expect("course");
    let q = example_query();
    assert!(
        sim::canvas::graphql::validate(&q).is_ok(),
        "the example is valid against the schema"
    );
    let (status, v, cost) = gql(
        &t,
        &q,
        json!({"courseId": course.id.to_string(), "first": 50}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(v.get("errors").is_none(), "{v}");
    assert!(cost.is_some(), "GraphQL requests are charged too");
    let c = &v["data"]["course"];
    assert_eq!(c["_id"], json!(course.id.to_string()));
    assert_eq!(c["name"], json!(course.name));
    assert_eq!(c["sisId"], json!(course.sis_course_id));
    assert_eq!(c["state"], "available");
    let sections: BTreeSet<String> = c["sectionsConnection"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|s| s["_id"].as_str().expect("id").to_owned())
        .collect();
    let expected: BTreeSet<String> = gt
        .sections
        .iter()
        .filter(|s| s.course_id == course.id)
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(sections, expected);
    for e in c["enrollmentsConnection"]["nodes"]
        .as_array()
        .expect("nodes")
    {
        assert!(["active", "invited", "completed"].contains(&e["state"].as_str().unwrap_or("")));
        assert!(e["user"]["_id"].is_string() && e["section"]["_id"].is_string());
    }
    let assignments = c["assignmentsConnection"]["nodes"]
        .as_array()
        .expect("nodes");
    assert_eq!(
        assignments.len(),
        gt.assignments
            .iter()
            .filter(|a| a.course_id == course.id)
            .count()
    );
    let modules = c["modulesConnection"]["nodes"].as_array().expect("nodes");
    assert_eq!(
        modules.len(),
        gt.modules
            .iter()
            .filter(|m| m.course_id == course.id)
            .count()
    );
    let typenames: BTreeSet<&str> = modules
        .iter()
        .flat_map(|m| m["moduleItems"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| {
            i["content"]["__typename"].as_str().map(|s| match s {
                "ExternalUrl" => "ExternalUrl",
                "Assignment" => "Assignment",
                _ => "other",
            })
        })
        .collect();
    assert!(typenames.contains("ExternalUrl") || typenames.contains("Assignment"));
    for m in modules {
        for i in m["moduleItems"].as_array().cloned().unwrap_or_default() {
            if i["content"]["__typename"] == "ExternalUrl" {
                assert!(
                    i["content"]["url"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("https://"))
                );
            }
        }
    }
    // Relay ids resolve too.
    let relay = c["id"].as_str().expect("relay id");
    let (_, v, _) = gql(
        &t,
        "query($id: ID!) { course(id: $id) { _id } }",
        json!({"id": relay}),
    )
    .await;
    assert_eq!(v["data"]["course"]["_id"], json!(course.id.to_string()));
    t.stop().await;
}

#[tokio::test]
async fn connections_walk_every_enrollment_exactly_once() {
    let t = TestSim::start(config(62)).await;
    let gt = t.sim.ground_truth();
    let mut counts = std::collections::BTreeMap::<u64, usize>::new();
    for e in &gt.enrollments {
        *counts.entry(e.course_id).or_default() += 1;
    }
    let (&course, _) = counts.iter().max_by_key(|(_, n)| **n).expect("course");
    let q = "query($id: ID!, $after: String) { course(id: $id) { enrollmentsConnection(first: 7, after: $after, filter: {states: [active, invited, creation_pending, inactive, completed, deleted, rejected]}) { edges { cursor node { _id } } pageInfo { hasNextPage endCursor } } } }";
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let (_, v, _) = gql(&t, q, json!({"id": course.to_string(), "after": after})).await;
        assert!(v.get("errors").is_none(), "{v}");
        let conn = &v["data"]["course"]["enrollmentsConnection"];
        let edges = conn["edges"].as_array().expect("edges");
        assert!(edges.len() <= 7);
        seen.extend(edges.iter().map(|e| {
            e["node"]["_id"]
                .as_str()
                .expect("id")
                .parse::<u64>()
                .expect("number")
        }));
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        assert_eq!(
            conn["pageInfo"]["endCursor"],
            edges.last().expect("edge")["cursor"]
        );
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        assert!(seen.len() < 100_000);
    }
    let expected: Vec<u64> = gt
        .enrollments
        .iter()
        .filter(|e| e.course_id == course)
        .map(|e| e.id)
        .collect();
    assert_eq!(seen, expected);

    // Page sizes: default 20, at most 100.
    let (_, v, _) = gql(
        &t,
        "query($id: ID!) { course(id: $id) { enrollmentsConnection { nodes { _id } } } }",
        json!({"id": course.to_string()}),
    )
    .await;
    let n = v["data"]["course"]["enrollmentsConnection"]["nodes"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(n, expected.len().min(20));
    let (_, v, _) = gql(&t, "{ allCourses { _id } }", json!({})).await;
    assert!(
        v["data"]["allCourses"]
            .as_array()
            .is_some_and(|a| a.len() > 20)
    );
    let (_, v, _) = gql(
        &t,
        "{ account(id: \"1\") { coursesConnection(first: 500) { nodes { _id } } } }",
        json!({}),
    )
    .await;
    let n = v["data"]["account"]["coursesConnection"]["nodes"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(n <= 100);
    t.stop().await;
}

#[tokio::test]
async fn invalid_queries_and_limits_are_refused() {
    let t = TestSim::start(config(63)).await;
    // Not valid against the schema: an unknown field, a wrong argument, a syntax error.
    for bad in [
        "{ course(id: \"1\") { nme } }",
        "{ course(identifier: \"1\") { name } }",
        "{ course(id: \"1\") { name ",
        "query($x: Int!) { course(id: $x) { name } }",
    ] {
        assert!(sim::canvas::graphql::validate(bad).is_err(), "{bad}");
        let (status, v, _) = gql(&t, bad, json!({})).await;
        assert_eq!(status, 200);
        assert!(
            v["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{bad}: {v}"
        );
        assert!(
            v.get("data").is_none_or(Value::is_null),
            "{bad}: no data for an invalid query"
        );
    }
    // Like Canvas's, an error that points into the query says where: one error, its line and
    // column, and the path to the field from the operation.
    let (_, v, _) = gql(&t, "{\n  course(id: \"1\") {\n    nme\n  }\n}", json!({})).await;
    let errors = v["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "one mistake, one error: {v}");
    assert_eq!(
        errors[0]["message"], "Field 'nme' doesn't exist on type 'Course'",
        "{v}"
    );
    assert_eq!(
        errors[0]["locations"],
        json!([{"line": 3, "column": 5}]),
        "{v}"
    );
    assert_eq!(errors[0]["path"], json!(["query", "course", "nme"]), "{v}");
    // A missing required variable.
    let (_, v, _) = gql(
        &t,
        "query($id: ID!) { course(id: $id) { name } }",
        json!({}),
    )
    .await;
    assert!(v["errors"].is_array());

    // Depth 16 > 15.
    let deep = "{ course(id: \"101\") { enrollmentsConnection(first: 1) { nodes { course { enrollmentsConnection(first: 1) { nodes { course { enrollmentsConnection(first: 1) { nodes { course { enrollmentsConnection(first: 1) { nodes { course { enrollmentsConnection(first: 1) { nodes { _id } } } } } } } } } } } } } } } }";
    assert!(sim::canvas::graphql::validate(deep).is_ok());
    let (_, v, _) = gql(&t, deep, json!({})).await;
    let msg = v["errors"][0]["message"].as_str().unwrap_or("").to_owned();
    assert!(
        msg.starts_with("Query has depth of") && msg.ends_with("max depth of 15"),
        "{msg}"
    );

    // Three nested 100-item connections: complexity about 2,000,000 > 375,000.
    let wide = "{ allCourses { enrollmentsConnection(first: 100) { nodes { course { enrollmentsConnection(first: 100) { nodes { course { sectionsConnection(first: 100) { nodes { _id } } } } } } } } } }";
    let (_, v, _) = gql(&t, wide, json!({})).await;
    let msg = v["errors"][0]["message"].as_str().unwrap_or("").to_owned();
    assert!(msg.contains("exceeds max complexity of 375000"), "{msg}");

    // Mutations exist in the schema but the writes coursewire needs are REST-only.
    let (_, v, _) = gql(
        &t,
        "mutation { createModule(input: {courseId: \"101\", name: \"x\"}) { module { _id } } }",
        json!({}),
    )
    .await;
    assert!(v["errors"].is_array());
    let empty = t
        .http
        .post(t.url("/api/graphql"))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .expect("req");
    assert_eq!(empty.status(), 400);
    let unauthenticated = t
        .http
        .post(t.url("/api/graphql"))
        .json(&json!({"query": "{ allCourses { _id } }"}))
        .send()
        .await
        .expect("req");
    assert_eq!(unauthenticated.status(), 401);
    t.stop().await;
}
