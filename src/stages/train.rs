//! train: search the configured space with cross-validation on the training part only, refit
//! the winner on the whole training part, save the bundle and the leaderboard.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::artifact::{atomic_write, read_json, round, write_json};
use crate::bundle::Bundle;
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::metrics::choose_threshold;
use crate::output::markdown::Markdown;
use crate::output::{Format, Ranked, Ranking};
use crate::params::ParamsFile;
use crate::preprocess::Preprocessor;
use crate::schema::Schema;
use crate::search::{cross_validate, rank, CandidateResult, Plan, TrainParams, CV_METRICS};
use crate::validate::drift::Profile;
use crate::validate::reference::Reference;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "artifacts/features/train.parquet")]
    pub train: PathBuf,
    #[arg(long, default_value = "artifacts/preprocessor.json")]
    pub preprocessor: PathBuf,
    /// `validate`'s profile of the training part: carried in the bundle (with the
    /// out-of-fold score distribution) for `serve`'s drift monitoring. Without the file the
    /// model is saved without it, and served without drift monitoring.
    #[arg(long, default_value = "artifacts/profile.json")]
    pub profile: PathBuf,
    /// The model bundle (JSON).
    #[arg(long, default_value = "models/model.json")]
    pub model: PathBuf,
    /// Every candidate's CV scores (JSON; a Markdown table is written beside it).
    #[arg(long, default_value = "reports/leaderboard.json")]
    pub leaderboard: PathBuf,
    /// Worker threads for the cross-validation fits; 0 = one per core. The model is the same
    /// whatever the count.
    #[arg(long, env = "NETSEC_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Headline metrics (flat JSON, a few numbers: the columns of `dvc exp show`).
    #[arg(long, default_value = "metrics/train.json")]
    pub metrics: PathBuf,
    /// Every figure of the stage (flat JSON), the headline ones included.
    #[arg(long, default_value = "reports/train.json")]
    pub details: PathBuf,
}

#[derive(Debug, Serialize)]
struct Leaderboard<'a> {
    metric: &'static str,
    folds: usize,
    candidates: usize,
    search_seconds: f64,
    winner: &'a CandidateResult,
    ranking: &'a [CandidateResult],
}

