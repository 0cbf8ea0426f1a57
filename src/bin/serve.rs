//! `serve`: the inference service over HTTP (see README, "Serving").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use netsec::serving::{serve, AppState, Config};

#[derive(Parser)]
#[command(
    version,
    about = "Serve the production model over HTTP: JSON and CSV scoring, an upload page, health and Prometheus metrics.",
    long_about = "Serve the production model over HTTP.\n\n\
POST /v1/predict (JSON records), POST /v1/predict/csv (CSV upload; CSV, JSON or HTML back by Accept), \
GET / (upload page), GET /healthz, GET /readyz, GET /metrics (Prometheus), GET /v1/monitor (drift), POST /admin/reload \
(bearer token from NETSEC_ADMIN_TOKEN). SIGHUP reloads the model; SIGINT/SIGTERM stop after in-flight requests."
)]
struct Cli {
    /// The bundle to serve.
    #[arg(long, default_value = "models/production/phishing.json", env = "NETSEC_MODEL")]
    model: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080", env = "NETSEC_ADDR")]
    addr: SocketAddr,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Most records or rows per request.
    #[arg(long, default_value_t = 100_000)]
    max_rows: usize,
    /// Time allowed to score one request, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// On SIGINT/SIGTERM, how long in-flight requests may still take (ms); connections still
    /// open after it (a client holding a half-sent request) are closed.
    #[arg(long, default_value_t = 10_000)]
    shutdown_grace_ms: u64,
    /// Open connections at most; at the cap a new one closes the connection idle longest
    /// [default: the open-file limit less 128, at most 10000].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Time allowed for a request's head (request line and headers), ms.
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Time allowed for a request's body, from the first read, ms (then 408).
    #[arg(long, default_value_t = 30_000)]
    body_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed, ms.
    #[arg(long, default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// Large requests parsed and scored at once, off the async workers [default: cores].
    #[arg(long)]
    max_heavy: Option<usize>,
    /// Let a reload swap in a model for another dataset or other inputs (refused otherwise:
    /// clients' records would stop fitting while the server says it is ready).
    #[arg(long)]
    allow_schema_change: bool,
    /// Refuse (422) records with a value outside the schema's domain (default: score them and
    /// report each in `warnings` and in netsec_out_of_domain_values_total).
    #[arg(long)]
    strict: bool,
    /// Drift monitoring: the window holds the last this many scored records (0: off). PSI,
    /// missing and unseen rates of each input and the score's PSI are on /metrics and
    /// GET /v1/monitor.
    #[arg(long, default_value_t = 10_000)]
    monitor_window: usize,
    /// Drift monitoring: records older than this many seconds leave the window.
    #[arg(long, default_value_t = 900)]
    monitor_period_s: u64,
    /// A candidate bundle: every record answered by the production model is also scored by it,
    /// off the response path; /metrics compares the two (netsec_shadow_*). Reloaded with the
    /// model.
    #[arg(long, value_name = "BUNDLE")]
    shadow: Option<PathBuf>,
    /// Answer this percent of records with the candidate (--shadow) instead, chosen by a hash
    /// of the record's `id` (of its inputs without one): the same record always meets the same
    /// model. POST /v1/predict only; uploads are answered by the production model.
    #[arg(long, default_value_t = 0.0, requires = "shadow", value_parser = percent)]
    canary_percent: f64,
    /// Keep an audit log in this folder: one JSON line per scored record (time, request id,
    /// model version, score, label, reasons when asked, SHA-256 of the input), rotating files.
    #[arg(long, value_name = "DIR")]
    audit_log: Option<PathBuf>,
    /// Also write each record's raw inputs into the audit log.
    #[arg(long, requires = "audit_log")]
    audit_inputs: bool,
    /// Start a new audit file past this size, bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024, requires = "audit_log")]
    audit_max_bytes: u64,
    /// Audit files kept (the oldest beyond are deleted).
    #[arg(long, default_value_t = 20, requires = "audit_log")]
    audit_keep: usize,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    limits: netsec::cli::InputLimitArgs,
    #[command(flatten)]
    common: netsec::cli::Common,
}

fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a percent from 0 to 100")),
    }
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| {
        let cli = Cli::parse();
        cli.common.init_logging();
        let limits = cli.limits.apply();
        let admin_token = std::env::var("NETSEC_ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
        let config = Config {
            model: cli.model.clone(),
            addr: cli.addr,
            max_body_bytes: cli.max_body_bytes,
            max_rows: cli.max_rows,
            timeout: Duration::from_millis(cli.timeout_ms),
            shutdown_grace: Duration::from_millis(cli.shutdown_grace_ms),
            max_connections: cli.max_connections.unwrap_or_else(netsec::serving::listen::default_max_connections),
            header_timeout: Duration::from_millis(cli.header_timeout_ms),
            body_timeout: Duration::from_millis(cli.body_timeout_ms),
            idle_timeout: Duration::from_millis(cli.idle_timeout_ms),
            max_heavy: cli.max_heavy.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            max_columns: limits.max_fields,
            allow_schema_change: cli.allow_schema_change,
            strict: cli.strict,
            admin_token,
            monitor: netsec::serving::monitor::WindowConfig {
                records: cli.monitor_window,
                period: Duration::from_secs(cli.monitor_period_s),
            },
            shadow: cli.shadow.clone(),
            canary_percent: cli.canary_percent,
            audit: cli.audit_log.clone().map(|dir| netsec::serving::audit::AuditConfig {
                dir,
                inputs: cli.audit_inputs,
                max_bytes: cli.audit_max_bytes,
                keep: cli.audit_keep,
            }),
        };
        let state = AppState::new(config).with_context(|| format!("loading {}", cli.model.display()))?;
        let mut rt = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = cli.threads {
            rt.worker_threads(n);
        }
        rt.enable_all().build()?.block_on(serve(state)).context("server")?;
        Ok(())
    })
}
