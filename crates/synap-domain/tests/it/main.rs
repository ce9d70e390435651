//! Integration tests of the pure domain: given/when/then for every command and
//! rejection, golden files pinning every stored event format, and property tests.

mod given_when_then;
mod golden;
mod properties;
mod support;
