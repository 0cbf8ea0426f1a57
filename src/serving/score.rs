//! Scoring a request's rows: small requests on the async worker, large ones on the blocking
//! pool within the time limit. Counts threats with the threshold of the model that scored.

use std::sync::Arc;

use axum::http::StatusCode;
use ndarray::Array2;

use super::error::{ApiError, ApiResult};
use super::{AppState, Loaded};
use crate::output::is_threat;

/// Score `x`, off the async workers when the request is large, within the time limit.
pub async fn score(state: &AppState, model: Arc<Loaded>, x: Array2<f64>) -> ApiResult<Vec<f64>> {
    // The threshold of the model that scores, even if a reload swaps another one in meanwhile.
    let threshold = model.bundle.threshold;
    let scores = if x.nrows() <= 256 {
        model.score(&x)
    } else {
        let work = tokio::task::spawn_blocking(move || model.score(&x));
        match tokio::time::timeout(state.config.timeout, work).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("scoring failed: {e}"))),
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("scoring took longer than {:?}; send fewer rows", state.config.timeout),
                ))
            }
        }
    };
    let threats = scores.iter().filter(|&&s| is_threat(s, threshold)).count() as u64;
    state.metrics.predictions(threats, scores.len() as u64 - threats);
    Ok(scores)
}