/// The leaderboard as the output formats see it.
fn leaderboard_rows<'a>(board: &'a Leaderboard<'a>) -> Ranking<'a> {
    let rows = board
        .ranking
        .iter()
        .map(|r| Ranked {
            family: &r.family,
            params: r
                .params
                .as_object()
                .map_or(String::new(), |o| o.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")),
            scores: CV_METRICS.iter().map(|m| &r.scores[*m]).collect(),
            fit_seconds: r.fit_seconds,
            shared_fit: r.shared_fit,
        })
        .collect();
    Ranking { metric: board.metric, folds: board.folds, metrics: CV_METRICS, rows }
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<CandidateResult> {
    let dataset = Dataset::selected(params)?;
    let p: TrainParams = params.section("train")?;
    let p = Plan::resolve(&p, dataset.params.space.as_deref(), args.threads)
        .map_err(|m| Error::params(params.path(), format!("section `train`: {m}")))?;
    let cands = &p.candidates;
    let schema = Schema::load(&dataset.params.schema)?;
    let pre: Preprocessor = read_json(&args.preprocessor)?;
    let names = pre.feature_names();
    let (x, y) = super::read_features(&args.train, &names)?;

    let folds = p.folds;
    tracing::info!(candidates = cands.len(), folds, space = %p.space, metric = p.metric.name(), "searching on the training part");
    let started = Instant::now();
    let results = cross_validate(cands, x.view(), &y, folds, p.seed, p.threads)?;
    let search_seconds = started.elapsed().as_secs_f64();
    let ranking = rank(results, p.metric.name());
    let winner = ranking[0].clone();
    tracing::info!(family = %winner.family, score = winner.scores[p.metric.name()].mean, secs = search_seconds, "search done");

    let spec = &cands[winner.id];
    let threshold = choose_threshold(&winner.oof, &y, p.threshold);
    tracing::info!(threshold, policy = ?p.threshold, "decision threshold chosen on out-of-fold scores");
    let started = Instant::now();
    let model = spec.fit(x.view(), &y, p.seed)?;
    tracing::info!(rows = x.nrows(), secs = started.elapsed().as_secs_f64(), "winner refitted on the training part");

    let reference = if args.profile.exists() {
        let profile: Profile = read_json(&args.profile)?;
        Some(Reference::build(&profile, &winner.oof))
    } else {
        tracing::warn!(profile = %args.profile.display(), "no training profile: the model is saved without a drift reference (run validate first)");
        None
    };
    let bundle = Bundle {
        dataset: dataset.name.clone(),
        schema_hash: schema.hash(),
        target: schema.target.clone(),
        input: crate::data::Layout::from_schema(&schema),
        feature_names: names,
        preprocessor: pre,
        model,
        threshold,
        hyperparameters: spec.params_json(),
        params: params.section_json("train")?,
        cv: winner.scores.clone(),
        reference,
    };
    bundle.save(&args.model)?;

    let board = Leaderboard {
        metric: p.metric.name(),
        folds,
        candidates: cands.len(),
        search_seconds: round(search_seconds, 3),
        winner: &winner,
        ranking: &ranking,
    };
    write_json(&args.leaderboard, &board)?;
    let mut md = Vec::new();
    Markdown.write(&leaderboard_rows(&board), &mut md);
    let md_path = args.leaderboard.with_extension("md");
    atomic_write(&md_path, |f| std::io::Write::write_all(f, &md).map_err(|e| Error::io(&md_path, e)))?;

    let mut flat = flat_metrics(&winner, cands.len());
    flat.insert("threshold".into(), round(threshold, 4).into());
    super::write_metrics(&args.metrics, &args.details, &flat, &["cv_f1"])?;

    // MLflow (when MLFLOW_TRACKING_URI is set): params, CV metrics, the bundle, the leaderboard.
    crate::tracking::report(|| {
        let mut params_out = vec![
            ("dataset".to_owned(), dataset.name.clone()),
            ("family".to_owned(), winner.family.clone()),
            ("space".to_owned(), p.space.clone()),
            ("cv_folds".to_owned(), folds.to_string()),
            ("metric".to_owned(), p.metric.name().to_owned()),
            ("search".to_owned(), format!("{:?}", p.search).to_lowercase()),
            ("seed".to_owned(), p.seed.to_string()),
            ("threshold_policy".to_owned(), serde_json::to_string(&p.threshold).unwrap_or_default()),
        ];
        if let Some(hp) = bundle.hyperparameters.as_object() {
            params_out
                .extend(hp.iter().map(|(k, v)| (format!("model.{k}"), v.to_string().trim_matches('"').to_owned())));
        }
        Ok(crate::tracking::Report {
            dataset: dataset.name.clone(),
            model_sha256: bundle.content_sha256()?,
            run_name: format!("{} {}", dataset.name, winner.family),
            params: params_out,
            metrics: flat.iter().filter_map(|(k, v)| v.as_f64().map(|f| (k.clone(), f))).collect(),
            artifacts: vec![
                (format!("model/{}.json", dataset.name), args.model.clone()),
                ("leaderboard.md".to_owned(), md_path.clone()),
            ],
        })
    })?;
    Ok(winner)
}

/// The winner's CV scores, flat: `cv_<metric>` and `cv_<metric>_std`.
fn flat_metrics(winner: &CandidateResult, candidates: usize) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for name in CV_METRICS {
        let s = &winner.scores[*name];
        m.insert(format!("cv_{name}"), round(s.mean, 4).into());
        m.insert(format!("cv_{name}_std"), round(s.std, 4).into());
    }
    m.insert("candidates".into(), candidates.into());
    m
}
