//! The inference service: one model in memory, swapped atomically on reload, scoring JSON
//! records and CSV uploads, with health, readiness and Prometheus endpoints.

mod admin;
pub mod audit;
pub mod batch;
pub mod block;
mod csv_api;
mod error;
pub mod follow;
mod json_api;
pub mod json_body;
pub mod listen;
pub mod metrics;
pub mod monitor;
mod page;
pub mod queue;
pub mod routes;
mod score;
pub mod shadow;
pub mod sink;
pub mod stream;
pub mod urls;
pub mod zeek;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use ndarray::Array2;

use crate::bundle::Bundle;
use crate::error::Result;
use crate::models::Classifier;

/// Limits and wiring of the server.
#[derive(Debug, Clone)]
pub struct Config {
    pub model: PathBuf,
    pub addr: SocketAddr,
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// Most records (JSON) or rows (CSV) in one request.
    pub max_rows: usize,
    /// Time allowed to score one request.
    pub timeout: Duration,
    /// After SIGINT/SIGTERM, how long in-flight requests may still take.
    pub shutdown_grace: Duration,
    /// Open connections at most (the idlest is closed to admit a new one).
    pub max_connections: usize,
    /// Time limits on reading a request's head and body, and on a silent connection.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    /// Large requests parsed and scored at once, on the blocking pool (others wait).
    pub max_heavy: usize,
    /// Columns of a CSV upload, fields of a JSON record, at most.
    pub max_columns: usize,
    /// Whether a reload may swap in a model of another dataset or other inputs.
    pub allow_schema_change: bool,
    /// Refuse (422) a record with a value outside its column's schema domain, instead of
    /// scoring it with a warning.
    pub strict: bool,
    /// Bearer token for `POST /admin/reload`; reload over HTTP is off without one.
    pub admin_token: Option<String>,
    /// The drift monitor's window (records 0: off).
    pub monitor: monitor::WindowConfig,
    /// A candidate bundle scored in shadow (and answering the canary share).
    pub shadow: Option<PathBuf>,
    /// Percent of records (by a hash of their id) answered by the candidate.
    pub canary_percent: f64,
    /// The audit log, if one is kept.
    pub audit: Option<audit::AuditConfig>,
}

/// A loaded model and its identity.
pub struct Loaded {
    pub bundle: Bundle,
    /// First 12 hex digits of the bundle's sha256.
    pub version: String,
    /// Its drift monitor, when the server watches drift and the bundle has a reference.
    pub monitor: Option<monitor::Monitor>,
    /// Its verdict counters (labelled by its version in the server's metrics).
    pub tally: metrics::Tally,
    /// The names of its raw inputs (for the audit log).
    pub input_names: Arc<[String]>,
}

impl Loaded {
    pub fn from_path(path: &std::path::Path) -> Result<Self> {
        let (bundle, sha) = Bundle::load_identified(path)?;
        let version = sha[..12].to_owned();
        let input_names = bundle.preprocessor.inputs().iter().map(|i| i.name.clone()).collect::<Vec<_>>().into();
        Ok(Loaded { bundle, version, monitor: None, tally: Default::default(), input_names })
    }

    /// Load a bundle to serve: with its drift monitor and its counters in `metrics`.
    pub fn to_serve(path: &std::path::Path, config: &Config, metrics: &metrics::Metrics) -> Result<Self> {
        let mut loaded = Loaded::from_path(path)?;
        loaded.monitor = loaded
            .bundle
            .reference
            .as_ref()
            .and_then(|r| monitor::Monitor::new(r, loaded.bundle.preprocessor.inputs(), config.monitor));
        loaded.tally = metrics.tally(&loaded.version);
        Ok(loaded)
    }

    /// Add scored records to the drift window, when this model is monitored (`codes`: theirs,
    /// see `monitor`).
    pub fn watch(&self, codes: &mut [u16], scores: &[f64]) {
        if let Some(m) = &self.monitor {
            m.record(codes, scores);
        }
    }

    /// Threat scores of rows given as feature vectors in `bundle.feature_names` order.
    pub fn score(&self, x: &Array2<f64>) -> Vec<f64> {
        self.bundle.model.predict_proba(x.view()).to_vec()
    }
}

