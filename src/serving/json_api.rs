//! `POST /v1/predict`: JSON records in, a verdict per record out.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use ndarray::ArrayView2;
use serde_json::{json, Map, Value};

use super::audit;
use super::error::{body_error, ApiError, ApiResult};
use super::json_body::{self, Field, Record};
use super::score::{score, work};
use super::shadow::{self, Job, Owned};
use super::{AppState, Loaded};
use crate::output::label;
use crate::preprocess::{Input, Raw};

pub async fn predict(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<axum::response::Response> {
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
    let rid = super::request_id(&state, &headers);
    let job_state = state.clone();
    let id = rid.clone();
    let answer = work(&state, body.len(), move || answer(&job_state, &id, &body, with_features, explain)).await?;
    let mut resp = Json(answer).into_response();
    if !rid.is_empty() {
        if let Ok(v) = header::HeaderValue::from_str(&rid) {
            resp.headers_mut().insert(header::HeaderName::from_static("x-request-id"), v);
        }
    }
    Ok(resp)
}

/// Rows encoded at once before they are scored: a block's matrix stays small however many
/// records a body holds (a URL model's rows are a thousand-odd features wide).
const BLOCK: usize = 1024;

/// The records one model answers in a request: encoded block by block, then scored.
struct Lane<'m> {
    model: &'m Loaded,
    block: Vec<f64>,
    /// Drift codes of the block's records (when the model is monitored).
    codes: Vec<u16>,
    scores: Vec<f64>,
    /// Raw inputs of the scored records, for the shadow (production lane, with a candidate).
    raws: Vec<Owned>,
}

impl<'m> Lane<'m> {
    fn new(model: &'m Loaded) -> Self {
        Lane { model, block: Vec::new(), codes: Vec::new(), scores: Vec::new(), raws: Vec::new() }
    }

    fn flush(&mut self) {
        let width = self.model.bundle.preprocessor.width();
        if !self.block.is_empty() {
            let x =
                ArrayView2::from_shape((self.block.len() / width, width), self.block.as_slice()).expect("whole rows");
            self.scores.extend(score(self.model, x, &mut self.codes));
            self.block.clear();
            self.codes.clear();
        }
    }
}

/// One verdict, until the scores are in: its lane and place there, and what it reports.
struct Pending<'m> {
    lane: usize,
    at: usize,
    id: Option<Value>,
    unseen: Vec<&'m str>,
    warnings: Vec<String>,
    explanation: Option<Value>,
    features: Option<Map<String, Value>>,
}

