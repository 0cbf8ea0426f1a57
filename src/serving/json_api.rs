//! `POST /v1/predict`: JSON records in, a verdict per record out.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use ndarray::ArrayView2;
use serde_json::{json, Map, Value};

use super::error::{body_error, ApiError, ApiResult};
use super::json_body::{self, Field, Record};
use super::score::{score, work};
use super::AppState;
use crate::output::label;
use crate::preprocess::{Input, Raw};

pub async fn predict(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<Value>> {
    crate::fault::panic_point("serve:predict");
    let limit = state.config.max_body_bytes;
    let body = body.map_err(|e| body_error(e, limit))?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.is_empty() && !ct.starts_with("application/json") {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("expected application/json, got {ct}")));
    }
    // `?features=true`: each verdict also gives the feature vector the model read (derived
    // features included), to check what a raw record became.
    let with_features = query.as_deref().unwrap_or("").split('&').any(|kv| kv == "features=true" || kv == "features=1");
    // `?explain=k`: each verdict also gives its k largest contributions (TreeSHAP, or the
    // linear terms), by input feature, and the base value they add to.
    let explain = match query.as_deref().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("explain=")) {
        None => 0,
        Some(k) => k.parse::<usize>().ok().filter(|&k| (1..=1000).contains(&k)).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("explain={k}: expected a number of reasons from 1 to 1000"))
                .with("field", "explain")
        })?,
    };
    let job_state = state.clone();
    work(&state, body.len(), move || answer(&job_state, &body, with_features, explain)).await.map(Json)
}

/// Rows encoded at once before they are scored: a block's matrix stays small however many
/// records a body holds (a URL model's rows are a thousand-odd features wide).
const BLOCK: usize = 1024;

/// Parse, encode and score `body` block by block, as the records arrive.
fn answer(state: &AppState, body: &[u8], with_features: bool, explain: usize) -> ApiResult<Value> {
    let model = state.model.load_full();
    let pre = &model.bundle.preprocessor;
    let width = pre.width();
    // A model of raw logs takes records as Zeek's JSON writes them: unset fields left out.
    let absent_is_missing = !pre.derive.is_empty();
    let limits = json_body::Limits { max_records: state.config.max_rows, max_fields: state.config.max_columns };
    let mut block: Vec<f64> = Vec::with_capacity(width * 16);
    let mut scores: Vec<f64> = Vec::new();
    let mut ids: Vec<Option<Value>> = Vec::new();
    let mut unseen: Vec<Vec<usize>> = Vec::new();
    let mut warnings: Vec<Vec<String>> = Vec::new();
    let mut reasons: Vec<Value> = Vec::new();
    let mut features: Vec<f64> = Vec::new();
    let monitor = model.monitor.as_ref();
    let mut codes: Vec<u16> = Vec::new();
    let flush = |block: &mut Vec<f64>, scores: &mut Vec<f64>, codes: &mut Vec<u16>| {
        if !block.is_empty() {
            let x = ArrayView2::from_shape((block.len() / width, width), block.as_slice()).expect("whole rows");
            scores.extend(score(&model, x, codes));
            block.clear();
            codes.clear();
        }
    };
    json_body::read(body, limits, &mut |i, rec| {
        let at = block.len();
        block.resize(at + width, 0.0);
        let mut u = Vec::new();
        if let Some(m) = monitor {
            m.begin(&mut codes);
        }
        let raw = |k: usize, input: &Input| {
            let r = feature(&rec, input, absent_is_missing);
            if let (Some(m), Ok(v)) = (monitor, &r) {
                m.observe(&mut codes, k, v);
            }
            r
        };
        pre.encode_row(raw, &mut block[at..], &mut u).map_err(|(k, m)| {
            let name = pre.inputs()[k].name.as_str();
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("record {i}, feature `{name}`: {m}"))
                .with("record", i)
                .with("field", name)
        })?;
        let mut outside: Vec<(&str, String)> = Vec::new();
        pre.outside_domain(&block[at..], |name, why| outside.push((name, why)));
        if let Some((name, why)) = outside.first().filter(|_| state.config.strict) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("record {i}, feature `{name}`: {why} (--strict)"),
            )
            .with("record", i)
            .with("field", *name));
        }
        let domain: Vec<String> = outside.iter().map(|(name, why)| format!("{name}: {why}")).collect();
        state.metrics.out_of_domain(domain.len() as u64);
        warnings.push(domain);
        if with_features {
            features.extend_from_slice(&block[at..]);
        }
        if explain > 0 {
            let e = model.bundle.model.explain(&block[at..]).map_err(|m| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("explain: {m}")).with("field", "explain")
            })?;
            let top: Vec<Value> = pre
                .contributions_by_input(&e.contributions, explain)
                .into_iter()
                .map(|(name, v)| json!({ "feature": name, "value": v }))
                .collect();
            reasons.push(json!({ "base": e.base, "margin": e.kind, "contributions": top }));
        }
        ids.push(rec.get("id").and_then(Field::to_json));
        unseen.push(u);
        if block.len() >= BLOCK * width {
            flush(&mut block, &mut scores, &mut codes);
        }
        Ok(())
    })?;
    flush(&mut block, &mut scores, &mut codes);
    state.metrics.unseen(unseen.iter().map(|u| u.len() as u64).sum());
    let threshold = model.bundle.threshold;
    let version = model.version.as_str();
    let predictions: Vec<Value> = scores
        .iter()
        .zip(&ids)
        .zip(&unseen)
        .enumerate()
        .map(|(i, ((&s, id), unseen))| {
            let mut p = json!({ "label": label(s, threshold), "score": s, "model_version": version });
            if let Some(id) = id {
                p["id"] = id.clone();
            }
            if with_features {
                let row = &features[i * width..(i + 1) * width];
                let named: Map<String, Value> =
                    model.bundle.feature_names.iter().zip(row).map(|(n, v)| (n.clone(), json!(v))).collect();
                p["features"] = Value::Object(named);
            }
            if !unseen.is_empty() {
                let names: Vec<&str> = unseen.iter().map(|&k| pre.features[k].name()).collect();
                p["unseen_categories"] = json!(names);
            }
            if !warnings[i].is_empty() {
                p["warnings"] = json!(warnings[i]);
            }
            if let Some(r) = reasons.get(i) {
                p["explanation"] = r.clone();
            }
            p
        })
        .collect();
    Ok(json!({ "model_version": version, "threshold": threshold, "predictions": predictions }))
}

/// The raw value of one input column of a JSON record. Numeric features take numbers only;
/// categorical ones take a string (or a number, matched by its text).
fn feature<'a>(rec: &'a Record, input: &Input, absent_is_missing: bool) -> Result<Raw<'a>, String> {
    let expected = if input.is_categorical() { "a category (string)" } else { "a number" };
    match rec.get(&input.name) {
        None | Some(Field::Null) if absent_is_missing => Ok(Raw::Missing),
        None => Err("missing".into()),
        Some(Field::Null) => Err(format!("is null; {expected} is expected")),
        Some(Field::Number(n)) if n.is_finite() => Ok(Raw::Number(*n)),
        Some(Field::Number(_)) => Err("not a finite number".into()),
        Some(Field::Text(s)) if input.is_categorical() => Ok(Raw::Text(s)),
        Some(Field::Text(s)) => Err(format!("expected a number, found the string {s:?}")),
        Some(Field::Bool(_)) => Err(format!("expected {expected}, found a boolean")),
        Some(Field::Array) => Err(format!("expected {expected}, found an array")),
        Some(Field::Object) => Err(format!("expected {expected}, found an object")),
    }
}
