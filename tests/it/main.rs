//! Integration tests: all in ONE test binary (one link, like ripgrep's `tests/tests.rs`).
//! They drive the real stage binaries on real files; the pipeline tests drive real DVC.

mod common;
mod corpus;
mod datasets;
mod deploy;
mod explain;
mod fuzz;
mod hardening;
mod layout;
mod pipeline;
mod production;
mod serve;
mod spark;
mod sql;
mod stages;
mod stream;
mod tracking;
mod urls;
mod workflows;
mod zeek;