pub struct AppState {
    pub model: ArcSwap<Loaded>,
    /// The candidate (`--shadow`), reloaded with the model.
    pub candidate: Arc<arc_swap::ArcSwapOption<Loaded>>,
    /// The queue to the shadow scorer, when there is a candidate.
    pub shadow: Option<shadow::Shadow>,
    /// The audit log's writer (`--audit-log`).
    pub audit: Option<audit::Audit>,
    pub config: Config,
    pub metrics: metrics::Metrics,
    /// Permits for large requests' work on the blocking pool (see `score::work`).
    pub heavy: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(config: Config) -> Result<Arc<Self>> {
        let metrics = metrics::Metrics::default();
        let loaded = Loaded::to_serve(&config.model, &config, &metrics)?;
        if loaded.monitor.is_none() && config.monitor.records > 0 {
            tracing::warn!("the bundle has no training reference (made before drift monitoring, or without a profile): drift is not monitored");
        }
        let candidate = load_candidate(&config, &metrics, &loaded)?;
        if let Some(c) = &candidate {
            tracing::info!(candidate = %c.version, canary_percent = config.canary_percent, "candidate loaded: scored in shadow");
        }
        let candidate = Arc::new(arc_swap::ArcSwapOption::new(candidate));
        let shadow = config.shadow.as_ref().map(|_| shadow::Shadow::start(candidate.clone(), metrics.shadow.clone()));
        let audit = match &config.audit {
            Some(a) => Some(audit::Audit::start(a.clone()).map_err(|e| crate::error::Error::io(&a.dir, e))?),
            None => None,
        };
        let heavy = Arc::new(tokio::sync::Semaphore::new(config.max_heavy.max(1)));
        Ok(Arc::new(AppState {
            model: ArcSwap::from_pointee(loaded),
            candidate,
            shadow,
            audit,
            config,
            metrics,
            heavy,
        }))
    }

    /// Load the bundle (and the candidate) again from their paths and swap them in. In-flight
    /// requests finish with the model they started with; a bundle that fails to load leaves
    /// the old ones serving.
    pub fn reload(&self) -> Result<String> {
        let loaded = Loaded::to_serve(&self.config.model, &self.config, &self.metrics)?;
        if !self.config.allow_schema_change {
            let current = self.model.load();
            if let Some(why) = schema_change(&current.bundle, &loaded.bundle) {
                return Err(crate::error::Error::artifact(
                    &self.config.model,
                    format!(
                        "refused: {why}, so clients' records would no longer fit; the previous model keeps serving (start serve with --allow-schema-change to allow this)"
                    ),
                ));
            }
        }
        let candidate = load_candidate(&self.config, &self.metrics, &loaded)?;
        let version = loaded.version.clone();
        self.model.store(Arc::new(loaded));
        if candidate.is_some() {
            self.candidate.store(candidate);
        }
        self.metrics.reloaded();
        tracing::info!(version = %version, "model reloaded");
        Ok(version)
    }
}

/// The candidate of `--shadow`, loaded to serve beside `production`; refused ("refused:",
/// which a reload over HTTP answers with 409) when it reads other records.
fn load_candidate(config: &Config, metrics: &metrics::Metrics, production: &Loaded) -> Result<Option<Arc<Loaded>>> {
    let Some(path) = &config.shadow else { return Ok(None) };
    let c = Loaded::to_serve(path, config, metrics)?;
    if let Some(why) = schema_change(&production.bundle, &c.bundle) {
        return Err(crate::error::Error::artifact(
            path,
            format!("refused: the candidate: {why}, so one record cannot go to both models"),
        ));
    }
    Ok(Some(Arc::new(c)))
}

