//! Explanations against the reference: our TreeSHAP (through the server's `?explain=`) and
//! the `shap` package's TreeExplainer (PyPI, in `.venv-shap`, installed by `make test`) on the
//! same trees, for the decision tree, the random forest and the GBM, on 1,000 rows.

use serde_json::{json, Value};

use crate::common::{Cmd, Project};
use crate::serve::{post, Server};

/// The Python of the venv with `shap` (`NETSEC_SHAP_PYTHON` overrides).
fn shap_python() -> String {
    std::env::var("NETSEC_SHAP_PYTHON")
        .unwrap_or_else(|_| format!("{}/.venv-shap/bin/python", env!("CARGO_MANIFEST_DIR")))
}

/// 1,000 toy records (a in -1..1, b in 0..100, c a float), the same every run.
fn records() -> Vec<Value> {
    let mut s: u64 = 12345;
    let mut next = move |m: u64| {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 33) % m
    };
    (0..1000).map(|_| json!({"a": next(3) as i64 - 1, "b": next(101), "c": next(2000) as f64 / 1000.0 - 1.0})).collect()
}

#[test]
fn tree_shap_matches_the_shap_package_for_tree_forest_and_boosting() {
    let python = shap_python();
    assert!(std::path::Path::new(&python).exists(), "no {python}: `make test` installs .venv-shap");
    let script = format!("{}/tests/shap/check.py", env!("CARGO_MANIFEST_DIR"));
    let body = serde_json::to_vec(&records()).unwrap();
    for (family, space) in [
        ("decision_tree", "decision_tree: {max_depth: 6}"),
        ("random_forest", "random_forest: {n_estimators: 25}"),
        ("gbm", "gbm: {n_estimators: 60, max_depth: 4}"),
    ] {
        let p = Project::new();
        p.edit(
            "params.yaml",
            "        logistic: {alpha: 0.1}\n        gbm: {n_estimators: [20, 50], max_depth: 3}\n",
            &format!("        {space}\n"),
        );
        p.run_all();
        let model = p.path("models/production/toy.json");
        let s = Server::start(&model, &[]);
        let (code, answer) =
            post(&s.url("/v1/predict?explain=3&features=true"), &[("Content-Type", "application/json")], &body);
        s.stop();
        assert_eq!(code, 200, "{family}: {answer}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        let bundle: Value = serde_json::from_str(p.read("models/production/toy.json").lines().nth(1).unwrap()).unwrap();
        assert_eq!(bundle["model"]["family"], family);
        let names: Vec<String> =
            bundle["feature_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
        let (mut x, mut phi, mut base) = (Vec::new(), Vec::new(), Vec::new());
        for pred in v["predictions"].as_array().unwrap() {
            x.push(names.iter().map(|n| pred["features"][n].as_f64().unwrap()).collect::<Vec<_>>());
            let c = pred["explanation"]["contributions"].as_array().unwrap();
            let of = |n: &str| c.iter().find(|e| e["feature"] == n).map_or(0.0, |e| e["value"].as_f64().unwrap());
            phi.push(names.iter().map(|n| of(n)).collect::<Vec<_>>());
            base.push(pred["explanation"]["base"].as_f64().unwrap());
        }
        p.write("cases.json", serde_json::to_vec(&json!({"x": x, "phi": phi, "base": base})).unwrap());
        let run = Cmd::new(&python).arg(&script).arg(&model).arg(p.path("cases.json")).run();
        assert_eq!(run.code, Some(0), "{family}: shap differs or failed:\n{}\n{}", run.stdout, run.stderr);
        let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
        assert_eq!(report["rows"], 1000);
        assert!(report["max_abs_diff_phi"].as_f64().unwrap() <= 1e-6, "{family}: {report}");
        eprintln!("{family}: {report}");
    }
}
