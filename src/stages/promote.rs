//! promote: the gate between a trained candidate and production. Both are scored on the same
//! test part; the candidate replaces production only if every configured rule passes. The
//! first model of a dataset is promoted (if it meets the minimums). Every decision is
//! recorded in the registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::evaluate::{load_bundle, EvalMetrics};
use crate::artifact::{atomic_write, round};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::models::Classifier;
use crate::params::ParamsFile;
use crate::registry::PromoteParams;
use crate::registry::{self, decide, Locked, Registry, Status, Version, GATED};
use crate::schema::{hex, Schema};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "models/model.json")]
    pub candidate: PathBuf,
    #[arg(long, default_value = "artifacts/features/test.parquet")]
    pub test: PathBuf,
    #[arg(long, default_value = "models/registry.json")]
    pub registry: PathBuf,
    /// Folder of the production bundles, one per dataset: `<dir>/<dataset>.json`.
    #[arg(long, default_value = "models/production")]
    pub production: PathBuf,
    /// Folder of every promoted bundle, kept for rollback: `<dir>/<id>.json`.
    #[arg(long, default_value = "models/versions")]
    pub versions: PathBuf,
    #[arg(long, default_value = "dvc.lock")]
    pub lock: PathBuf,
    /// Headline metrics (flat JSON, a few numbers: the columns of `dvc exp show`).
    #[arg(long, default_value = "metrics/promote.json")]
    pub metrics: PathBuf,
    /// Every figure of the stage (flat JSON), the headline ones included.
    #[arg(long, default_value = "reports/promote.json")]
    pub details: PathBuf,
    /// Also publish the production bundle to this S3 prefix (`s3://bucket/prefix`) as
    /// `<prefix>/<dataset>.json`, with its SHA-256 as object metadata, for serving replicas to
    /// fetch. Endpoint and credentials from AWS_ENDPOINT_URL, AWS_DEFAULT_REGION,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. Published when promoted, and again when the
    /// candidate already serves (so a failed upload is retried by the next run).
    #[arg(long, env = "NETSEC_PUBLISH", value_name = "S3_URL")]
    pub publish: Option<String>,
}

fn gated(m: &EvalMetrics) -> BTreeMap<String, f64> {
    GATED.iter().filter_map(|k| m.get(k).map(|v| (k.to_string(), v))).collect()
}

fn score(bundle: &Bundle, test: &Path) -> Result<EvalMetrics> {
    let (x, y) = super::read_features(test, &bundle.feature_names)?;
    Ok(EvalMetrics::compute(&bundle.model.predict_proba(x.view()).to_vec(), &y, bundle.threshold))
}

