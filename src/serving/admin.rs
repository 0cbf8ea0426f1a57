//! Health, readiness, metrics and the authenticated reload.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::AppState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = state.model.load();
    let mut ready = json!({ "ready": true, "model_version": m.version, "family": m.bundle.model.family(), "dataset": m.bundle.dataset });
    if let Some(c) = state.candidate.load_full() {
        ready["candidate"] = json!({ "model_version": c.version, "family": c.bundle.model.family(), "canary_percent": state.config.canary_percent });
    }
    Json(ready)
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = state.model.load_full();
    let c = state.candidate.load_full();
    let mut served = vec![(m.as_ref(), "production")];
    if let Some(c) = &c {
        served.push((c.as_ref(), "candidate"));
    }
    let text = state.metrics.render(&served);
    ([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], text).into_response()
}

/// `GET /v1/monitor`: the drift monitor's window as JSON (what `/metrics` exports as gauges).
pub async fn monitor(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = state.model.load();
    let mut answer = served_monitor(&m, &state.config);
    if let Some(c) = state.candidate.load_full() {
        answer["candidate"] = served_monitor(&c, &state.config);
    }
    Json(answer)
}

fn served_monitor(m: &super::Loaded, config: &super::Config) -> Value {
    match &m.monitor {
        Some(monitor) => json!({ "model_version": m.version, "monitoring": true, "drift": monitor.snapshot() }),
        None => json!({
            "model_version": m.version,
            "monitoring": false,
            "why": if config.monitor.records == 0 {
                "monitoring is off (--monitor-window 0)"
            } else {
                "the bundle has no training reference (made before drift monitoring, or trained without validate's profile)"
            },
        }),
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn reload(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let Some(token) = state.config.admin_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "reload over HTTP is disabled: start the server with NETSEC_ADMIN_TOKEN set",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "missing `Authorization: Bearer <token>` header")
                .with("field", "Authorization")
        })?;
    if !same(given.as_bytes(), token.as_bytes()) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "wrong token").with("field", "Authorization"));
    }
    let before = state.model.load().version.clone();
    let state2 = state.clone();
    let outcome = tokio::task::spawn_blocking(move || state2.reload()).await;
    match outcome {
        Ok(Ok(version)) => Ok(Json(json!({ "model_version": version, "previous": before }))),
        Ok(Err(e)) => {
            tracing::error!("reload failed, the previous model keeps serving: {e}");
            let status = if e.to_string().contains("refused:") {
                StatusCode::CONFLICT
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            Err(ApiError::new(status, format!("reload failed, still serving {before}: {}", e.without_path())))
        }
        Err(_) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reload failed, still serving {before}")))
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see GET / and POST /v1/predict, /v1/predict/csv)")
}
