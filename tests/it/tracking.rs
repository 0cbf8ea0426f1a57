//! MLflow tracking against a real MLflow server (from PyPI, installed by `make test` into
//! `.venv-mlflow`), started by the test on 127.0.0.1.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::{Cmd, Project, Spawned};
use crate::serve::{free_port, get, post, start_on_free_port};

fn mlflow_binary() -> PathBuf {
    let path = std::env::var_os("NETSEC_MLFLOW")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-mlflow/bin/mlflow"));
    assert!(path.exists(), "{} is missing: `make test` installs MLflow (requirements-mlflow.txt)", path.display());
    path
}

struct MlflowServer {
    child: Spawned,
    base: String,
    _dir: tempfile::TempDir,
}

impl MlflowServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (db, artifacts) = (dir.path().join("mlflow.db"), dir.path().join("artifacts"));
        let (child, port) = start_on_free_port(
            "mlflow server",
            120,
            |port| {
                Cmd::new(mlflow_binary())
                    .args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
                    .arg("--backend-store-uri")
                    .arg(format!("sqlite:///{}", db.display()))
                    .arg("--artifacts-destination")
                    .arg(&artifacts)
                    .env("MLFLOW_DISABLE_TELEMETRY", "true")
                    .env("DO_NOT_TRACK", "true")
            },
            |port| matches!(get(&format!("http://127.0.0.1:{port}/health")), Ok((200, _))),
        );
        MlflowServer { child, base: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api/2.0/{path}", self.base)
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn train_and_evaluate_log_params_metrics_and_the_bundle_to_a_real_mlflow_server() {
    let server = MlflowServer::start();
    let p = Project::new();
    for stage in ["ingest", "validate", "transform"] {
        p.run(stage).success();
    }
    let env = [("MLFLOW_TRACKING_URI", server.base.as_str()), ("MLFLOW_EXPERIMENT_NAME", "netsec-it")];
    p.run_env("train", &env).success();
    p.run_env("evaluate", &env).success();

    let (code, body) =
        get(&format!("{}?experiment_name=netsec-it", server.api("mlflow/experiments/get-by-name"))).unwrap();
    assert_eq!(code, 200, "{body}");
    let experiment = json(&body)["experiment"]["experiment_id"].as_str().unwrap().to_owned();
    let (code, body) = post(
        &server.api("mlflow/runs/search"),
        &[("content-type", "application/json")],
        format!(r#"{{"experiment_ids": ["{experiment}"]}}"#).as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let runs = json(&body)["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 1, "train and evaluate share the model's run: {body}");
    let run = &runs[0];
    let data = &run["data"];
    let find = |list: &str, key: &str| -> Option<Value> {
        data[list].as_array()?.iter().find(|e| e["key"] == key).map(|e| e["value"].clone())
    };
    // Params: the search settings and the winner's hyperparameters.
    assert_eq!(find("params", "cv_folds"), Some(Value::from("3")), "{data}");
    assert_eq!(find("params", "dataset"), Some(Value::from("toy")));
    let family = find("params", "family").unwrap();
    assert!(["logistic", "gbm"].contains(&family.as_str().unwrap()), "{family}");
    // Metrics: CV from train, test from evaluate, equal to the metrics files.
    let cv_f1 = p.metrics("reports/train.json")["cv_f1"].as_f64().unwrap();
    assert_eq!(find("metrics", "cv_f1").and_then(|v| v.as_f64()), Some(cv_f1));
    let acc = p.metrics("reports/eval.json")["accuracy"].as_f64().unwrap();
    assert_eq!(find("metrics", "test_accuracy").and_then(|v| v.as_f64()), Some(acc));
    assert_eq!(run["info"]["status"], "FINISHED");
    let sha = find("tags", "netsec.model_sha256").unwrap();
    assert_eq!(sha.as_str().unwrap().len(), 64);

    // The bundle arrived as an artifact, byte for byte.
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let (code, body) = get(&format!("{}?run_id={run_id}&path=model", server.api("mlflow/artifacts/list"))).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("model/toy.json"), "{body}");
    let url = server.api(&format!("mlflow-artifacts/artifacts/{experiment}/{run_id}/artifacts/model/toy.json"));
    let (code, stored) = get(&url).unwrap();
    assert_eq!(code, 200);
    assert_eq!(stored, p.read("models/model.json"), "the stored bundle differs from models/model.json");

    // MLflow's launcher starts uvicorn and huey workers: stopping the server must stop them
    // all, or every test run leaves processes behind.
    let group = server.child.pid();
    assert!(
        Spawned::group_members(group).len() > 1,
        "MLflow runs as several processes: {:?}",
        Spawned::group_members(group)
    );
    drop(server);
    // SIGKILL is delivered at once, but a process takes a moment to go; none may be left.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !Spawned::group_members(group).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(Spawned::group_members(group), Vec::<u32>::new(), "processes of the MLflow server outlived it");
}

#[test]
fn an_unreachable_tracking_server_fails_the_stage_with_its_address() {
    let p = Project::new();
    for stage in ["ingest", "validate", "transform"] {
        p.run(stage).success();
    }
    let uri = format!("http://127.0.0.1:{}", free_port());
    p.run_env("train", &[("MLFLOW_TRACKING_URI", uri.as_str())]).fails_with(&["tracking server", &uri]);
}