fn copy_bytes(bytes: &[u8], to: &Path) -> Result<()> {
    atomic_write(to, |f| std::io::Write::write_all(f, bytes).map_err(|e| Error::io(to, e)))
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<registry::Decision> {
    let dataset = crate::data::dataset::Dataset::selected(params)?;
    let p: PromoteParams = params.section("promote")?;
    let schema = Schema::load(&dataset.params.schema)?;
    let candidate = load_bundle(&args.candidate, &schema)?;
    let bytes = std::fs::read(&args.candidate).map_err(|e| Error::io(&args.candidate, e))?;
    let (_, sha) = Bundle::load_identified(&args.candidate)?;
    let cand_metrics = score(&candidate, &args.test)?;
    // One update of the registry at a time; an update a killed run left half done is
    // finished first (see `registry::Locked`).
    let lock = Locked::take(&args.registry)?;
    lock.recover()?;
    let mut reg = Registry::load(&args.registry)?;
    let production_path = args.production.join(format!("{}.json", dataset.name));

    // The production model, scored now on the same test part (if it fits this schema).
    let production = match reg.production(&dataset.name) {
        Some(v) if v.bundle_sha256 == sha => {
            tracing::info!(version = %v.id, "the candidate is already in production");
            let decision = registry::Decision {
                promote: false,
                first_model: false,
                deltas: BTreeMap::new(),
                reasons: vec!["already in production".into()],
            };
            write_flat(args, &decision, true)?;
            drop(lock);
            publish(args, &dataset.name, &production_path, &v.id.clone())?;
            return Ok(decision);
        }
        Some(v) => {
            let (prod, prod_sha) = Bundle::load_identified(&production_path)?;
            if prod_sha != v.bundle_sha256 {
                return Err(Error::artifact(
                    &production_path,
                    format!("is not the bundle the registry records for {} (sha256 differs)", v.id),
                ));
            }
            if prod.schema_hash == candidate.schema_hash && prod.feature_names == candidate.feature_names {
                Some((v.id.clone(), score(&prod, &args.test)?))
            } else {
                tracing::warn!(version = %v.id, "production was trained under another schema: the gate applies the minimums only");
                None
            }
        }
        None => None,
    };
    let rolled_back = reg.versions.iter().any(|v| v.bundle_sha256 == sha && v.status == Status::RolledBack);
    let prod_gated = production.as_ref().map(|(_, m)| gated(m));
    let mut decision = decide(&gated(&cand_metrics), prod_gated.as_ref(), &p.rules);
    if rolled_back {
        decision.promote = false;
        decision.reasons = vec!["this bundle was rolled back before; it is not promoted again".into()];
    }

    let id = reg.next_id();
    let mut params_json = ["dataset", "ingest", "validate", "transform", "train"]
        .iter()
        .map(|k| params.section_json(k).map(|v| (k.to_string(), v)))
        .collect::<std::result::Result<BTreeMap<_, _>, _>>()?;
    params_json.insert("data".into(), serde_json::to_value(&dataset.params).expect("dataset params serialize"));
    let params_hash = hex(&Sha256::digest(serde_json::to_vec(&params_json).expect("params serialize")));
    let mut version = Version {
        id: id.clone(),
        dataset: dataset.name.clone(),
        created: registry::now(),
        status: Status::Rejected,
        family: candidate.model.family().into(),
        bundle_sha256: sha,
        params_hash,
        data_hash: registry::data_hash(&args.lock),
        git_rev: registry::git_rev(),
        metrics: gated(&cand_metrics),
        bundle: None,
        decision: decision.reasons.clone(),
    };
    if decision.promote {
        let kept = args.versions.join(format!("{id}.json"));
        copy_bytes(&bytes, &kept)?;
        crate::fault::kill_point("promote:kept-written");
        for v in reg.versions.iter_mut().filter(|v| v.dataset == dataset.name && v.status == Status::Production) {
            v.status = Status::Archived;
        }
        version.status = Status::Production;
        version.bundle = Some(kept.clone());
        let sha = version.bundle_sha256.clone();
        reg.versions.push(version);
        lock.commit(&reg, &production_path, &kept, &sha)?;
    } else {
        reg.versions.push(version);
        reg.save(&args.registry)?;
    }

    write_flat(args, &decision, decision.promote)?;
    if decision.promote {
        tracing::info!(version = %id, against = ?production.as_ref().map(|(v, _)| v), "promoted to production: {}", decision.reasons.join("; "));
        publish(args, &dataset.name, &production_path, &id)?;
    } else {
        tracing::warn!(version = %id, "not promoted: {}", decision.reasons.join("; "));
    }
    Ok(decision)
}

/// Upload the production bundle to `--publish` (if given): `<prefix>/<dataset>.json`, with
/// metadata `sha256` (of the file's bytes, what a replica checks after download),
/// `bundle-sha256` (the bundle's own checksum: its version) and `registry-version`.
fn publish(args: &Args, dataset: &str, production: &Path, version: &str) -> Result<()> {
    let Some(url) = &args.publish else { return Ok(()) };
    let fail = |message: String| Error::Remote { url: url.clone(), message };
    let remote = crate::remote::Remote { name: "--publish".into(), url: url.clone(), ..Default::default() };
    let (loc, creds) = crate::remote::s3_of(&remote)?;
    let creds = creds.ok_or_else(|| fail("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()))?;
    let bytes = std::fs::read(production).map_err(|e| Error::io(production, e))?;
    let (_, bundle_sha) = Bundle::load_identified(production)?;
    let sha = hex(&Sha256::digest(&bytes));
    let key = loc.key(&format!("{dataset}.json"));
    let meta = [("sha256", sha.as_str()), ("bundle-sha256", bundle_sha.as_str()), ("registry-version", version)];
    let answer = crate::s3::put(&loc, &creds, &key, &bytes, "application/json", &meta)
        .map_err(|e| fail(format!("cannot reach {}: {e}", loc.endpoint)))?;
    if answer.status != 200 {
        return Err(fail(format!(
            "publishing {} refused: HTTP {} {} (access key `{}`); the model is promoted locally, re-run promote to publish",
            production.display(),
            answer.status,
            answer.code().unwrap_or(""),
            creds.access_key
        )));
    }
    tracing::info!(object = %format!("s3://{}/{key}", loc.bucket), sha256 = %sha, "production bundle published");
    Ok(())
}

/// Flat metrics of a decision: promoted, first model, whether the candidate now serves, deltas.
fn write_flat(args: &Args, decision: &registry::Decision, in_production: bool) -> Result<()> {
    let mut flat = serde_json::Map::new();
    flat.insert("promoted".into(), u8::from(decision.promote).into());
    flat.insert("first_model".into(), u8::from(decision.first_model).into());
    flat.insert("in_production".into(), u8::from(in_production).into());
    for (m, d) in &decision.deltas {
        flat.insert(format!("delta_{m}"), round(*d, 4).into());
    }
    super::write_metrics(&args.metrics, &args.details, &flat, &["promoted"])
}

/// Put the previous production model of the configured dataset back.
/// What `rollback` reads and writes (the registry and the production folder, nothing else).
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    #[arg(long, default_value = "models/registry.json")]
    pub registry: PathBuf,
    /// Folder of the production bundles, one per dataset: `<dir>/<dataset>.json`.
    #[arg(long, default_value = "models/production")]
    pub production: PathBuf,
}

pub fn rollback(params: &ParamsFile, args: &RollbackArgs) -> Result<Version> {
    let dataset = crate::data::dataset::Dataset::selected(params)?;
    let lock = Locked::take(&args.registry)?;
    lock.recover()?;
    let mut reg = Registry::load(&args.registry)?;
    let production = args.production.join(format!("{}.json", dataset.name));
    let (restored, bundle) = reg.rollback(&dataset.name, &production)?;
    lock.commit(&reg, &production, &bundle, &restored.bundle_sha256)?;
    tracing::info!(version = %restored.id, dataset = %dataset.name, "rolled back");
    Ok(restored)
}
