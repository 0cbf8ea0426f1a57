//! MLflow over its REST API (`/api/2.0/mlflow/...`), with artifacts through the tracking
//! server's artifact proxy (`/api/2.0/mlflow-artifacts/...`, runs whose artifact URI is
//! `mlflow-artifacts:/...`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{Report, Tracker};
use crate::error::{Error, Result};

/// MLflow's limits per `log-batch` request.
const MAX_PARAMS: usize = 100;
const MAX_METRICS: usize = 1000;
/// Tag holding the bundle's sha256.
const MODEL_TAG: &str = "netsec.model_sha256";

enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

pub struct MlflowTracker {
    base: String,
    experiment: Option<String>,
    auth: Auth,
    agent: ureq::Agent,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl MlflowTracker {
    pub fn from_env() -> Option<Self> {
        let uri = std::env::var("MLFLOW_TRACKING_URI").ok().filter(|u| !u.trim().is_empty())?;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let auth =
            match (var("MLFLOW_TRACKING_USERNAME"), var("MLFLOW_TRACKING_PASSWORD"), var("MLFLOW_TRACKING_TOKEN")) {
                (Some(u), Some(p), _) => Auth::Basic(u, p),
                (_, _, Some(t)) => Auth::Bearer(t),
                _ => Auth::None,
            };
        Some(Self::new(&uri, var("MLFLOW_EXPERIMENT_NAME"), auth))
    }

    fn new(uri: &str, experiment: Option<String>, auth: Auth) -> Self {
        let agent = crate::http::agent(Duration::from_secs(60));
        MlflowTracker { base: uri.trim_end_matches('/').to_owned(), experiment, auth, agent }
    }

    fn fail(&self, message: impl Into<String>) -> Error {
        Error::Tracking { uri: self.base.clone(), message: message.into() }
    }

    fn authorize<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Auth::None => req,
            Auth::Basic(u, p) => req.header("Authorization", crate::http::basic_auth(u, p)),
            Auth::Bearer(t) => req.header("Authorization", format!("Bearer {t}")),
        }
    }

    /// The JSON answer of a call, or an error naming the endpoint and what the server said.
    fn answer(
        &self,
        what: &str,
        res: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let mut res = res.map_err(|e| self.fail(format!("{what}: {e}")))?;
        let status = res.status().as_u16();
        let body = res.body_mut().read_to_string().unwrap_or_default();
        match status {
            200..=299 => Ok(serde_json::from_str(&body).unwrap_or(Value::Null)),
            401 | 403 => Err(self.fail(format!(
                "{what}: HTTP {status}: the server refused the credentials (set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN)"
            ))),
            _ => Err(self.fail(format!("{what}: HTTP {status}: {}", body.chars().take(300).collect::<String>()))),
        }
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let mut req = self.agent.get(format!("{}/api/2.0/mlflow/{path}", self.base));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        self.answer(path, self.authorize(req).call())
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let req = self.agent.post(format!("{}/api/2.0/mlflow/{path}", self.base));
        let bytes = serde_json::to_vec(body).expect("JSON serializes");
        self.answer(path, self.authorize(req).header("Content-Type", "application/json").send(bytes))
    }

    fn experiment_id(&self, dataset: &str) -> Result<String> {
        let name = self.experiment.clone().unwrap_or_else(|| format!("netsec-{dataset}"));
        let found = self.get("experiments/get-by-name", &[("experiment_name", &name)]);
        let id = match found {
            Ok(v) => v["experiment"]["experiment_id"].as_str().map(str::to_owned),
            Err(Error::Tracking { message, .. }) if message.contains("RESOURCE_DOES_NOT_EXIST") => None,
            Err(e) => return Err(e),
        };
        match id {
            Some(id) => Ok(id),
            None => {
                let created = self.post("experiments/create", &json!({ "name": name }))?;
                created["experiment_id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.fail("experiments/create: no experiment_id"))
            }
        }
    }

    /// The model's run (by tag), created when missing: (run id, artifact URI).
    fn run(&self, experiment: &str, report: &Report) -> Result<(String, String)> {
        let filter = format!("tags.\"{MODEL_TAG}\" = '{}'", report.model_sha256);
        let found = self.post(
            "runs/search",
            &json!({ "experiment_ids": [experiment], "filter": filter, "max_results": 1, "order_by": ["attributes.start_time DESC"] }),
        )?;
        let info = match found["runs"].get(0) {
            Some(run) => run["info"].clone(),
            None => {
                let tags = json!([
                    { "key": MODEL_TAG, "value": report.model_sha256 },
                    { "key": "netsec.dataset", "value": report.dataset },
                    { "key": "mlflow.source.name", "value": "netsec" },
                ]);
                let created = self.post(
                    "runs/create",
                    &json!({ "experiment_id": experiment, "run_name": report.run_name, "start_time": now_ms(), "tags": tags }),
                )?;
                created["run"]["info"].clone()
            }
        };
        let id = info["run_id"].as_str().ok_or_else(|| self.fail("run without run_id"))?.to_owned();
        Ok((id, info["artifact_uri"].as_str().unwrap_or_default().to_owned()))
    }

    fn upload(&self, artifact_uri: &str, name: &str, bytes: Vec<u8>) -> Result<()> {
        let Some(rest) = artifact_uri.strip_prefix("mlflow-artifacts:") else {
            return Err(self.fail(format!(
                "artifact store `{artifact_uri}` is not served by the tracking server (start it with --serve-artifacts); `{name}` not uploaded"
            )));
        };
        let rest = rest.trim_start_matches('/');
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{rest}/{name}", self.base);
        let req = self.authorize(self.agent.put(url)).header("Content-Type", "application/octet-stream");
        self.answer(&format!("upload {name}"), req.send(bytes)).map(|_| ())
    }
}

impl Tracker for MlflowTracker {
    fn report(&self, report: &Report) -> Result<String> {
        let experiment = self.experiment_id(&report.dataset)?;
        let (run, artifact_uri) = self.run(&experiment, report)?;
        let ts = now_ms();
        for chunk in report.params.chunks(MAX_PARAMS) {
            let params: Vec<Value> = chunk.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect();
            self.post("runs/log-batch", &json!({ "run_id": run, "params": params }))?;
        }
        for chunk in report.metrics.chunks(MAX_METRICS) {
            let metrics: Vec<Value> = chunk
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(k, v)| json!({ "key": k, "value": v, "timestamp": ts, "step": 0 }))
                .collect();
            self.post("runs/log-batch", &json!({ "run_id": run, "metrics": metrics }))?;
        }
        for (name, path) in &report.artifacts {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            self.upload(&artifact_uri, name, bytes)?;
        }
        self.post("runs/update", &json!({ "run_id": run, "status": "FINISHED", "end_time": now_ms() }))?;
        Ok(run)
    }
}
