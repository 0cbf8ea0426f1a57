//! `POST /v1/predict/csv`: a CSV upload (a body or a form's `file`) in, the verdicts out in
//! the format the `Accept` header asks for (see `output`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ndarray::Array2;

use super::error::{body_error, too_many, ApiError, ApiResult};
use super::score::{score, work};
use super::AppState;
use crate::data::limits::Limited;
use crate::data::{RecordError, Records};
use crate::output::{self, Format, Verdicts};
use crate::preprocess::Raw;

/// The uploaded CSV: multipart (field `file`, as the upload page sends) or a `text/csv` body.
async fn csv_body(state: &Arc<AppState>, req: Request) -> ApiResult<Bytes> {
    let limit = state.config.max_body_bytes;
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if ct.starts_with("multipart/form-data") {
        let mut form =
            Multipart::from_request(req, state).await.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        let upload_error = |e: axum::extract::multipart::MultipartError| {
            let (status, text) = (e.status(), e.body_text());
            if super::listen::timed_out(&text) {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, text)
            } else if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, format!("upload is larger than {limit} bytes")).with("limit", limit)
            } else {
                ApiError::new(status, text)
            }
        };
        while let Some(field) = form.next_field().await.map_err(upload_error)? {
            if matches!(field.name(), Some("file") | Some("urls")) {
                return field.bytes().await.map_err(upload_error);
            }
        }
        Err(ApiError::new(StatusCode::BAD_REQUEST, "the form has no `file` (or `urls`) field").with("field", "file"))
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

