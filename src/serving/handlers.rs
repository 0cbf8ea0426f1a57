//! HTTP handlers. Every error is JSON naming the record, field, row or column at fault, with
//! a 4xx status when the request is to blame.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ndarray::Array2;
use serde_json::{json, Map, Value};

use super::{AppState, Loaded};
use crate::preprocess::{FeatureStep, Raw};

pub struct ApiError(StatusCode, Value);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError(status, json!({ "error": message.into() }))
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.1[key] = value.into();
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Count every request and its latency.
pub async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = match req.uri().path() {
        p @ ("/v1/predict" | "/v1/predict/csv" | "/" | "/admin/reload" | "/healthz") => p.to_owned(),
        _ => "other".to_owned(),
    };
    let started = Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe(&route, resp.status().as_u16(), started.elapsed());
    resp
}

fn label(score: f64, threshold: f64) -> &'static str {
    if score >= threshold {
        "threat"
    } else {
        "benign"
    }
}

/// Score `x`, off the async workers when the request is large, within the time limit.
async fn score(state: &AppState, model: Arc<Loaded>, x: Array2<f64>) -> ApiResult<Vec<f64>> {
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
    let threats = scores.iter().filter(|&&s| s >= threshold).count() as u64;
    state.metrics.predictions(threats, scores.len() as u64 - threats);
    Ok(scores)
}

fn too_many(n: usize, limit: usize, what: &str) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("{n} {what} in one request; the limit is {limit}"))
        .with("limit", limit)
}

fn body_error(e: axum::extract::rejection::BytesRejection, limit: usize) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, format!("request body is larger than {limit} bytes")).with("limit", limit)
    } else {
        ApiError::new(status, e.body_text())
    }
}

pub async fn predict_json(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<Value>> {
    let limit = state.config.max_body_bytes;
    let body = body.map_err(|e| body_error(e, limit))?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.is_empty() && !ct.starts_with("application/json") {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("expected application/json, got {ct}")));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}"))
            .with("line", e.line())
            .with("column", e.column())
    })?;
    let records: Vec<Value> = match value {
        Value::Object(mut o) if o.contains_key("records") => match o.remove("records") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "`records` must be an array of objects")
                    .with("field", "records"))
            }
        },
        Value::Object(o) => vec![Value::Object(o)],
        Value::Array(a) => a,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "expected a record (object), an array of records, or {\"records\": [...]}",
            ))
        }
    };
    if records.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "no records"));
    }
    if records.len() > state.config.max_rows {
        return Err(too_many(records.len(), state.config.max_rows, "records"));
    }
    let model = state.model.load_full();
    let pre = &model.bundle.preprocessor;
    let mut x = Array2::<f64>::zeros((records.len(), pre.width()));
    let mut unseen: Vec<Vec<usize>> = vec![Vec::new(); records.len()];
    for (i, rec) in records.iter().enumerate() {
        let Value::Object(rec) = rec else {
            return Err(
                ApiError::new(StatusCode::BAD_REQUEST, format!("record {i}: expected an object")).with("record", i)
            );
        };
        let row = x.row_mut(i).into_slice().expect("standard layout");
        pre.encode_row(|_, step| feature(rec, step), row, &mut unseen[i]).map_err(|(k, m)| {
            let name = pre.features[k].name();
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("record {i}, feature `{name}`: {m}"))
                .with("record", i)
                .with("field", name)
        })?;
    }
    state.metrics.unseen(unseen.iter().map(|u| u.len() as u64).sum());
    let threshold = model.bundle.threshold;
    let version = model.version.clone();
    let scores = score(&state, model.clone(), x).await?;
    let predictions: Vec<Value> = scores
        .iter()
        .zip(&records)
        .zip(&unseen)
        .map(|((&s, rec), unseen)| {
            let mut p = json!({ "label": label(s, threshold), "score": s, "model_version": version });
            if let Some(id) = rec.get("id") {
                p["id"] = id.clone();
            }
            if !unseen.is_empty() {
                let names: Vec<&str> = unseen.iter().map(|&k| pre.features[k].name()).collect();
                p["unseen_categories"] = json!(names);
            }
            p
        })
        .collect();
    Ok(Json(json!({ "model_version": version, "threshold": threshold, "predictions": predictions })))
}

/// The raw value of one input column of a JSON record. Numeric features take numbers only;
/// categorical ones take a string (or a number, matched by its text).
fn feature<'a>(rec: &'a Map<String, Value>, step: &FeatureStep) -> Result<Raw<'a>, String> {
    let expected = if step.is_categorical() { "a category (string)" } else { "a number" };
    match rec.get(step.name()) {
        None => Err("missing".into()),
        Some(Value::Null) => Err(format!("is null; {expected} is expected")),
        Some(Value::Number(n)) => n.as_f64().map(Raw::Number).ok_or_else(|| "not a finite number".into()),
        Some(Value::String(s)) if step.is_categorical() => Ok(Raw::Text(s)),
        Some(Value::String(s)) => Err(format!("expected a number, found the string {s:?}")),
        Some(other) => Err(format!("expected {expected}, found {}", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        _ => "another type",
    }
}

/// What the client wants back from a CSV upload.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Json,
    Html,
}

fn wanted(headers: &HeaderMap) -> Format {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("text/html") {
        Format::Html
    } else if accept.contains("application/json") {
        Format::Json
    } else {
        Format::Csv
    }
}

