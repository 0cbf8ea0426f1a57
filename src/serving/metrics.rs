//! Prometheus metrics of the server, exposed by the `prometheus-client` crate (the Prometheus
//! project's Rust client, OpenMetrics text). The hot path only increments counters created
//! once at start (one per route and status class); nothing is looked up per request.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

use super::routes::ALL as ROUTES;
const STATUS_CLASSES: [&str; 4] = ["2xx", "4xx", "5xx", "other"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Class {
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelInfo {
    version: String,
    family: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    /// Per route (in `routes::ALL` order), per status class.
    requests: Vec<[Counter; 4]>,
    latency: Histogram,
    threats: Counter,
    benign: Counter,
    reloads: Counter,
    unseen: Counter,
    out_of_domain: Counter,
    model: Family<ModelInfo, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests_family = Family::<RouteStatus, Counter>::default();
        registry.register("netsec_requests", "HTTP requests by route and status class", requests_family.clone());
        let requests = ROUTES
            .iter()
            .map(|route| {
                STATUS_CLASSES.map(|status| {
                    requests_family
                        .get_or_create(&RouteStatus { route: route.to_string(), status: status.into() })
                        .clone()
                })
            })
            .collect();
        let latency = Histogram::new(BUCKETS);
        registry.register("netsec_request_duration_seconds", "Request latency", latency.clone());
        let predictions = Family::<Class, Counter>::default();
        registry.register("netsec_predictions", "Records scored, by predicted class", predictions.clone());
        let threats = predictions.get_or_create(&Class { class: "threat".into() }).clone();
        let benign = predictions.get_or_create(&Class { class: "benign".into() }).clone();
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let unseen = counter(&mut registry, "netsec_unseen_categories", "Categorical values never seen in training");
        let out_of_domain =
            counter(&mut registry, "netsec_out_of_domain_values", "Numeric values outside the schema's domain");
        let reloads = counter(&mut registry, "netsec_model_reloads", "Successful model reloads");
        let model = Family::<ModelInfo, Gauge>::default();
        registry.register("netsec_model_info", "The model being served", model.clone());
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            threats,
            benign,
            reloads,
            unseen,
            out_of_domain,
            model,
        }
    }
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
        self.requests[r][s].inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    pub fn predictions(&self, threats: u64, benign: u64) {
        self.threats.inc_by(threats);
        self.benign.inc_by(benign);
    }

    /// Categorical values never seen in training (scored as "unknown category").
    pub fn unseen(&self, cells: u64) {
        self.unseen.inc_by(cells);
    }

    /// Numeric values outside their column's schema domain (scored, and reported).
    pub fn out_of_domain(&self, cells: u64) {
        self.out_of_domain.inc_by(cells);
    }

    pub fn reloaded(&self) {
        self.reloads.inc();
    }

    /// The OpenMetrics text exposition (what Prometheus scrapes), with the model now serving.
    pub fn render(&self, model_version: &str, family: &str) -> String {
        self.model.clear();
        self.model.get_or_create(&ModelInfo { version: model_version.into(), family: family.into() }).set(1);
        let mut s = String::new();
        let registry = self.registry.lock().expect("metrics registry");
        if let Err(e) = prometheus_client::encoding::text::encode(&mut s, &registry) {
            tracing::error!("cannot encode the metrics: {e}");
        }
        s
    }
}

/// The media type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