/// How `new` asks for other records than `old`: another dataset, or other raw inputs.
fn schema_change(old: &Bundle, new: &Bundle) -> Option<String> {
    if old.dataset != new.dataset {
        return Some(format!("the new bundle is for dataset `{}`, the served one for `{}`", new.dataset, old.dataset));
    }
    let names = |b: &Bundle| {
        b.preprocessor
            .inputs()
            .iter()
            .map(|i| format!("{}{}", i.name, if i.is_categorical() { " (category)" } else { "" }))
            .collect::<Vec<_>>()
    };
    let (was, now) = (names(old), names(new));
    if was != now {
        let gone: Vec<&String> = was.iter().filter(|n| !now.contains(n)).collect();
        let added: Vec<&String> = now.iter().filter(|n| !was.contains(n)).collect();
        return Some(format!(
            "the new bundle reads other inputs (no longer: {}; new: {})",
            if gone.is_empty() {
                "none".into()
            } else {
                gone.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            },
            if added.is_empty() {
                "none".into()
            } else {
                added.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            },
        ));
    }
    None
}

pub fn router(state: Arc<AppState>) -> Router {
    use routes::*;
    Router::new()
        .route(INDEX, get(page::index))
        .route(PREDICT, post(json_api::predict))
        .route(PREDICT_CSV, post(csv_api::predict))
        .route(HEALTHZ, get(admin::healthz))
        .route(READYZ, get(admin::readyz))
        .route(METRICS, get(admin::metrics))
        .route(MONITOR, get(admin::monitor))
        .route(RELOAD, post(admin::reload))
        .fallback(admin::not_found)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), declared_size))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(contain_panics))
        .with_state(state)
}

/// A handler that panics answers 500 with a fixed message (the panic's text, which may show
/// internals, goes to the log only), and the connection stays usable.
async fn contain_panics(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    match (Unwinding { inner: Box::pin(next.run(req)) }).await {
        Ok(resp) => resp,
        Err(()) => {
            error::ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal error (logged on the server)")
                .into_response()
        }
    }
}

/// A future polled under `catch_unwind`: `Err(())` if a poll panicked.
struct Unwinding<F> {
    inner: std::pin::Pin<Box<F>>,
}

impl<F: std::future::Future> std::future::Future for Unwinding<F> {
    type Output = std::result::Result<F::Output, ()>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => {
                tracing::error!("a request handler panicked (see the panic message above); answered 500");
                std::task::Poll::Ready(Err(()))
            }
        }
    }
}

/// A body declared larger than the limit (`Content-Length`) is refused with 413 at once, from
/// the header alone: the server neither waits for nor reads such a body.
async fn declared_size(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let limit = state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => error::ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {limit} bytes (Content-Length: {n})"),
        )
        .with("limit", limit)
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Headers that keep a browser from sniffing, framing or scripting our pages: every answer
/// says `nosniff` and `DENY`; HTML answers carry a policy that allows no script at all, our
/// own inline style, and forms that post back here only.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::header::{
        HeaderValue, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let html = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if html {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        );
    }
    resp
}

/// Count every request and its latency, by route.
async fn observe(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = routes::of(req.uri().path());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe(route, resp.status().as_u16(), started.elapsed());
    resp
}

/// Serve until SIGINT or SIGTERM (then finish in-flight requests); SIGHUP reloads the model.
pub async fn serve(state: Arc<AppState>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.config.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, version = %state.model.load().version, "serving");
    #[cfg(unix)]
    {
        let on_hup = state.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
            while hup.recv().await.is_some() {
                if let Err(e) = on_hup.reload() {
                    tracing::error!("reload on SIGHUP failed, the previous model keeps serving: {e}");
                }
            }
        });
    }
    let c = &state.config;
    let limits = listen::Limits {
        max_connections: c.max_connections,
        header_timeout: c.header_timeout,
        body_timeout: c.body_timeout,
        idle_timeout: c.idle_timeout,
        shutdown_grace: c.shutdown_grace,
    };
    let served = listen::run(listener, router(state.clone()), limits, shutdown()).await;
    if let Some(audit) = &state.audit {
        audit.close();
        tracing::info!("audit log flushed");
    }
    served
}

/// The id of a request for the audit log (empty without one): the client's `X-Request-Id`, or
/// a new one.
pub fn request_id(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    match &state.audit {
        Some(a) => a.request_id(headers.get("x-request-id").and_then(|v| v.to_str().ok())),
        None => String::new(),
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