pub async fn predict(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let format = output::for_accept(&accept);
    let html = format.media_type().starts_with("text/html");
    match verdicts(&state, req, format, html).await {
        Ok(r) => r,
        Err(e) if html => {
            let status = e.0;
            (status, axum::response::Html(super::page::error_page(e.1["error"].as_str().unwrap_or("error"))))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn verdicts(
    state: &Arc<AppState>,
    req: Request,
    format: &'static dyn for<'a> Format<Verdicts<'a>>,
    keep_fields: bool,
) -> ApiResult<Response> {
    let rid = super::request_id(state, req.headers());
    let body = csv_body(state, req).await?;
    let job_state = state.clone();
    work(state, body.len(), move || verdicts_now(&job_state, &rid, body, format, keep_fields)).await
}

/// Parse, encode and score an upload (on whichever thread [`work`] chose).
fn verdicts_now(
    state: &AppState,
    rid: &str,
    body: Bytes,
    format: &'static dyn for<'a> Format<Verdicts<'a>>,
    keep_fields: bool,
) -> ApiResult<Response> {
    let body = gunzip(body, state.config.max_body_bytes)?;
    let head = &body[..body.len().min(4096)];
    if let Some(at) = head.iter().position(|&b| b == 0) {
        let line = head[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("row {line}: binary data (a NUL byte): not a CSV file or a Zeek log"),
        )
        .with("row", line));
    }
    if crate::data::zeek::sniff(head) {
        return zeek_verdicts(state, rid, &body, format, keep_fields);
    }
    if super::urls::url_column(&state.model.load().bundle.preprocessor).is_some() {
        return url_verdicts(state, rid, &body, format);
    }
    let model = state.model.load_full();
    let pre = &model.bundle.preprocessor;
    // The one record reader, laid out as the model's dataset (delimiter, header or names).
    let text = Limited::new(body.as_ref(), crate::data::limits::get(), false, "--max-line-bytes of serve");
    let mut records = Records::new(text, &model.bundle.input).map_err(refused)?;
    let header = records.columns().to_vec();
    let mut index = Vec::with_capacity(pre.inputs().len());
    for input in pre.inputs() {
        let name = input.name.as_str();
        let at = header.iter().position(|h| h == name).ok_or_else(|| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("missing column `{name}`")).with("column", name)
        })?;
        index.push(at);
    }
    let width = pre.width();
    // One record buffer for the whole upload. Kept per row: its line, where it starts in the
    // body (formats echo the uploaded bytes), and its cells only for formats that show them.
    let mut record = csv::ByteRecord::new();
    let (mut lines, mut starts, mut fields) = (Vec::new(), Vec::new(), Vec::new());
    let mut values: Vec<f64> = Vec::new();
    let mut unseen = Vec::new();
    let mut out_of_domain = 0u64;
    let monitor = model.monitor.as_ref();
    let mut codes: Vec<u16> = Vec::new();
    while records.next_record(&mut record).map_err(refused)? {
        let (line, start) = record.position().map(|p| (p.line(), p.byte() as usize)).unwrap_or((0, 0));
        if lines.len() == state.config.max_rows {
            return Err(too_many(lines.len() + 1, state.config.max_rows, "rows or more"));
        }
        let cells = records.fields(&record).map_err(refused)?;
        let field = |i: usize| cells.get(i);
        let at = values.len();
        values.resize(at + width, 0.0);
        if let Some(m) = monitor {
            m.begin(&mut codes);
        }
        let raw = |k: usize, _: &crate::preprocess::Input| {
            let v = Raw::Text(field(index[k]));
            if let Some(m) = monitor {
                m.observe(&mut codes, k, &v);
            }
            Ok(v)
        };
        pre.encode_row(raw, &mut values[at..], &mut unseen).map_err(|(k, m)| {
            let name = pre.inputs()[k].name.as_str();
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("row {line}, column `{name}`: {m}"))
                .with("row", line)
                .with("column", name)
        })?;
        let (outside, first) = pre.domain_report(&values[at..]);
        out_of_domain += outside;
        if let Some((name, why)) = first.filter(|_| state.config.strict) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("row {line}, column `{name}`: {why} (--strict)"),
            )
            .with("row", line)
            .with("column", name));
        }
        lines.push(line);
        starts.push(start);
        if keep_fields {
            fields.push((0..record.len()).map(|i| field(i).to_owned()).collect::<Vec<_>>());
        }
    }
    if lines.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the CSV has no data rows"));
    }
    state.metrics.unseen(unseen.len() as u64);
    state.metrics.out_of_domain(out_of_domain);
    let x = Array2::from_shape_vec((lines.len(), width), values).expect("one value per feature per row");
    let (threshold, version) = (model.bundle.threshold, model.version.clone());
    let scores = score(&model, x.view(), &mut codes);
    let reasons = html_reasons(&model, x.view(), format);
    let ends = starts.iter().skip(1).copied().chain([body.len()]);
    let raw: Vec<&[u8]> = starts.iter().zip(ends).map(|(&s, e)| &body[s..e]).collect();
    let verdicts = Verdicts {
        columns: &header,
        lines: &lines,
        raw: &raw,
        fields: &fields,
        scores: &scores,
        threshold,
        model_version: &version,
        reasons: &reasons,
    };
    Ok(answer(state, rid, format, &verdicts))
}

/// The answer to an upload: the verdicts in the chosen format, with the model version (and
/// each row in the audit log, when there is one).
fn answer(
    state: &AppState,
    rid: &str,
    format: &'static dyn for<'a> Format<Verdicts<'a>>,
    verdicts: &Verdicts<'_>,
) -> Response {
    if let Some(audit) = &state.audit {
        audit_rows(audit, rid, verdicts);
    }
    let mut bytes = Vec::new();
    format.write(verdicts, &mut bytes);
    let mut resp = (
        [
            (header::CONTENT_TYPE, format.media_type()),
            (header::HeaderName::from_static("x-model-version"), verdicts.model_version),
        ],
        bytes,
    )
        .into_response();
    if let Ok(v) = header::HeaderValue::from_str(rid) {
        if !rid.is_empty() {
            resp.headers_mut().insert(header::HeaderName::from_static("x-request-id"), v);
        }
    }
    resp
}

