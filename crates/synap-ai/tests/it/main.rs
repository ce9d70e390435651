//! Integration tests of synap-ai: the local analyzer's table and properties, the
//! remote providers against a mock HTTP server on 127.0.0.1:0, and the embedders
//! (the real MiniLM model when its files are installed).

mod anthropic;
mod embeddings;
mod local;
mod mock;
mod openai;
