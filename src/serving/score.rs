//! Where a request's work runs: a small request on the async worker; a large one (parsing,
//! encoding and scoring all together) on the blocking pool, at most `--max-heavy` at a
//! time, within the time limit, so one large body cannot stall the small requests. Counts
//! threats with the threshold of the model that scored.

use std::sync::Arc;

use axum::http::StatusCode;
use ndarray::ArrayView2;

use super::error::{ApiError, ApiResult};
use super::{AppState, Loaded};
use crate::models::Classifier;
use crate::output::is_threat;

/// Bodies up to this size are parsed and scored on the async worker: the hop to the
/// blocking pool would cost more than the work.
pub const INLINE_BYTES: usize = 64 * 1024;

/// Run `job` for a request of `size` body bytes (see the module documentation).
pub async fn work<T: Send + 'static>(
    state: &Arc<AppState>,
    size: usize,
    job: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    if size <= INLINE_BYTES {
        return job();
    }
    let limit = state.config.timeout;
    let busy = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the server did not get to this request within {limit:?}; send fewer rows or retry"),
        )
    };
    let deadline = tokio::time::Instant::now() + limit;
    let permit = tokio::time::timeout_at(deadline, state.heavy.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    // The permit travels with the job: it is released when the work ends, even after a timeout.
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        job()
    });
    match tokio::time::timeout_at(deadline, job).await {
        Ok(Ok(out)) => out,
        Ok(Err(_)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error while scoring")),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("scoring took longer than {limit:?}; send fewer rows"),
        )),
    }
}

/// Score rows given as feature vectors, counting threats in the metrics, and adding the rows
/// to the drift window when the model is monitored (`codes`: theirs, see `monitor`).
pub fn score(model: &Loaded, x: ArrayView2<'_, f64>, codes: &mut [u16]) -> Vec<f64> {
    let scores = model.bundle.model.predict_proba(x).to_vec();
    count(model, &scores);
    model.watch(codes, &scores);
    scores
}

/// Count verdicts in the metrics with the threshold of the model that scored them.
pub fn count(model: &Loaded, scores: &[f64]) {
    let threshold = model.bundle.threshold;
    let threats = scores.iter().filter(|&&s| is_threat(s, threshold)).count() as u64;
    model.tally.add(threats, scores.len() as u64 - threats);
}