fn audit_rows(audit: &super::audit::Audit, rid: &str, v: &Verdicts<'_>) {
    use super::audit::{Batch, Records, Row};
    let rows = (0..v.scores.len())
        .map(|r| Row {
            line: v.lines[r],
            bytes: v.raw[r].to_vec(),
            score: v.scores[r],
            reasons: v.reasons.get(r).cloned(),
        })
        .collect();
    let records = Records::Rows { model_version: v.model_version.into(), threshold: v.threshold, rows };
    audit.log(Batch { time: std::time::SystemTime::now(), request_id: rid.to_owned(), records });
}

/// Rows of cells as CSV text, and where each row ends in it (for the formats that echo rows).
fn csv_rows<'r, I, R>(rows: I) -> ApiResult<(Vec<u8>, Vec<usize>)>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = &'r str>,
{
    let internal = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e);
    let mut text = ::csv::Writer::from_writer(Vec::new());
    let mut ends = Vec::new();
    for row in rows {
        text.write_record(row).map_err(|e| internal(e.to_string()))?;
        text.flush().map_err(|e| internal(e.to_string()))?;
        ends.push(text.get_ref().len());
    }
    Ok((text.into_inner().map_err(|e| internal(e.to_string()))?, ends))
}

/// Each row's bytes in `text`, from the row ends.
fn row_slices<'t>(text: &'t [u8], ends: &[usize]) -> Vec<&'t [u8]> {
    let starts = std::iter::once(0).chain(ends.iter().copied());
    starts.zip(ends).map(|(s, &e)| &text[s..e]).collect()
}

/// A gzip upload, decompressed up to 3 times the body limit (a larger one is refused, 413):
/// with the body itself, a request holds at most 4 times the limit.
fn gunzip(body: Bytes, limit: usize) -> ApiResult<Bytes> {
    use std::io::Read;
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Ok(body);
    }
    let cap = limit.saturating_mul(3);
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body.as_ref())
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not a valid gzip file: {e}")))?;
    if out.len() > cap {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload decompresses to more than {cap} bytes"),
        )
        .with("limit", cap));
    }
    Ok(Bytes::from(out))
}

/// URLs, one per line (a plain-text body, a one-column file, or the page's text box) for a
/// URL model: one verdict per URL.
fn url_verdicts(
    state: &AppState,
    rid: &str,
    body: &[u8],
    format: &'static dyn for<'a> Format<Verdicts<'a>>,
) -> ApiResult<Response> {
    let model = state.model.load_full();
    let column = super::urls::url_column(&model.bundle.preprocessor).unwrap_or("url").to_owned();
    let text = String::from_utf8_lossy(body);
    let mut batch = super::urls::UrlBatch::new(&model);
    for (i, line) in text.split('\n').enumerate() {
        let at = i as u64 + 1;
        if let Some(url) = super::urls::url_of(line, &column, at) {
            if batch.len() == state.config.max_rows {
                return Err(too_many(batch.len() + 1, state.config.max_rows, "URLs or more"));
            }
            batch.push(url, at);
        }
    }
    if batch.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "no URLs: send one per line"));
    }
    state.metrics.unseen(batch.block.unseen_cells);
    let (x, urls, lines) = batch.take();
    let mut codes = batch.block.take_codes();
    drop(batch);
    let (threshold, version) = (model.bundle.threshold, model.version.clone());
    let scores = score(&model, x.view(), &mut codes);
    let reasons = html_reasons(&model, x.view(), format);
    let (text, ends) = csv_rows(urls.iter().map(|u| [u.as_str()]))?;
    let raw = row_slices(&text, &ends);
    let fields: Vec<Vec<String>> = urls.into_iter().map(|u| vec![u]).collect();
    let header = vec![column];
    let verdicts = Verdicts {
        columns: &header,
        lines: &lines,
        raw: &raw,
        fields: &fields,
        scores: &scores,
        threshold,
        model_version: &version,
        reasons: &reasons,
    };
    Ok(answer(state, rid, format, &verdicts))
}

