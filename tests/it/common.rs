//! A throwaway project folder with params, a schema and a small generated dataset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub const STAGES: &[&str] = &["ingest", "validate", "transform", "train", "evaluate", "promote"];

pub fn bin(stage: &str) -> PathBuf {
    let ingest = Path::new(env!("CARGO_BIN_EXE_ingest"));
    ingest.with_file_name(stage)
}

pub const TOY_SCHEMA: &str = "\
name: toy
header: true
data:
  source: data/toy.csv
target:
  column: label
  benign: [normal]
columns:
  - {name: a, type: integer, allowed: [-1, 0, 1]}
  - {name: b, type: integer, min: 0, max: 100}
  - {name: c, type: float, nullable: true}
  - {name: label, type: categorical, role: target}
";

pub const TOY_PARAMS: &str = "\
dataset: toy
ingest:
  split: stratified
  test_size: 0.25
  seed: 7
validate:
  drift_alpha: 0.001
transform:
  impute: median
train:
  seed: 7
  cv_folds: 3
  metric: f1
  search: grid
  budget: 10
  space: small
  threshold: {policy: max_f1}
  spaces:
    small:
      families:
        logistic: {alpha: 0.1}
        gbm: {n_estimators: [20, 50], max_depth: 3}
evaluate:
  importance_top: 3
promote:
  rules:
    f1: {min: 0.5}
    roc_auc: {min: 0.5}
";

/// `n` rows of a learnable toy problem: attack when a + b/40 + c is large. Deterministic.
pub fn toy_csv(n: usize) -> String {
    toy_csv_with(n, 0x9e37_79b9_7f4a_7c15, 0.0)
}

/// Another sample of the same problem (`seed`), with feature `c` shifted by `shift_c`.
pub fn toy_csv_with(n: usize, seed: u64, shift_c: f64) -> String {
    let mut s = String::from("a,b,c,label\n");
    let mut state: u64 = seed;
    let mut next = move |m: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    for _ in 0..n {
        let a = next(3) as i64 - 1;
        let b = next(101) as i64;
        let c = next(1000) as f64 / 500.0 - 1.0 + shift_c;
        let noise = next(100) as f64 / 100.0 - 0.5;
        let label = if a as f64 + b as f64 / 40.0 + c + noise > 1.5 { "attack" } else { "normal" };
        s.push_str(&format!("{a},{b},{c},{label}\n"));
    }
    s
}

pub struct Project {
    pub dir: TempDir,
}

impl Project {
    /// A project with the toy schema, params and a 400-row dataset.
    pub fn new() -> Self {
        let p = Project { dir: tempfile::tempdir().expect("temp dir") };
        p.write("schemas/toy.yaml", TOY_SCHEMA);
        p.write("params.yaml", TOY_PARAMS);
        p.write("data/toy.csv", toy_csv(400));
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Replace `from` by `to` in a file; the text must be there.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, text.replacen(from, to, 1));
    }

    pub fn run(&self, stage: &str) -> Run {
        self.run_env(stage, &[])
    }

    /// Run a stage with extra environment variables.
    pub fn run_env(&self, stage: &str, env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(bin(stage));
        cmd.current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run stage"))
    }

    pub fn run_all(&self) {
        for stage in STAGES {
            self.run(stage).success();
        }
    }

    /// A flat metrics file as (name, number) pairs.
    pub fn metrics(&self, rel: &str) -> serde_json::Map<String, serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&self.read(rel)).unwrap();
        let obj = v.as_object().unwrap_or_else(|| panic!("{rel} is not a JSON object")).clone();
        for (k, v) in &obj {
            // The one text value: which dataset the figures belong to.
            assert!(v.is_number() || (k == "dataset" && v.is_string()), "{rel}: `{k}` is not a number: {v}");
        }
        obj
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success\nstderr:\n{}", self.stderr);
        self
    }

    /// Failed with exit code 1, a message containing every `needle`, and no panic.
    pub fn fails_with(&self, needles: &[&str]) -> &Self {
        assert_eq!(self.code, Some(1), "expected exit code 1\nstderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "panicked:\n{}", self.stderr);
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}:\n{}", self.stderr);
        }
        self
    }
}
