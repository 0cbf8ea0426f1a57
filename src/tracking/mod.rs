//! Experiment tracking: train and evaluate report each model's run to a tracking server when
//! one is configured. One trait per seam ([`Tracker`]); MLflow's REST API is the
//! implementation (DagsHub's MLflow endpoint speaks it too).
//!
//! Configuration comes only from the environment, as MLflow's own clients read it:
//! `MLFLOW_TRACKING_URI` (tracking is off without it), `MLFLOW_EXPERIMENT_NAME` (default
//! `netsec-<dataset>`), and `MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD` (basic
//! auth) or `MLFLOW_TRACKING_TOKEN` (bearer). No credential is ever written to a file.
//!
//! A model's run is identified by the sha256 of its bundle (tag `netsec.model_sha256`): train
//! opens it, evaluate finds it again and adds the test metrics.

mod mlflow;

use std::path::PathBuf;

use crate::error::Result;

pub use self::mlflow::MlflowTracker;

/// What one stage reports about one model.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub dataset: String,
    /// sha256 of the model bundle: the run's identity.
    pub model_sha256: String,
    /// Shown as the run name when the stage opens the run.
    pub run_name: String,
    pub params: Vec<(String, String)>,
    pub metrics: Vec<(String, f64)>,
    /// (path inside the run's artifacts, local file)
    pub artifacts: Vec<(String, PathBuf)>,
}

/// A tracking backend.
pub trait Tracker {
    /// Record `report` on the model's run (created if it does not exist yet). Returns the
    /// run's id.
    fn report(&self, report: &Report) -> Result<String>;
}

/// The tracker the environment configures, if any.
pub fn from_env() -> Option<Box<dyn Tracker>> {
    MlflowTracker::from_env().map(|t| Box::new(t) as Box<dyn Tracker>)
}

/// Report to the configured tracker; a no-op without one. The report is only built (which
/// hashes the whole bundle) when a tracker is configured.
pub fn report(build: impl FnOnce() -> Result<Report>) -> Result<()> {
    if let Some(tracker) = from_env() {
        let report = build()?;
        let run = tracker.report(&report)?;
        tracing::info!(run = %run, metrics = report.metrics.len(), artifacts = report.artifacts.len(), "logged to the tracking server");
    }
    Ok(())
}