/// A Zeek log upload: one verdict per connection, by its identity fields.
fn zeek_verdicts(
    state: &AppState,
    rid: &str,
    body: &[u8],
    format: &'static dyn for<'a> Format<Verdicts<'a>>,
    keep_fields: bool,
) -> ApiResult<Response> {
    let model = state.model.load_full();
    let mut parser = crate::data::zeek::ZeekParser::new();
    let mut batch = super::zeek::ZeekBatch::new(&model);
    let max_line = crate::data::limits::get().max_line_bytes;
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let at = i as u64 + 1;
        if line.len() > max_line {
            return Err(refused(RecordError::at(at, None, format!("longer than {max_line} bytes (--max-line-bytes)"))));
        }
        if parser.line(line, at).map_err(refused)? {
            if batch.len() == state.config.max_rows {
                return Err(too_many(batch.len() + 1, state.config.max_rows, "connections or more"));
            }
            batch.push(&parser, at).map_err(refused)?;
        }
    }
    if batch.is_empty() {
        let what = if parser.started() { "the log has a header but no records" } else { "the upload is empty" };
        return Err(ApiError::new(StatusCode::BAD_REQUEST, what));
    }
    state.metrics.unseen(batch.block.unseen_cells);
    let header = batch.id_columns();
    let (x, kept, lines) = batch.take();
    let mut codes = batch.block.take_codes();
    drop(batch);
    let (threshold, version) = (model.bundle.threshold, model.version.clone());
    let scores = score(&model, x.view(), &mut codes);
    let reasons = html_reasons(&model, x.view(), format);
    // Each row as CSV text, for the formats that echo rows.
    let (text, ends) = csv_rows((0..kept.len()).map(|r| kept.row(r)))?;
    let raw = row_slices(&text, &ends);
    // Kept for every format but CSV, which echoes `raw` (JSON names each connection's uid).
    let fields = if keep_fields || !format.media_type().starts_with("text/csv") { kept.to_rows() } else { Vec::new() };
    let verdicts = Verdicts {
        columns: &header,
        lines: &lines,
        raw: &raw,
        fields: &fields,
        scores: &scores,
        threshold,
        model_version: &version,
        reasons: &reasons,
    };
    Ok(answer(state, rid, format, &verdicts))
}

/// Rows explained in an HTML answer, at most (TreeSHAP of a large ensemble costs about a
/// millisecond a row).
const HTML_REASONS: usize = 1000;

/// For an HTML answer, each row's top three reasons ("b +0.831, a -0.412, c +0.020"), for
/// the first [`HTML_REASONS`] rows; none for other formats or a model that cannot explain.
fn html_reasons(
    model: &super::Loaded,
    x: ndarray::ArrayView2<'_, f64>,
    format: &'static dyn for<'a> Format<Verdicts<'a>>,
) -> Vec<String> {
    if !format.media_type().starts_with("text/html") {
        return Vec::new();
    }
    let pre = &model.bundle.preprocessor;
    x.rows()
        .into_iter()
        .take(HTML_REASONS)
        .map_while(|row| {
            let e = model.bundle.model.explain(&row.to_vec()).ok()?;
            let top = pre.contributions_by_input(&e.contributions, 3);
            Some(top.iter().map(|(n, v)| format!("{n} {v:+.3}")).collect::<Vec<_>>().join(", "))
        })
        .collect()
}

/// A record error of an upload: 400, naming the row and the column.
fn refused(e: RecordError) -> ApiError {
    let mut err = ApiError::new(StatusCode::BAD_REQUEST, e.to_string());
    if let Some(line) = e.line {
        err = err.with("row", line);
    }
    if let Some(c) = e.column {
        err = err.with("column", c);
    }
    err
}
