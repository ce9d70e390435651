//! One module per part of the entity (and relation) aggregate. Every test reads
//! given (a history) / when (a command) / then (exact delta events or a rejection).

mod content;
mod create;
mod lifecycle;
mod metadata;
mod relation;
mod revert;
mod tags;
mod task;
mod title;
mod types;
