//! netsec: network-threat detection as a DVC pipeline of small Rust stages.
//!
//! Where things live (the pipeline order):
//! - [`data`]: reading raw files (one [`data::Source`] per format) and the seeded split;
//! - [`schema`]: the per-dataset schema files under `schemas/`;
//! - [`validate`]: schema checks and drift tests;
//! - [`features`]: features derived from raw fields (Zeek `conn.log`), one file each behind [`features::Derive`];
//! - [`preprocess`]: preprocessing fitted on the training part;
//! - [`models`]: model families behind [`models::Family`] / [`models::Classifier`];
//! - [`search`]: cross-validation on the training part;
//! - [`metrics`]: classification metrics;
//! - [`bundle`]: the saved model;
//! - [`output`]: output formats (CSV, JSON, HTML, Markdown), one file each behind [`output::Format`];
//! - [`stages`]: one module per pipeline stage, called by the binaries in `src/bin/`.

pub mod artifact;
pub mod bundle;
pub mod cli;
pub mod data;
pub mod error;
pub mod fault;
pub mod features;
pub mod http;
pub mod metrics;
pub mod models;
pub mod output;
pub mod params;
pub mod preprocess;
pub mod registry;
pub mod remote;
pub mod s3;
pub mod schema;
pub mod search;
pub mod serving;
pub mod stages;
pub mod tracking;
pub mod validate;

pub use error::{Error, Result};
