//! The server's routes, named once: the router, the request counter and the metrics use these.

pub const INDEX: &str = "/";
pub const PREDICT: &str = "/v1/predict";
pub const PREDICT_CSV: &str = "/v1/predict/csv";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const MONITOR: &str = "/v1/monitor";
pub const RELOAD: &str = "/admin/reload";
/// Requests to no route (404s) are counted under this name.
pub const OTHER: &str = "other";

/// Every route, then `other`: the request counter's rows.
pub const ALL: [&str; 9] = [PREDICT, PREDICT_CSV, INDEX, RELOAD, HEALTHZ, READYZ, METRICS, MONITOR, OTHER];

/// The counted route of a request path.
pub fn of(path: &str) -> &'static str {
    ALL.iter().copied().find(|r| *r == path && *r != OTHER).unwrap_or(OTHER)
}
