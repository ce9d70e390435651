//! Attachments over HTTP: upload (streamed, chunked too, over the limit → 413),
//! list, download with `Range` (206/416), delete, and another user's ids → 404.

use crate::server_harness::{Answer, Auth, Harness, request, test_config};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use synap_server::ServerConfig;
use synap_store::Accounts;

fn png(size: usize) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend((0..size - 8).map(|i| (i % 251) as u8));
    bytes
}

fn upload(
    path: &str,
    token: &str,
    filename: &str,
    body: Body,
    length: Option<usize>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("X-Filename", filename)
        .header(header::CONTENT_TYPE, "application/octet-stream");
    if let Some(length) = length {
        builder = builder.header(header::CONTENT_LENGTH, length);
    }
    builder.body(body).unwrap()
}

/// A body sent in pieces without a length, as `Transfer-Encoding: chunked` is.
fn chunked(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

async fn entity(h: &Harness, token: &str) -> String {
    let answer = h
        .call(request(
            Method::POST,
            "/v1/entities",
            Auth::Bearer(token),
            Some(serde_json::json!({"type": "note", "content": "with files"})),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()["id"].as_str().unwrap().to_string()
}

fn get(path: &str, token: &str, range: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(range) = range {
        builder = builder.header(header::RANGE, range);
    }
    builder.body(Body::empty()).unwrap()
}

fn problem_code(answer: &Answer) -> String {
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json"),
        "{}",
        answer.text()
    );
    answer.json()["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn files_go_up_and_come_back_whole_or_in_ranges() {
    let h = Harness::with_objects(test_config()).await;
    let owner = h.store.local_owner().await.unwrap().id;
    let token = h.token(owner, &["read", "write"]).await;
    let id = entity(&h, &token).await;
    let path = format!("/v1/entities/{id}/attachments");
    // Over the 10 MiB JSON limit, under the attachment limit; sent chunked.
    let bytes = png(11 * 1024 * 1024);
    let answer = h
        .call(upload(
            &path,
            &token,
            "r%C3%A9sum%C3%A9.png",
            chunked(bytes.clone()),
            None,
        ))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let created = answer.json();
    assert_eq!(created["filename"], "résumé.png");
    assert_eq!(created["media_type"], "image/png");
    assert_eq!(created["size"], bytes.len());
    let attachment = created["id"].as_str().unwrap().to_string();
    let location = answer.header("location").unwrap().to_string();
    assert_eq!(location, format!("{path}/{attachment}"));

    let list = h.call(get(&path, &token, None)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json()["items"][0]["id"], attachment.as_str());

    let whole = h.call(get(&location, &token, None)).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("content-type"), Some("image/png"));
    assert_eq!(
        whole.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(
        whole.header("etag"),
        Some(format!("\"{}\"", created["hash"].as_str().unwrap()).as_str())
    );
    assert!(whole.body == bytes, "the download differs from the upload");

    let part = h.call(get(&location, &token, Some("bytes=100-199"))).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, bytes[100..200]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{}", bytes.len()).as_str())
    );
    let tail = h.call(get(&location, &token, Some("bytes=-10"))).await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.body, bytes[bytes.len() - 10..]);
    let outside = h
        .call(get(
            &location,
            &token,
            Some(&format!("bytes={}-", bytes.len())),
        ))
        .await;
    assert_eq!(outside.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(problem_code(&outside), "range_not_satisfiable");
    assert_eq!(
        outside.header("content-range"),
        Some(format!("bytes */{}", bytes.len()).as_str())
    );

    // The entity shows the attachment's events in its history.
    let history = h
        .call(get(&format!("/v1/entities/{id}/history"), &token, None))
        .await;
    let types: Vec<String> = history.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["entity.created", "entity.attachment_added"]);

    let delete = h
        .call(
            Request::builder()
                .method(Method::DELETE)
                .uri(&location)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT, "{}", delete.text());
    let gone = h.call(get(&location, &token, None)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(problem_code(&gone), "not_found");
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_chunked_or_not() {
    let config = ServerConfig {
        attachment_limit_bytes: 1024 * 1024,
        ..test_config()
    };
    let h = Harness::with_objects(config).await;
    let owner = h.store.local_owner().await.unwrap().id;
    let token = h.token(owner, &["read", "write"]).await;
    let id = entity(&h, &token).await;
    let path = format!("/v1/entities/{id}/attachments");
    let big = png(1024 * 1024 + 1);
    let declared = h
        .call(upload(
            &path,
            &token,
            "big.png",
            Body::from(big.clone()),
            Some(big.len()),
        ))
        .await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem_code(&declared), "payload_too_large");
    let streamed = h
        .call(upload(&path, &token, "big.png", chunked(big), None))
        .await;
    assert_eq!(
        streamed.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        streamed.text()
    );
    assert_eq!(problem_code(&streamed), "payload_too_large");
    let list = h.call(get(&path, &token, None)).await;
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 0);
    // No name: a clear 400.
    let unnamed = h
        .call(
            Request::builder()
                .method(Method::POST)
                .uri(&path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::from("x"))
                .unwrap(),
        )
        .await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_code(&unnamed), "missing_filename");
}

#[tokio::test]
async fn another_users_entity_and_attachment_answer_404() {
    let h = Harness::with_objects(test_config()).await;
    let owner = h.store.local_owner().await.unwrap().id;
    let token = h.token(owner, &["read", "write"]).await;
    let other = h.plain_user("other@example.com").await;
    let theirs = h.token(other.id, &["read", "write"]).await;
    let id = entity(&h, &token).await;
    let path = format!("/v1/entities/{id}/attachments");
    let answer = h
        .call(upload(
            &path,
            &token,
            "a.png",
            Body::from(png(100)),
            Some(100),
        ))
        .await;
    let location = answer.header("location").unwrap().to_string();
    for request in [
        get(&path, &theirs, None),
        get(&location, &theirs, None),
        upload(&path, &theirs, "b.png", Body::from(png(100)), Some(100)),
        Request::builder()
            .method(Method::DELETE)
            .uri(&location)
            .header(header::AUTHORIZATION, format!("Bearer {theirs}"))
            .body(Body::empty())
            .unwrap(),
    ] {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = h.call(request).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{what}: {}",
            answer.text()
        );
        assert_eq!(problem_code(&answer), "not_found", "{what}");
    }
    // A read-only token cannot upload.
    let reader = h.token(owner, &["read"]).await;
    let refused = h
        .call(upload(
            &path,
            &reader,
            "c.png",
            Body::from(png(100)),
            Some(100),
        ))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}
