//! The GitHub Actions workflows: lint-clean under actionlint, and doing what the README says.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workflows() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn every_workflow_passes_actionlint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let actionlint =
        std::env::var_os("NETSEC_ACTIONLINT").map(PathBuf::from).unwrap_or_else(|| root.join(".venv/bin/actionlint"));
    let files = workflows();
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["ci.yml", "release.yml", "retrain.yml"]);
    let out = Command::new(&actionlint).args(&files).output().unwrap_or_else(|e| {
        panic!("cannot run {} ({e}); `make test` installs actionlint into .venv", actionlint.display())
    });
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file of the repository, asserted to contain every one of `needles`.
fn assert_contains_all(rel: &str, needles: &[&str]) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap();
    for needle in needles {
        assert!(text.contains(needle), "{rel} lacks {needle:?}:\n{text}");
    }
}

#[test]
fn workflows_run_the_real_steps_and_keep_secrets_out() {
    assert_contains_all(
        ".github/workflows/ci.yml",
        &["run: .ci/run", "dvc metrics diff --md", "dvc params diff --md", "GITHUB_STEP_SUMMARY"],
    );
    assert_contains_all(
        ".github/workflows/retrain.yml",
        &[
            "schedule:",
            "workflow_dispatch:",
            "secrets.DAGSHUB_TOKEN",
            "--local password",
            "scripts/dvc-pull origin",
            "scripts/retrain --remote origin",
            "create-pull-request",
        ],
    );
    assert_contains_all(".github/workflows/release.yml", &["tags:", "build-push-action", "push: true"]);
    // GitHub CI and a local run do the same: .ci/run, which runs the README's test command.
    assert_contains_all(
        ".ci/run",
        &["cargo fmt --check", "-D warnings", "make test", "--no-fail-fast", "make run", "ignored"],
    );
    // No credential is written into a committed file: every value of a secret-looking key in
    // the workflows comes from GitHub's secrets or from an environment variable, and the
    // committed DVC config names no user or password (those go in .dvc/config.local).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join(".github/workflows")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let lower = line.to_lowercase();
            if ["password", "token", "secret_access", "access_key"].iter().any(|k| lower.contains(k)) {
                assert!(
                    line.contains("${{ secrets.") || line.contains("\"$"),
                    "{}: a credential that is not a secret or a variable: {line}",
                    path.display()
                );
            }
        }
    }
    let dvc_config = std::fs::read_to_string(root.join(".dvc/config")).unwrap();
    for key in ["password", "user ", "user=", "access_key_id", "secret_access_key"] {
        assert!(!dvc_config.contains(key), ".dvc/config holds `{key}`: credentials belong in config.local");
    }
    let ignored = std::fs::read_to_string(root.join(".dvc/.gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l.trim() == "/config.local"), ".dvc/config.local must be gitignored");
}
