//! The model registry: which model serves each dataset, which came before, and why.
//!
//! `models/registry.json` records every candidate the promotion gate saw: id, time, params
//! hash, data hash (from `dvc.lock`), git revision, test metrics, bundle sha256 and status.
//! Promoted bundles are kept byte for byte under `models/versions/<id>.json`; the one in
//! production is copied to the stable path `models/production/<dataset>.json`, which the
//! server loads. [`Registry::rollback`] puts the previous production version back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::artifact::{atomic_write, read_json, write_json};
use crate::error::{Error, Result};
use crate::params::Check;

/// Metrics the gate may use: all "higher is better".
pub const GATED: &[&str] = &["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "balanced_accuracy", "mcc"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteParams {
    /// Per gated metric (see `registry::GATED`): `min`, `min_delta` (default 0),
    /// `min_rel_delta`.
    pub rules: BTreeMap<String, Rule>,
}

impl Check for PromoteParams {
    fn check(&self) -> std::result::Result<(), String> {
        if self.rules.is_empty() {
            return Err("`rules` must name at least one metric".into());
        }
        match self.rules.keys().find(|m| !GATED.contains(&m.as_str())) {
            Some(m) => Err(format!("`{m}` cannot be gated (gated metrics: {})", GATED.join(", "))),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Production,
    /// Was in production, replaced by a better model.
    Archived,
    /// Failed the gate.
    Rejected,
    /// Was in production and was rolled back; never promoted again.
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub id: String,
    pub dataset: String,
    /// UTC, RFC 3339.
    pub created: String,
    pub status: Status,
    pub family: String,
    pub bundle_sha256: String,
    pub params_hash: String,
    pub data_hash: String,
    pub git_rev: String,
    pub metrics: BTreeMap<String, f64>,
    /// The kept bundle (promoted versions only).
    pub bundle: Option<PathBuf>,
    /// What the gate said.
    pub decision: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub versions: Vec<Version>,
}

/// One gate rule: the candidate's value must be at least `min`, at least `min_delta` above
/// production's, and at least `min_rel_delta` above it relatively. Omitted bounds do not
/// apply, except `min_delta`, which defaults to 0: a candidate worse than production on a
/// gated metric is never promoted unless a rule says so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub min_delta: Option<f64>,
    #[serde(default)]
    pub min_rel_delta: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub promote: bool,
    pub first_model: bool,
    /// Candidate minus production, per gated metric.
    pub deltas: BTreeMap<String, f64>,
    pub reasons: Vec<String>,
}

/// The gate: every rule must pass. With no production model, only the minimums apply.
pub fn decide(
    candidate: &BTreeMap<String, f64>,
    production: Option<&BTreeMap<String, f64>>,
    rules: &BTreeMap<String, Rule>,
) -> Decision {
    let mut d =
        Decision { promote: true, first_model: production.is_none(), deltas: BTreeMap::new(), reasons: Vec::new() };
    for (metric, rule) in rules {
        let c = candidate.get(metric).copied().unwrap_or(f64::NAN);
        let mut fail = |why: String| {
            d.promote = false;
            d.reasons.push(why);
        };
        if !c.is_finite() {
            fail(format!("{metric}: the candidate has no value"));
            continue;
        }
        if let Some(min) = rule.min {
            if c < min {
                fail(format!("{metric}: {c} is below the minimum {min}"));
            }
        }
        let Some(p) = production.and_then(|p| p.get(metric).copied()) else { continue };
        let delta = c - p;
        d.deltas.insert(metric.clone(), delta);
        let min_delta = rule.min_delta.unwrap_or(0.0);
        if delta < min_delta {
            fail(format!("{metric}: {c} vs production {p}, change {delta:+} is below {min_delta:+}"));
        }
        if let Some(min_rel) = rule.min_rel_delta {
            let rel = if p != 0.0 { delta / p.abs() } else { 0.0 };
            if rel < min_rel {
                fail(format!("{metric}: relative change {rel:+} is below {min_rel:+}"));
            }
        }
    }
    if d.promote {
        d.reasons.push(if d.first_model {
            "first model for this dataset".into()
        } else {
            "every gated metric passed".into()
        });
    }
    d
}

impl Registry {
    /// An absent file is an empty registry.
    pub fn load(path: &Path) -> Result<Self> {
        if path.exists() {
            read_json(path)
        } else {
            Ok(Registry::default())
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }

    pub fn production(&self, dataset: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.dataset == dataset && v.status == Status::Production)
    }

    pub fn next_id(&self) -> String {
        format!("v{}", self.versions.len() + 1)
    }

