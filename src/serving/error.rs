//! Errors of the HTTP API: JSON naming the record, field, row or column at fault, with a 4xx
//! status when the request is to blame.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub struct ApiError(pub StatusCode, pub Value);

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError(status, json!({ "error": message.into() }))
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.1[key] = value.into();
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn too_many(n: usize, limit: usize, what: &str) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("{n} {what} in one request; the limit is {limit}"))
        .with("limit", limit)
}

pub fn body_error(e: axum::extract::rejection::BytesRejection, limit: usize) -> ApiError {
    let status = e.status();
    if super::listen::timed_out(&e.body_text()) {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, e.body_text())
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, format!("request body is larger than {limit} bytes")).with("limit", limit)
    } else {
        ApiError::new(status, e.body_text())
    }
}
