//! The OpenAPI document: it is OpenAPI 3.1 and structurally sound (every `$ref`
//! resolves, every operation has responses, path parameters are declared, ids
//! are unique, every error is a `Problem`), it passes the reference validator
//! (`openapi-spec-validator`, Python), every documented operation is served and
//! no undocumented method is, and the `/v1` data routes are exactly the set this
//! crate registers. `/docs` serves Swagger UI from the binary.

use crate::data::TestApp;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use tower::ServiceExt;

/// The `/v1` data routes (entities, relations, graph, tags, search, capture, the
/// events feed). A route added under these paths must be added here, documented.
const DATA_ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/entities"),
    ("post", "/v1/entities"),
    ("get", "/v1/entities/{id}"),
    ("patch", "/v1/entities/{id}"),
    ("delete", "/v1/entities/{id}"),
    ("post", "/v1/entities/{id}/restore"),
    ("post", "/v1/entities/{id}/revert"),
    ("get", "/v1/entities/{id}/history"),
    ("get", "/v1/entities/{id}/content"),
    ("get", "/v1/entities/{id}/relations"),
    ("post", "/v1/relations"),
    ("delete", "/v1/relations/{id}"),
    ("get", "/v1/graph"),
    ("get", "/v1/tags"),
    ("get", "/v1/search"),
    ("post", "/v1/capture"),
    ("get", "/v1/events"),
    ("get", "/v1/entities/{id}/attachments"),
    ("post", "/v1/entities/{id}/attachments"),
    ("get", "/v1/entities/{id}/attachments/{attachment_id}"),
    ("delete", "/v1/entities/{id}/attachments/{attachment_id}"),
    ("post", "/v1/import"),
    ("get", "/v1/export"),
    ("get", "/v1/workflows/runs"),
    ("get", "/v1/workflows/runs/{id}"),
    ("post", "/v1/workflows/runs/{id}/retry"),
    ("post", "/v1/workflows/runs/{id}/cancel"),
    ("get", "/v1/webhooks"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"),
    ("get", "/v1/suggestions"),
    ("post", "/v1/suggestions/{id}/accept"),
    ("post", "/v1/suggestions/{id}/dismiss"),
];

fn is_data_path(path: &str) -> bool {
    path == "/v1/events"
        || [
            "/v1/entities",
            "/v1/relations",
            "/v1/graph",
            "/v1/tags",
            "/v1/search",
            "/v1/capture",
            "/v1/import",
            "/v1/export",
            "/v1/workflows",
            "/v1/webhooks",
            "/v1/suggestions",
        ]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")))
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(t: &TestApp) -> Value {
    let reply = t.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/json")
    );
    reply.json()
}

/// Every operation: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (key, operation) in item.as_object().expect("a path item") {
            if METHODS.contains(&key.as_str()) {
                out.push((key.clone(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => out.push(reference.clone()),
                    _ => collect_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_sound_openapi_3_1() {
    let t = TestApp::new().await;
    let doc = document(&t).await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert!(!doc["servers"].as_array().expect("servers").is_empty());
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["cookie"]["type"], "apiKey");
    assert_eq!(schemes["cookie"]["in"], "cookie");
    assert_eq!(schemes["cookie"]["name"], "synap_session");

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in &refs {
        assert!(
            resolve(&doc, reference).is_some(),
            "unresolved $ref {reference}"
        );
    }

    let mut operation_ids = HashSet::new();
    let ops = operations(&doc);
    assert!(!ops.is_empty());
    for (method, path, op) in &ops {
        let what = format!("{method} {path}");
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no operationId"));
        assert!(
            operation_ids.insert(id.to_string()),
            "{what}: operationId {id} is not unique"
        );
        let responses = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: no responses"));
        assert!(!responses.is_empty(), "{what}: no responses");
        for (status, response) in responses {
            let response = match response.get("$ref").and_then(Value::as_str) {
                Some(reference) => resolve(&doc, reference).expect("resolved"),
                None => response,
            };
            assert!(
                response["description"].is_string(),
                "{what} {status}: no description"
            );
        }
        // Every `{param}` of the template is a required path parameter, and no
        // parameter is declared twice.
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let mut seen = HashSet::new();
        for param in &params {
            let key = (
                param["name"].as_str().unwrap_or("").to_string(),
                param["in"].as_str().unwrap_or("").to_string(),
            );
            assert!(seen.insert(key.clone()), "{what}: parameter {key:?} twice");
            assert!(
                param["schema"].is_object(),
                "{what}: parameter {key:?} has no schema"
            );
        }
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            let declared = params
                .iter()
                .find(|p| p["name"] == name && p["in"] == "path")
                .unwrap_or_else(|| panic!("{what}: path parameter {name} is not declared"));
            assert_eq!(
                declared["required"], true,
                "{what}: {name} must be required"
            );
        }
        if let Some(security) = op["security"].as_array() {
            for requirement in security {
                for name in requirement.as_object().expect("a requirement").keys() {
                    assert!(
                        schemes.contains_key(name),
                        "{what}: unknown security scheme {name}"
                    );
                }
            }
        }
    }

    // The data routes: authenticated, every error a Problem as problem+json.
    for (method, path, op) in ops.iter().filter(|(_, path, _)| is_data_path(path)) {
        let what = format!("{method} {path}");
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no security"));
        let names: BTreeSet<&str> = security
            .iter()
            .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
            .collect();
        assert_eq!(names, BTreeSet::from(["bearer", "cookie"]), "{what}");
        let responses = op["responses"].as_object().unwrap();
        for status in ["401", "403", "429", "500", "503"] {
            assert!(
                responses.contains_key(status),
                "{what}: no {status} response"
            );
        }
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what}: no success response"
        );
        for (status, response) in responses.iter().filter(|(s, _)| !s.starts_with('2')) {
            let schema = &response["content"]["application/problem+json"]["schema"];
            assert_eq!(
                schema["$ref"], "#/components/schemas/Problem",
                "{what} {status}: errors are Problems"
            );
        }
        if op.get("requestBody").is_some() {
            assert!(responses.contains_key("413"), "{what}: no 413 response");
        }
        // JSON bodies (uploads of files and ZIPs are raw bytes).
        if op["requestBody"]["content"]
            .get("application/json")
            .is_some()
        {
            assert!(responses.contains_key("415"), "{what}: no 415 response");
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            let schema = match schema.get("$ref").and_then(Value::as_str) {
                Some(reference) => resolve(&doc, reference).expect("resolved"),
                None => schema,
            };
            assert_eq!(
                schema["additionalProperties"], false,
                "{what}: request bodies refuse unknown fields"
            );
        }
    }
}