    /// Put the previous production version of `dataset` back: the current one becomes
    /// `rolled_back`, the most recent archived one `production`. Returns the restored version
    /// and its kept bundle (checked), for the caller to copy to `production_path` with
    /// [`Locked::commit`].
    pub fn rollback(&mut self, dataset: &str, production_path: &Path) -> Result<(Version, PathBuf)> {
        let registry_error = |m: String| Error::artifact("models/registry.json", m);
        let current = self
            .versions
            .iter()
            .position(|v| v.dataset == dataset && v.status == Status::Production)
            .ok_or_else(|| registry_error(format!("no production model for dataset `{dataset}`")))?;
        let previous =
            self.versions.iter().rposition(|v| v.dataset == dataset && v.status == Status::Archived).ok_or_else(
                || registry_error(format!("no earlier production model of dataset `{dataset}` to roll back to")),
            )?;
        let bundle = self.versions[previous]
            .bundle
            .clone()
            .ok_or_else(|| registry_error(format!("version {} has no kept bundle", self.versions[previous].id)))?;
        // The kept bundle must be inside the models folder and be the one the registry
        // recorded: a registry edited to name another file, or a kept file changed since, is
        // refused before production is touched.
        let models = production_path.parent().and_then(Path::parent).unwrap_or(Path::new("."));
        let inside = std::fs::canonicalize(&bundle)
            .ok()
            .zip(std::fs::canonicalize(if models.as_os_str().is_empty() { Path::new(".") } else { models }).ok())
            .is_some_and(|(b, m)| b.starts_with(m));
        let id = self.versions[previous].id.clone();
        if !inside {
            return Err(registry_error(format!(
                "version {id}'s bundle `{}` is not a file inside the models folder `{}`; refusing to copy it",
                bundle.display(),
                models.display()
            )));
        }
        let bytes = std::fs::read(&bundle).map_err(|e| Error::io(&bundle, e))?;
        let sha = crate::bundle::Bundle::from_bytes_identified(&bytes).map_err(|m| Error::artifact(&bundle, m))?;
        if sha != self.versions[previous].bundle_sha256 {
            return Err(registry_error(format!(
                "version {id}'s bundle `{}` has sha256 {sha}, but the registry recorded {}; refusing to roll back to it",
                bundle.display(),
                self.versions[previous].bundle_sha256
            )));
        }
        self.versions[current].status = Status::RolledBack;
        self.versions[previous].status = Status::Production;
        Ok((self.versions[previous].clone(), bundle))
    }
}

/// The registry held for an update: an exclusive lock on `<registry>.lock`, so two `promote`
/// or `rollback` runs take turns (each reads the registry the other wrote), and a journal
/// that makes the update of several files (production, registry) recoverable.
///
/// An update ([`Locked::commit`]) first writes `<registry>.journal` (the new registry, the
/// production path, the kept bundle and its sha256), then copies the bundle to production,
/// saves the registry and removes the journal. A run killed anywhere in between leaves the
/// journal; the next run ([`Locked::recover`], under the lock) finishes the update from it.
/// Every write is atomic, so each file is either the old or the new one.
pub struct Locked {
    _file: std::fs::File,
    registry: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    registry: Registry,
    production: PathBuf,
    bundle: PathBuf,
    sha256: String,
}

impl Locked {
    /// Take the lock of the registry at `path`, waiting for another run that holds it.
    pub fn take(path: &Path) -> Result<Self> {
        let lock_path = with_suffix(path, ".lock");
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        // flock(2) (std's File::lock needs Rust 1.89; the crate builds with Debian's 1.85).
        let fd = std::os::unix::io::AsRawFd::as_raw_fd(&file);
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock {
                return Err(Error::io(&lock_path, e));
            }
            tracing::info!(lock = %lock_path.display(), "another promote or rollback holds the registry; waiting");
            // SAFETY: as above; blocks until the other run releases it (or dies).
            if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
                return Err(Error::io(&lock_path, std::io::Error::last_os_error()));
            }
        }
        Ok(Locked { _file: file, registry: path.to_path_buf() })
    }

    fn journal(&self) -> PathBuf {
        with_suffix(&self.registry, ".journal")
    }

    /// Finish an update a killed run left half done. Returns whether there was one.
    pub fn recover(&self) -> Result<bool> {
        let path = self.journal();
        if !path.exists() {
            return Ok(false);
        }
        let journal: Journal = read_json(&path)?;
        tracing::warn!(journal = %path.display(), "an earlier promote or rollback was interrupted; finishing it");
        self.apply(&journal)?;
        Ok(true)
    }

    /// Make `registry` the registry and the bundle at `bundle` (whose sha256 is `sha256`)
    /// the production bundle at `production`, recoverably (see [`Locked`]).
    pub fn commit(&self, registry: &Registry, production: &Path, bundle: &Path, sha256: &str) -> Result<()> {
        let journal = Journal {
            registry: registry.clone(),
            production: production.to_path_buf(),
            bundle: bundle.to_path_buf(),
            sha256: sha256.to_owned(),
        };
        write_json(&self.journal(), &journal)?;
        crate::fault::kill_point("registry:journal-written");
        self.apply(&journal)
    }

    fn apply(&self, j: &Journal) -> Result<()> {
        let bytes = std::fs::read(&j.bundle).map_err(|e| Error::io(&j.bundle, e))?;
        let sha = crate::bundle::Bundle::from_bytes_identified(&bytes).map_err(|m| Error::artifact(&j.bundle, m))?;
        if sha != j.sha256 {
            return Err(Error::artifact(
                &j.bundle,
                format!(
                    "has sha256 {sha}, but the update journal {} records {}; the interrupted update cannot be finished (restore the bundle, or remove the journal to abandon the update)",
                    self.journal().display(),
                    j.sha256
                ),
            ));
        }
        atomic_write(&j.production, |f| std::io::Write::write_all(f, &bytes).map_err(|e| Error::io(&j.production, e)))?;
        crate::fault::kill_point("registry:production-written");
        j.registry.save(&self.registry)?;
        crate::fault::kill_point("registry:registry-written");
        let journal = self.journal();
        std::fs::remove_file(&journal).map_err(|e| Error::io(&journal, e))
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Current UTC time, RFC 3339.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The git revision of the working directory, or "unknown".
pub fn git_rev() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// md5 DVC recorded in `dvc.lock` for the ingest stage's `data` dependency, or "unknown".
pub fn data_hash(lock: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(lock) else { return "unknown".into() };
    let Ok(v) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) else { return "unknown".into() };
    v["stages"]["ingest"]["deps"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|d| d["path"].as_str() == Some("data"))
        .and_then(|d| d["md5"].as_str())
        .unwrap_or("unknown")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn rules(min_delta: f64) -> BTreeMap<String, Rule> {
        ["f1", "roc_auc", "recall"]
            .iter()
            .map(|m| (m.to_string(), Rule { min: Some(0.5), min_delta: Some(min_delta), min_rel_delta: None }))
            .collect()
    }

    #[test]
    fn property_worse_on_any_gated_metric_is_never_promoted_better_on_all_is() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
        for case in 0..20_000 {
            let min_delta: f64 = if case % 2 == 0 { 0.0 } else { rng.gen_range(0.0..0.02) };
            let r = rules(min_delta);
            let prod: BTreeMap<String, f64> = r.keys().map(|m| (m.clone(), rng.gen_range(0.5..0.98))).collect();
            // Worse on one gated metric (by more than nothing), anything on the others.
            let worse_on = rng.gen_range(0..r.len());
            let cand: BTreeMap<String, f64> = r
                .keys()
                .enumerate()
                .map(|(i, m)| {
                    let p = prod[m];
                    let v = if i == worse_on { p - rng.gen_range(1e-9..0.2) } else { rng.gen_range(0.0..1.0) };
                    (m.clone(), v)
                })
                .collect();
            assert!(!decide(&cand, Some(&prod), &r).promote, "case {case}: {cand:?} vs {prod:?}");
            // Better on every gated metric by more than min_delta (and so above the minimum).
            let better: BTreeMap<String, f64> =
                prod.iter().map(|(m, p)| (m.clone(), (p + min_delta + rng.gen_range(1e-9..0.02)).min(1.0))).collect();
            if better.iter().all(|(m, v)| v - prod[m] >= min_delta) {
                assert!(decide(&better, Some(&prod), &r).promote, "case {case}: {better:?} vs {prod:?}");
            }
        }
    }

    #[test]
    fn first_model_needs_only_the_minimums() {
        let r = rules(0.0);
        let good: BTreeMap<String, f64> = r.keys().map(|m| (m.clone(), 0.9)).collect();
        let d = decide(&good, None, &r);
        assert!(d.promote && d.first_model);
        let bad: BTreeMap<String, f64> = r.keys().map(|m| (m.clone(), 0.4)).collect();
        assert!(!decide(&bad, None, &r).promote);
    }

    #[test]
    fn the_relative_rule_asks_for_a_share_of_production() {
        // f1 must improve by at least 2% of production's value (and never get worse).
        let r = BTreeMap::from([("f1".to_string(), Rule { min: None, min_delta: None, min_rel_delta: Some(0.02) })]);
        let prod = BTreeMap::from([("f1".to_string(), 0.80)]);
        let at = |v: f64| decide(&BTreeMap::from([("f1".to_string(), v)]), Some(&prod), &r);
        assert!(at(0.8161).promote, "+2.01% passes");
        let d = at(0.8150);
        assert!(!d.promote, "+1.9% is short of 2%");
        assert!(d.reasons[0].contains("relative change") && d.reasons[0].contains("+0.02"), "{:?}", d.reasons);
        assert!(!at(0.79).promote);
        // A production value of 0: the relative change is 0, so a positive bar is not met.
        let zero = BTreeMap::from([("f1".to_string(), 0.0)]);
        assert!(!decide(&BTreeMap::from([("f1".to_string(), 0.5)]), Some(&zero), &r).promote);
    }
}
