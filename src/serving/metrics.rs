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
    model_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    model_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Feature {
    model_version: String,
    feature: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// One model's verdict counters, created when it is loaded (so the hot path looks nothing up).
#[derive(Clone, Default)]
pub struct Tally {
    threats: Counter,
    benign: Counter,
}

impl Tally {
    pub fn add(&self, threats: u64, benign: u64) {
        self.threats.inc_by(threats);
        self.benign.inc_by(benign);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelInfo {
    version: String,
    family: String,
    /// `production`, or `candidate` (`serve --shadow`).
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Pair {
    model_version: String,
    candidate_version: String,
}

/// Upper bounds of the |production score - candidate score| buckets.
const DIFF_BUCKETS: [f64; 8] = [0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0];

fn diff_histogram() -> Histogram {
    Histogram::new(DIFF_BUCKETS)
}

/// How the candidate's scores compare with the production model's answers (see `shadow`).
#[derive(Clone)]
pub struct ShadowMetrics {
    compared: Family<Pair, Counter>,
    agree: Family<Pair, Counter>,
    diff: Family<Pair, Histogram, fn() -> Histogram>,
    dropped: Counter,
}

impl ShadowMetrics {
    fn new(registry: &mut Registry) -> Self {
        let m = ShadowMetrics {
            compared: Family::default(),
            agree: Family::default(),
            diff: Family::new_with_constructor(diff_histogram),
            dropped: Counter::default(),
        };
        registry.register(
            "netsec_shadow_compared",
            "Records answered by the production model and scored by the candidate too",
            m.compared.clone(),
        );
        registry.register(
            "netsec_shadow_agree",
            "Compared records whose labels agree (each model with its own threshold)",
            m.agree.clone(),
        );
        registry.register(
            "netsec_shadow_score_diff",
            "Absolute difference of the production and candidate scores of a record",
            m.diff.clone(),
        );
        registry.register(
            "netsec_shadow_dropped",
            "Records left out of the comparison (queue full, or not encodable by the candidate)",
            m.dropped.clone(),
        );
        m
    }

    pub fn compared(&self, version: &str, candidate: &str, n: u64, agree: u64, diffs: impl Iterator<Item = f64>) {
        let pair = Pair { model_version: version.into(), candidate_version: candidate.into() };
        let h = self.diff.get_or_create(&pair);
        for d in diffs {
            h.observe(d);
        }
        self.agree.get_or_create(&pair).inc_by(agree);
        self.compared.get_or_create(&pair).inc_by(n);
    }

    pub fn dropped(&self, n: u64) {
        self.dropped.inc_by(n);
    }
}

pub struct Metrics {
    registry: Mutex<Registry>,
    /// Per route (in `routes::ALL` order), per status class.
    requests: Vec<[Counter; 4]>,
    latency: Histogram,
    predictions: Family<Class, Counter>,
    reloads: Counter,
    unseen: Counter,
    out_of_domain: Counter,
    model: Family<ModelInfo, Gauge>,
    drift: Drift,
    pub shadow: ShadowMetrics,
}

/// The drift gauges, set from the monitors' snapshots at each scrape.
#[derive(Default)]
struct Drift {
    feature_psi: Family<Feature, FloatGauge>,
    missing: Family<Feature, FloatGauge>,
    unseen: Family<Feature, FloatGauge>,
    score_psi: Family<Version, FloatGauge>,
    records: Family<Version, Gauge>,
}

impl Drift {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "netsec_feature_psi",
            "Population stability index of an input over the monitor's window, against training",
            self.feature_psi.clone(),
        );
        registry.register(
            "netsec_feature_missing_ratio",
            "Share of the window's records missing an input",
            self.missing.clone(),
        );
        registry.register(
            "netsec_feature_unseen_ratio",
            "Share of the window's records with a category never seen in training",
            self.unseen.clone(),
        );
        registry.register(
            "netsec_score_psi",
            "Population stability index of the scores over the window, against out-of-fold training scores",
            self.score_psi.clone(),
        );
        registry.register(
            "netsec_monitor_window_records",
            "Records in the drift monitor's window",
            self.records.clone(),
        );
    }

    fn set(&self, version: &str, s: &super::monitor::Snapshot) {
        let v = Version { model_version: version.into() };
        self.score_psi.get_or_create(&v).set(s.score_psi);
        self.records.get_or_create(&v).set(s.records as i64);
        for f in &s.features {
            let l = Feature { model_version: version.into(), feature: f.feature.clone() };
            self.feature_psi.get_or_create(&l).set(f.psi);
            self.missing.get_or_create(&l).set(f.missing_rate);
            if let Some(u) = f.unseen_rate {
                self.unseen.get_or_create(&l).set(u);
            }
        }
    }

    fn clear(&self) {
        self.feature_psi.clear();
        self.missing.clear();
        self.unseen.clear();
        self.score_psi.clear();
        self.records.clear();
    }
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
        registry.register("netsec_predictions", "Records scored, by predicted class and model", predictions.clone());
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
        let drift = Drift::default();
        drift.register(&mut registry);
        let shadow = ShadowMetrics::new(&mut registry);
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            predictions,
            reloads,
            unseen,
            out_of_domain,
            model,
            drift,
            shadow,
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

    /// The verdict counters of the model `version` (kept across reloads: a version served
    /// again counts on).
    pub fn tally(&self, version: &str) -> Tally {
        let c = |class: &str| {
            self.predictions.get_or_create(&Class { class: class.into(), model_version: version.into() }).clone()
        };
        Tally { threats: c("threat"), benign: c("benign") }
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

    /// The OpenMetrics text exposition (what Prometheus scrapes), with the models now serving
    /// and their drift.
    pub fn render(&self, served: &[(&super::Loaded, &str)]) -> String {
        let registry = self.registry.lock().expect("metrics registry");
        self.model.clear();
        self.drift.clear();
        for (m, role) in served {
            let info =
                ModelInfo { version: m.version.clone(), family: m.bundle.model.family().into(), role: (*role).into() };
            self.model.get_or_create(&info).set(1);
            if let Some(monitor) = &m.monitor {
                self.drift.set(&m.version, &monitor.snapshot());
            }
        }
        let mut s = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut s, &registry) {
            tracing::error!("cannot encode the metrics: {e}");
        }
        s
    }
}

/// The media type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
