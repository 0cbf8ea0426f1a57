//! `POST /v1/predict`: JSON records in, a verdict per record out.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use ndarray::Array2;
use serde_json::{json, Map, Value};

use super::error::{body_error, too_many, ApiError, ApiResult};
use super::score::score;
use super::AppState;
use crate::output::label;
use crate::preprocess::{Input, Raw};

pub async fn predict(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
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
    // `?features=true`: each verdict also gives the feature vector the model read (derived
    // features included), to check what a raw record became.
    let with_features = query.as_deref().unwrap_or("").split('&').any(|kv| kv == "features=true" || kv == "features=1");
    let model = state.model.load_full();
    let pre = &model.bundle.preprocessor;
    // A model of raw logs takes records as Zeek's JSON writes them: unset fields left out.
    let absent_is_missing = !pre.derive.is_empty();
    let mut x = Array2::<f64>::zeros((records.len(), pre.width()));
    let mut unseen: Vec<Vec<usize>> = vec![Vec::new(); records.len()];
    for (i, rec) in records.iter().enumerate() {
        let Value::Object(rec) = rec else {
            return Err(
                ApiError::new(StatusCode::BAD_REQUEST, format!("record {i}: expected an object")).with("record", i)
            );
        };
        let row = x.row_mut(i).into_slice().expect("standard layout");
        pre.encode_row(|_, input| feature(rec, input, absent_is_missing), row, &mut unseen[i]).map_err(|(k, m)| {
            let name = pre.inputs()[k].name.as_str();
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("record {i}, feature `{name}`: {m}"))
                .with("record", i)
                .with("field", name)
        })?;
    }
    state.metrics.unseen(unseen.iter().map(|u| u.len() as u64).sum());
    let threshold = model.bundle.threshold;
    let version = model.version.clone();
    let features = with_features.then(|| x.clone());
    let scores = score(&state, model.clone(), x).await?;
    let predictions: Vec<Value> = scores
        .iter()
        .zip(&records)
        .zip(&unseen)
        .enumerate()
        .map(|(i, ((&s, rec), unseen))| {
            let mut p = json!({ "label": label(s, threshold), "score": s, "model_version": version });
            if let Some(id) = rec.get("id") {
                p["id"] = id.clone();
            }
            if let Some(f) = &features {
                let named: Map<String, Value> =
                    model.bundle.feature_names.iter().zip(f.row(i)).map(|(n, v)| (n.clone(), json!(v))).collect();
                p["features"] = Value::Object(named);
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
fn feature<'a>(rec: &'a Map<String, Value>, input: &Input, absent_is_missing: bool) -> Result<Raw<'a>, String> {
    let expected = if input.is_categorical() { "a category (string)" } else { "a number" };
    match rec.get(&input.name) {
        None | Some(Value::Null) if absent_is_missing => Ok(Raw::Missing),
        None => Err("missing".into()),
        Some(Value::Null) => Err(format!("is null; {expected} is expected")),
        Some(Value::Number(n)) => n.as_f64().map(Raw::Number).ok_or_else(|| "not a finite number".into()),
        Some(Value::String(s)) if input.is_categorical() => Ok(Raw::Text(s)),
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