/// The uploaded CSV: multipart (field `file`, as the upload page sends) or a `text/csv` body.
async fn csv_body(state: &Arc<AppState>, req: Request) -> ApiResult<Bytes> {
    let limit = state.config.max_body_bytes;
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if ct.starts_with("multipart/form-data") {
        let mut form =
            Multipart::from_request(req, state).await.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        while let Some(field) = form.next_field().await.map_err(|e| {
            let status = e.status();
            let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("upload is larger than {limit} bytes")
            } else {
                e.body_text()
            };
            ApiError::new(status, msg)
        })? {
            if field.name() == Some("file") {
                return field.bytes().await.map_err(|e| {
                    let status = e.status();
                    let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
                        format!("upload is larger than {limit} bytes")
                    } else {
                        e.body_text()
                    };
                    ApiError::new(status, msg).with("limit", limit)
                });
            }
        }
        Err(ApiError::new(StatusCode::BAD_REQUEST, "the form has no `file` field").with("field", "file"))
    } else if ct.is_empty()
        || ct.starts_with("text/csv")
        || ct.starts_with("text/plain")
        || ct.starts_with("application/octet-stream")
    {
        Bytes::from_request(req, state).await.map_err(|e| body_error(e, limit))
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected multipart/form-data or text/csv, got {ct}"),
        ))
    }
}

pub async fn predict_csv(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let format = wanted(req.headers());
    match predict_csv_inner(&state, req, format).await {
        Ok(r) => r,
        Err(e) if format == Format::Html => {
            let status = e.0;
            (status, axum::response::Html(super::page::error_page(e.1["error"].as_str().unwrap_or("error"))))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn predict_csv_inner(state: &Arc<AppState>, req: Request, format: Format) -> ApiResult<Response> {
    let body = csv_body(state, req).await?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body.as_ref());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("cannot read the CSV header: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    let model = state.model.load_full();
    let pre = &model.bundle.preprocessor;
    let mut index = Vec::with_capacity(pre.features.len());
    for step in &pre.features {
        let name = step.name();
        let at = header.iter().position(|h| h == name).ok_or_else(|| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("missing column `{name}`")).with("column", name)
        })?;
        index.push(at);
    }
    let width = pre.width();
    // One record buffer for the whole upload. Kept per row: the line (JSON), where it starts
    // in the body (CSV echoes the uploaded bytes), and the fields only for the HTML table.
    let mut record = csv::StringRecord::new();
    let (mut lines, mut starts, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    let mut values: Vec<f64> = Vec::new();
    let mut unseen = Vec::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("row {line}: {e}")).with("row", line));
            }
        }
        let (line, start) = record.position().map(|p| (p.line(), p.byte() as usize)).unwrap_or((0, 0));
        if lines.len() == state.config.max_rows {
            return Err(too_many(lines.len() + 1, state.config.max_rows, "rows or more"));
        }
        let at = values.len();
        values.resize(at + width, 0.0);
        pre.encode_row(|k, _| Ok(Raw::Text(record.get(index[k]).unwrap_or(""))), &mut values[at..], &mut unseen)
            .map_err(|(k, m)| {
                let name = pre.features[k].name();
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("row {line}, column `{name}`: {m}"))
                    .with("row", line)
                    .with("column", name)
            })?;
        lines.push(line);
        starts.push(start);
        if format == Format::Html {
            kept.push(record.clone());
        }
    }
    if lines.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the CSV has no data rows"));
    }
    state.metrics.unseen(unseen.len() as u64);
    let x = Array2::from_shape_vec((lines.len(), width), values).expect("one value per feature per row");
    let (threshold, version) = (model.bundle.threshold, model.version.clone());
    let scores = score(state, model, x).await?;
    Ok(match format {
        Format::Json => {
            let predictions: Vec<Value> = scores
                .iter()
                .enumerate()
                .map(|(i, &s)| json!({ "row": lines[i], "score": s, "label": label(s, threshold) }))
                .collect();
            Json(json!({ "model_version": version, "threshold": threshold, "rows": lines.len(), "predictions": predictions })).into_response()
        }
        Format::Csv => {
            // Each uploaded row as it came (its bytes up to the next row, line end trimmed),
            // then the score and the label: nothing is re-quoted or allocated per row.
            let mut w = csv::Writer::from_writer(Vec::with_capacity(body.len() + lines.len() * 24));
            let _ = w.write_record(header.iter().map(String::as_str).chain(["threat_score", "prediction"]));
            let mut bytes = w.into_inner().unwrap_or_default();
            let ends = starts.iter().skip(1).copied().chain([body.len()]);
            for ((&start, end), &s) in starts.iter().zip(ends).zip(&scores) {
                let raw = &body[start..end];
                let len = raw.iter().rposition(|&b| b != b'\n' && b != b'\r').map_or(0, |i| i + 1);
                bytes.extend_from_slice(&raw[..len]);
                let _ = writeln!(bytes, ",{s:.6},{}", label(s, threshold));
            }
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (header::HeaderName::from_static("x-model-version"), version.as_str()),
                ],
                bytes,
            )
                .into_response()
        }
        Format::Html => axum::response::Html(super::page::result_table(&header, &kept, &scores, threshold, &version))
            .into_response(),
    })
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = state.model.load();
    Json(
        json!({ "ready": true, "model_version": m.version, "family": m.bundle.model.family(), "dataset": m.bundle.dataset }),
    )
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = state.model.load();
    let text = state.metrics.render(&m.version, m.bundle.model.family());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
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
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reload failed, still serving {before}: {e}")))
        }
        Err(e) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reload failed, still serving {before}: {e}")))
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see GET / and POST /v1/predict, /v1/predict/csv)")
}