/// Parse, encode and score `body` block by block, as the records arrive: each record by the
/// production model, or by the candidate when it falls in the canary share.
fn answer(state: &AppState, rid: &str, body: &[u8], with_features: bool, explain: usize) -> ApiResult<Value> {
    let model = state.model.load_full();
    let candidate = state.candidate.load_full();
    let canary = candidate.as_ref().filter(|_| state.config.canary_percent > 0.0);
    let shadow = state.shadow.as_ref().filter(|_| candidate.is_some());
    let mut lanes = vec![Lane::new(&model)];
    if let Some(c) = canary {
        lanes.push(Lane::new(c));
    }
    let limits = json_body::Limits { max_records: state.config.max_rows, max_fields: state.config.max_columns };
    let mut pending: Vec<Pending> = Vec::new();
    json_body::read(body, limits, &mut |i, rec| {
        let id = rec.get("id").and_then(Field::to_json);
        let lane = match canary {
            Some(_) if shadow::in_canary(record_key(&rec, id.as_ref(), &model), state.config.canary_percent) => 1,
            _ => 0,
        };
        let l = &mut lanes[lane];
        let m = l.model;
        let pre = &m.bundle.preprocessor;
        let width = pre.width();
        // A model of raw logs takes records as Zeek's JSON writes them: unset fields left out.
        let absent_is_missing = !pre.derive.is_empty();
        let at = l.block.len();
        l.block.resize(at + width, 0.0);
        let mut u = Vec::new();
        let monitor = m.monitor.as_ref();
        if let Some(mon) = monitor {
            mon.begin(&mut l.codes);
        }
        let keep_raws = (lane == 0 && shadow.is_some()) || state.audit.is_some();
        let raws_at = l.raws.len();
        if keep_raws {
            l.raws.resize(raws_at + pre.inputs().len(), Owned::Missing);
        }
        let (codes, raws) = (&mut l.codes, &mut l.raws);
        let raw = |k: usize, input: &Input| {
            let r = feature(&rec, input, absent_is_missing);
            if let Ok(v) = &r {
                if let Some(mon) = monitor {
                    mon.observe(codes, k, v);
                }
                if keep_raws {
                    raws[raws_at + k] = Owned::of(v);
                }
            }
            r
        };
        pre.encode_row(raw, &mut l.block[at..], &mut u).map_err(|(k, m)| {
            let name = pre.inputs()[k].name.as_str();
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("record {i}, feature `{name}`: {m}"))
                .with("record", i)
                .with("field", name)
        })?;
        let row = &l.block[at..];
        let mut outside: Vec<(&str, String)> = Vec::new();
        pre.outside_domain(row, |name, why| outside.push((name, why)));
        if let Some((name, why)) = outside.first().filter(|_| state.config.strict) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("record {i}, feature `{name}`: {why} (--strict)"),
            )
            .with("record", i)
            .with("field", *name));
        }
        let warnings: Vec<String> = outside.iter().map(|(name, why)| format!("{name}: {why}")).collect();
        state.metrics.out_of_domain(warnings.len() as u64);
        state.metrics.unseen(u.len() as u64);
        let features =
            with_features.then(|| m.bundle.feature_names.iter().zip(row).map(|(n, v)| (n.clone(), json!(v))).collect());
        let explanation = if explain > 0 {
            let e = m.bundle.model.explain(row).map_err(|m| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("explain: {m}")).with("field", "explain")
            })?;
            let top: Vec<Value> = pre
                .contributions_by_input(&e.contributions, explain)
                .into_iter()
                .map(|(name, v)| json!({ "feature": name, "value": v }))
                .collect();
            Some(json!({ "base": e.base, "margin": e.kind, "contributions": top }))
        } else {
            None
        };
        let unseen = u.iter().map(|&k| pre.features[k].name()).collect();
        pending.push(Pending { lane, at: at / width, id, unseen, warnings, explanation, features });
        if l.block.len() >= BLOCK * width {
            l.flush();
        }
        Ok(())
    })?;
    for l in &mut lanes {
        l.flush();
    }
    if let Some(shadow) = shadow {
        let l = &mut lanes[0];
        if !l.scores.is_empty() {
            let raws = if state.audit.is_some() { l.raws.clone() } else { std::mem::take(&mut l.raws) };
            shadow.send(Job { primary: model.clone(), raws, scores: l.scores.clone() });
        }
    }
    // The audit log takes the records' ids and reasons (copies: the answer needs them too)
    // and the raw inputs (moved).
    let audit = state.audit.as_ref().map(|_| {
        pending
            .iter()
            .map(|r| audit::JsonRecord {
                lane: r.lane,
                at: r.at,
                id: r.id.clone(),
                score: lanes[r.lane].scores[r.at],
                reasons: r.explanation.clone(),
            })
            .collect::<Vec<_>>()
    });
    let predictions: Vec<Value> = pending
        .into_iter()
        .map(|r| {
            let m = lanes[r.lane].model;
            let s = lanes[r.lane].scores[r.at];
            let mut p = json!({ "label": label(s, m.bundle.threshold), "score": s, "model_version": m.version });
            if let Some(id) = r.id {
                p["id"] = id;
            }
            if let Some(f) = r.features {
                p["features"] = Value::Object(f);
            }
            if !r.unseen.is_empty() {
                p["unseen_categories"] = json!(r.unseen);
            }
            if !r.warnings.is_empty() {
                p["warnings"] = json!(r.warnings);
            }
            if let Some(e) = r.explanation {
                p["explanation"] = e;
            }
            p
        })
        .collect();
    if let (Some(log), Some(records)) = (&state.audit, audit) {
        let mut models = vec![model.clone()];
        models.extend(canary.cloned());
        let raws = lanes.iter_mut().map(|l| std::mem::take(&mut l.raws)).collect();
        let records = audit::Records::Json { models, raws, records };
        log.log(audit::Batch { time: std::time::SystemTime::now(), request_id: rid.to_owned(), records });
    }
    Ok(json!({ "model_version": model.version, "threshold": model.bundle.threshold, "predictions": predictions }))
}

/// What decides a record's canary lane: its `id`, or its raw inputs when it has none.
fn record_key(rec: &Record, id: Option<&Value>, model: &Loaded) -> u64 {
    let h = shadow::Fnv::default();
    match id {
        Some(Value::String(s)) => h.bytes(s.as_bytes()).finish(),
        Some(v) => h.bytes(v.to_string().as_bytes()).finish(),
        None => {
            let pre = &model.bundle.preprocessor;
            pre.inputs().iter().fold(h, |h, input| h.raw(&feature(rec, input, true).unwrap_or(Raw::Missing))).finish()
        }
    }
}

/// The raw value of one input column of a JSON record. Numeric features take numbers only;
/// categorical ones take a string (or a number, matched by its text).
pub(crate) fn feature<'a>(rec: &'a Record, input: &Input, absent_is_missing: bool) -> Result<Raw<'a>, String> {
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
