//! Deployment files: the Kubernetes manifests render with `kubectl kustomize` and pass schema
//! validation with no cluster and no network; their probes answer on a real server.

use std::path::Path;

use crate::common::Cmd;
use crate::serve::{get, Server};

fn validate(file: &Path) -> crate::common::Run {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/kubernetes-validate");
    // No network while validating (when we may make a network namespace): the schemas are
    // the ones the package bundles.
    let offline = crate::sql::is_root() && Cmd::new("unshare").args(["-n", "true"]).run().code == Some(0);
    let cmd = if offline { Cmd::new("unshare").args(["-n", "--"]).arg(&tool) } else { Cmd::new(&tool) };
    cmd.args(["--strict", "-k", "1.32.0"]).arg(file).run()
}

#[test]
fn kubernetes_manifests_render_validate_offline_and_probe_real_routes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rendered = Cmd::new("kubectl").args(["kustomize"]).arg(root.join("deploy/k8s")).run();
    assert_eq!(rendered.code, Some(0), "{}", rendered.stderr);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, &rendered.stdout).unwrap();
    let run = validate(&file);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&rendered.stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
        assert!(run.stderr.contains("passed") || run.stdout.contains("passed"));
    }
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let serve = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(serve["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(serve["resources"]["requests"]["cpu"].is_string());
    assert_eq!(deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    assert!(pod["initContainers"][0]["command"][2].as_str().unwrap().contains("dvc get"));

    // A broken manifest fails the same validation (it is not a check that cannot fail).
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, rendered.stdout.replacen("replicas: 2", "replicas: two", 1)).unwrap();
    assert_ne!(validate(&broken).code, Some(0), "a string replica count passed");

    // The probes' paths answer 200 on a real server.
    let p = crate::common::Project::new();
    p.run_all();
    let server = Server::start(&p.path("models/production/toy.json"), &[]);
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let path = serve[probe]["httpGet"]["path"].as_str().unwrap();
        assert_eq!(get(&server.url(path)).unwrap().0, 200, "{probe} {path}");
    }
    server.stop();
}
