//! Prometheus counters of the server, lock-free.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

use super::routes::ALL as ROUTES;
const STATUS_CLASSES: [&str; 4] = ["2xx", "4xx", "5xx", "other"];

#[derive(Default)]
pub struct Metrics {
    requests: [[AtomicU64; 4]; ROUTES.len()],
    buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    /// Total latency in microseconds.
    latency_sum_us: AtomicU64,
    threats: AtomicU64,
    benign: AtomicU64,
    reloads: AtomicU64,
    unseen: AtomicU64,
    out_of_domain: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        let r = ROUTES.iter().position(|&x| x == route).unwrap_or(ROUTES.len() - 1);
        let s = match status {
            200..=299 => 0,
            400..=499 => 1,
            500..=599 => 2,
            _ => 3,
        };
        self.requests[r][s].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        for (b, &le) in self.buckets.iter().zip(&BUCKETS) {
            if secs <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn predictions(&self, threats: u64, benign: u64) {
        self.threats.fetch_add(threats, Ordering::Relaxed);
        self.benign.fetch_add(benign, Ordering::Relaxed);
    }

    /// Categorical values never seen in training (scored as "unknown category").
    pub fn unseen(&self, cells: u64) {
        self.unseen.fetch_add(cells, Ordering::Relaxed);
    }

    /// Numeric values outside their column's schema domain (scored, and reported).
    pub fn out_of_domain(&self, cells: u64) {
        self.out_of_domain.fetch_add(cells, Ordering::Relaxed);
    }

    pub fn reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format.
    pub fn render(&self, model_version: &str, family: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# HELP netsec_requests_total HTTP requests by route and status class.");
        let _ = writeln!(s, "# TYPE netsec_requests_total counter");
        for (r, route) in ROUTES.iter().enumerate() {
            for (c, class) in STATUS_CLASSES.iter().enumerate() {
                let n = self.requests[r][c].load(Ordering::Relaxed);
                let _ = writeln!(s, "netsec_requests_total{{route=\"{route}\",status=\"{class}\"}} {n}");
            }
        }
        let _ = writeln!(s, "# HELP netsec_request_duration_seconds Request latency.");
        let _ = writeln!(s, "# TYPE netsec_request_duration_seconds histogram");
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(s, "netsec_request_duration_seconds_bucket{{le=\"{le}\"}} {}", b.load(Ordering::Relaxed));
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(s, "netsec_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "netsec_request_duration_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "netsec_request_duration_seconds_count {count}");
        let _ = writeln!(s, "# HELP netsec_predictions_total Records scored, by predicted class.");
        let _ = writeln!(s, "# TYPE netsec_predictions_total counter");
        let _ = writeln!(s, "netsec_predictions_total{{class=\"threat\"}} {}", self.threats.load(Ordering::Relaxed));
        let _ = writeln!(s, "netsec_predictions_total{{class=\"benign\"}} {}", self.benign.load(Ordering::Relaxed));
        let _ = writeln!(s, "# HELP netsec_unseen_categories_total Categorical values never seen in training.");
        let _ = writeln!(s, "# TYPE netsec_unseen_categories_total counter");
        let _ = writeln!(s, "netsec_unseen_categories_total {}", self.unseen.load(Ordering::Relaxed));
        let _ = writeln!(s, "# HELP netsec_out_of_domain_values_total Numeric values outside the schema's domain.");
        let _ = writeln!(s, "# TYPE netsec_out_of_domain_values_total counter");
        let _ = writeln!(s, "netsec_out_of_domain_values_total {}", self.out_of_domain.load(Ordering::Relaxed));
        let _ = writeln!(s, "# HELP netsec_model_reloads_total Successful model reloads.");
        let _ = writeln!(s, "# TYPE netsec_model_reloads_total counter");
        let _ = writeln!(s, "netsec_model_reloads_total {}", self.reloads.load(Ordering::Relaxed));
        let _ = writeln!(s, "# HELP netsec_model_info The model being served.");
        let _ = writeln!(s, "# TYPE netsec_model_info gauge");
        let _ = writeln!(s, "netsec_model_info{{version=\"{model_version}\",family=\"{family}\"}} 1");
        s
    }
}
