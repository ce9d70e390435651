//! The local embedder: a BERT sentence model (all-MiniLM-L6-v2 by default) run on the
//! CPU with candle, loaded from a directory with `config.json`, `tokenizer.json` and
//! `model.safetensors` — no network, ever. Embeddings are computed the way
//! sentence-transformers computes them for this model: tokens truncated to
//! [`SEQUENCE_TOKENS_MAX`], the last hidden states mean-pooled over the attention
//! mask, then L2-normalised.
//!
//! Inference is CPU-bound, so `embed` runs it on tokio's blocking pool in batches of
//! [`LOCAL_BATCH_MAX`] texts.

use super::{Embedder, normalize};
use crate::error::AiError;
use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use std::path::Path;
use std::sync::Arc;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Word pieces read per text: sentence-transformers' `max_seq_length` for
/// all-MiniLM-L6-v2 (the model was trained on up to 256; longer text is cut, which is
/// why bodies are chunked first).
pub const SEQUENCE_TOKENS_MAX: usize = 256;
/// Texts per forward pass: bounds memory (batch × tokens × hidden) per call.
pub const LOCAL_BATCH_MAX: usize = 32;

struct Model {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

/// all-MiniLM-L6-v2 (or a compatible BERT) on the CPU.
#[derive(Clone)]
pub struct LocalEmbedder {
    model: Arc<Model>,
    model_id: String,
    dimensions: usize,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model_id", &self.model_id)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

impl LocalEmbedder {
    /// Loads the model from `dir`. A missing file is named in the error, with where
    /// to get it.
    pub fn load(dir: &Path) -> Result<Self, AiError> {
        super::check_model_dir(dir)?;
        let model_error = |file: &str, e: &dyn std::fmt::Display| {
            AiError::Model(format!("cannot read {}: {e}", dir.join(file).display()))
        };
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| model_error("config.json", &e))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| model_error("config.json", &e))?;
        let dimensions = serde_json::from_str::<serde_json::Value>(&config_text)
            .ok()
            .and_then(|v| v.get("hidden_size")?.as_u64())
            .and_then(|d| usize::try_from(d).ok())
            .filter(|d| *d > 0)
            .ok_or_else(|| model_error("config.json", &"no hidden_size"))?;

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| model_error("tokenizer.json", &e))?;
        // The file pads every input to a fixed 128; pad per batch instead, and cut at
        // the length the model was trained for.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: SEQUENCE_TOKENS_MAX,
                ..TruncationParams::default()
            }))
            .map_err(|e| model_error("tokenizer.json", &e))?;

        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| model_error("model.safetensors", &e))?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DTYPE, &device)
            .map_err(|e| model_error("model.safetensors", &e))?;
        let bert =
            BertModel::load(vb, &config).map_err(|e| model_error("model.safetensors", &e))?;

        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| *n != "model")
            .unwrap_or("all-MiniLM-L6-v2");
        Ok(LocalEmbedder {
            model: Arc::new(Model {
                bert,
                tokenizer,
                device,
            }),
            model_id: format!("local:{name}"),
            dimensions,
        })
    }

    /// Embeds synchronously (on the calling thread).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, AiError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(LOCAL_BATCH_MAX) {
            out.extend(self.model.embed_batch(batch)?);
        }
        Ok(out)
    }
}

impl Model {
    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, AiError> {
        let err = |e: &dyn std::fmt::Display| AiError::Model(e.to_string());
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| err(&e))?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| {
            let data: Vec<Tensor> = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &self.device))
                .collect::<Result<_, _>>()?;
            Tensor::stack(&data, 0)
        };
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = rows(&|e| e.get_ids())?;
            let type_ids = rows(&|e| e.get_type_ids())?;
            let mask = rows(&|e| e.get_attention_mask())?;
            let hidden = self.bert.forward(&ids, &type_ids, Some(&mask))?;
            // Mean over the real (unpadded) tokens.
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
            summed.broadcast_div(&counts)?.to_vec2::<f32>()
        };
        let mut vectors = run().map_err(|e| err(&e))?;
        vectors.iter_mut().for_each(|v| normalize(v));
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }
    fn dimensions(&self) -> usize {
        self.dimensions
    }
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, AiError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let owned: Vec<String> = texts.iter().map(|t| (*t).to_string()).collect();
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.embed_blocking(&owned))
            .await
            .map_err(|e| AiError::Model(format!("the embedding task failed: {e}")))?
    }
}