#[tokio::test]
async fn the_data_routes_are_exactly_the_documented_ones() {
    let t = TestApp::new().await;
    let doc = document(&t).await;
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .filter(|(_, path, _)| is_data_path(path))
        .map(|(method, path, _)| (method, path))
        .collect();
    let registered: BTreeSet<(String, String)> = DATA_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, registered);
}

/// Sends a request without reading the body unless it is a 404 (a streaming route
/// would never end), and tells whether the router's fallback answered.
async fn probe(t: &TestApp, method: &str, uri: &str, token: &str) -> (StatusCode, bool) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
    let with_body = matches!(method, Method::POST | Method::PUT | Method::PATCH);
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if with_body {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let body = if with_body {
        Body::from("{}")
    } else {
        Body::empty()
    };
    let response = t
        .app
        .clone()
        .oneshot(request.body(body).expect("a request"))
        .await
        .expect("a response");
    let status = response.status();
    if status != StatusCode::NOT_FOUND {
        return (status, false);
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    (
        status,
        String::from_utf8_lossy(&bytes).contains("no such route"),
    )
}

#[tokio::test]
async fn every_documented_operation_is_served_and_no_other_method_is() {
    let t = TestApp::new().await;
    let user = t
        .user_with("alice@example.com", &["read", "write", "admin"])
        .await;
    let doc = document(&t).await;
    let ops = operations(&doc);
    for (method, path, _) in &ops {
        let uri = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    uuid::Uuid::now_v7().to_string()
                } else {
                    s.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let (status, fallback) = probe(&t, method, &uri, &user.token).await;
        assert!(!fallback, "{method} {path} is documented but not served");
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not served"
        );
        for other in ["get", "post", "put", "patch", "delete"] {
            if ops.iter().any(|(m, p, _)| m == other && p == path) {
                continue;
            }
            let (status, _) = probe(&t, other, &uri, &user.token).await;
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{other} {path} is served but not documented"
            );
        }
    }
}

#[tokio::test]
async fn the_reference_validator_accepts_the_document() {
    let available = std::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs python3 with openapi-spec-validator (pip install openapi-spec-validator)"
        );
        eprintln!("openapi-spec-validator is not installed; skipping the reference validation");
        return;
    }
    let t = TestApp::new().await;
    let doc = document(&t).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).expect("write");
    let output = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .output()
        .expect("run the validator");
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn docs_are_served_from_the_binary() {
    let t = TestApp::new().await;
    let redirect = t.send(Method::GET, "/docs", None, None).await;
    assert!(redirect.status.is_redirection(), "{}", redirect.status);
    let page = t.send(Method::GET, "/docs/", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    let html = page.text();
    assert!(html.contains("swagger"), "{html}");
    for cdn in ["unpkg.com", "jsdelivr", "cdnjs", "https://"] {
        assert!(!html.contains(cdn), "the page loads {cdn}");
    }
    let init = t
        .send(Method::GET, "/docs/swagger-initializer.js", None, None)
        .await;
    assert_eq!(init.status, StatusCode::OK);
    assert!(init.text().contains("/openapi.json"));
    let bundle = t
        .send(Method::GET, "/docs/swagger-ui-bundle.js", None, None)
        .await;
    assert_eq!(bundle.status, StatusCode::OK);
    assert!(
        bundle.body.len() > 100_000,
        "the UI's script is in the binary"
    );
}
