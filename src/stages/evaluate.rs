//! evaluate: score the held-out test part with the saved bundle, at the bundle's threshold
//! (chosen on the training part); write flat metrics and the data of four charts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::artifact::{round, write_json};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::metrics::{average_precision, log_loss, roc_auc, roc_curve, thin_curve, Confusion, RocPoint};
use crate::models::Classifier;
use crate::params::{Check, ParamsFile};
use crate::schema::Schema;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateParams {
    /// Features shown in the importance chart.
    pub importance_top: usize,
}

impl Check for EvaluateParams {
    fn check(&self) -> std::result::Result<(), String> {
        if self.importance_top == 0 {
            return Err("`importance_top` must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "artifacts/features/test.parquet")]
    pub test: PathBuf,
    #[arg(long, default_value = "models/model.json")]
    pub model: PathBuf,
    /// The test part as ingest wrote it (for the schema's `target.detail` column).
    #[arg(long, default_value = "artifacts/split/test.parquet")]
    pub split_test: PathBuf,
    /// Recall per value of `target.detail` (such as `detailedlabel`): which kinds of threat
    /// the model catches, and how many of each benign kind it flags.
    #[arg(long, default_value = "reports/eval_by_detail.json")]
    pub by_detail: PathBuf,
    /// Headline metrics (flat JSON, a few numbers: the columns of `dvc exp show`).
    #[arg(long, default_value = "metrics/eval.json")]
    pub metrics: PathBuf,
    /// Every figure of the stage (flat JSON), the headline ones included.
    #[arg(long, default_value = "reports/eval.json")]
    pub details: PathBuf,
    /// Folder of the chart data for `dvc plots` (roc.json, pr.json, confusion.json,
    /// importance.json).
    #[arg(long, default_value = "plots")]
    pub plots: PathBuf,
}

/// The metrics file: which dataset, then the figures.
#[derive(Serialize)]
struct Labeled<'a> {
    dataset: &'a str,
    #[serde(flatten)]
    metrics: &'a EvalMetrics,
}

/// Test metrics for the threat class at the bundle's threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalMetrics {
    pub threshold: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub balanced_accuracy: f64,
    pub mcc: f64,
    pub log_loss: f64,
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl EvalMetrics {
    pub fn compute(scores: &[f64], y: &[bool], threshold: f64) -> Self {
        let c = Confusion::at(scores, y, threshold);
        EvalMetrics {
            threshold: round(threshold, 4),
            accuracy: round(c.accuracy(), 4),
            precision: round(c.precision(), 4),
            recall: round(c.recall(), 4),
            f1: round(c.f1(), 4),
            roc_auc: round(roc_auc(scores, y), 4),
            pr_auc: round(average_precision(scores, y), 4),
            balanced_accuracy: round(c.balanced_accuracy(), 4),
            mcc: round(c.mcc(), 4),
            log_loss: round(log_loss(scores, y), 4),
            tp: c.tp,
            fp: c.fp,
            tn: c.tn,
            fn_: c.fn_,
        }
    }

    /// A metric by name (for the promotion gate).
    pub fn get(&self, name: &str) -> Option<f64> {
        let v = serde_json::to_value(self).ok()?;
        v.get(name)?.as_f64()
    }
}

#[derive(Serialize)]
struct Curve<T> {
    points: Vec<T>,
}

#[derive(Serialize)]
struct PrPoint {
    recall: f64,
    precision: f64,
}

#[derive(Serialize)]
struct Cell {
    actual: &'static str,
    predicted: &'static str,
}

#[derive(Serialize)]
struct Importance<'a> {
    feature: &'a str,
    importance: f64,
}

fn class(threat: bool) -> &'static str {
    if threat {
        "threat"
    } else {
        "benign"
    }
}

/// Figures for one value of the detail column.
#[derive(Serialize)]
struct DetailRow {
    value: String,
    rows: usize,
    threats: usize,
    /// Threat rows of this value scored as threats / threat rows (absent without threats).
    recall: Option<f64>,
    /// Rows of this value scored as threats / rows.
    flagged_share: f64,
}

#[derive(Serialize)]
struct DetailReport {
    column: Option<String>,
    values: Vec<DetailRow>,
}

/// Recall per value of the schema's `target.detail` column, on the test part.
fn by_detail(
    schema: &Schema,
    split_test: &std::path::Path,
    scores: &[f64],
    y: &[bool],
    t: f64,
) -> Result<DetailReport> {
    let Some(column) = &schema.target.detail else { return Ok(DetailReport { column: None, values: Vec::new() }) };
    let df = crate::data::read_parquet(split_test)?;
    if df.height() != scores.len() {
        return Err(Error::artifact(split_test, "has another number of rows than the test features: re-run transform"));
    }
    let col = df
        .column(column)
        .map_err(|_| Error::artifact(split_test, format!("target.detail column `{column}` is missing")))?;
    let mut groups: std::collections::BTreeMap<String, (usize, usize, usize, usize)> = Default::default();
    for (i, key) in crate::data::column_keys(col).into_iter().enumerate() {
        let value = match key.as_deref() {
            None => "(missing)".to_owned(),
            Some("") => "(empty)".to_owned(),
            Some(k) => k.to_owned(),
        };
        let g = groups.entry(value).or_default();
        let flagged = crate::metrics::is_threat(scores[i], t);
        g.0 += 1;
        g.1 += usize::from(y[i]);
        g.2 += usize::from(y[i] && flagged);
        g.3 += usize::from(flagged);
    }
    let values = groups
        .into_iter()
        .map(|(value, (rows, threats, caught, flagged))| DetailRow {
            value,
            rows,
            threats,
            recall: (threats > 0).then(|| round(caught as f64 / threats as f64, 4)),
            flagged_share: round(flagged as f64 / rows as f64, 4),
        })
        .collect();
    Ok(DetailReport { column: Some(column.clone()), values })
}

/// Load a bundle and check it was trained under this schema.
pub fn load_bundle(path: &std::path::Path, schema: &Schema) -> Result<Bundle> {
    let bundle = Bundle::load(path)?;
    if bundle.schema_hash != schema.hash() {
        return Err(Error::artifact(
            path,
            format!("was trained under another version of schema `{}`: re-run train", schema.name),
        ));
    }
    Ok(bundle)
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<EvalMetrics> {
    let dataset = crate::data::dataset::Dataset::selected(params)?;
    let p: EvaluateParams = params.section("evaluate")?;
    let schema = Schema::load(&dataset.params.schema)?;
    let bundle = load_bundle(&args.model, &schema)?;
    let (x, y) = super::read_features(&args.test, &bundle.feature_names)?;
    let scores = bundle.model.predict_proba(x.view()).to_vec();
    let metrics = EvalMetrics::compute(&scores, &y, bundle.threshold);
    super::write_metrics(
        &args.metrics,
        &args.details,
        &Labeled { dataset: &bundle.dataset, metrics: &metrics },
        &["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"],
    )?;
    write_json(&args.by_detail, &by_detail(&schema, &args.split_test, &scores, &y, bundle.threshold)?)?;

    let roc: Vec<RocPoint> = thin_curve(roc_curve(&scores, &y), 0.005)
        .into_iter()
        .map(|pt| RocPoint { threshold: round(pt.threshold.min(1.0), 6), fpr: round(pt.fpr, 6), tpr: round(pt.tpr, 6) })
        .collect();
    write_json(&args.plots.join("roc.json"), &Curve { points: roc })?;
    // Precision-recall from the same sweep: precision = tp / (tp + fp).
    let pos = y.iter().filter(|&&t| t).count() as f64;
    let neg = y.len() as f64 - pos;
    let pr: Vec<PrPoint> = thin_curve(roc_curve(&scores, &y), 0.005)
        .into_iter()
        .filter(|pt| pt.tpr > 0.0)
        .map(|pt| {
            let (tp, fp) = (pt.tpr * pos, pt.fpr * neg);
            PrPoint { recall: round(pt.tpr, 6), precision: round(tp / (tp + fp), 6) }
        })
        .collect();
    write_json(&args.plots.join("pr.json"), &Curve { points: pr })?;
    let cells: Vec<Cell> = scores
        .iter()
        .zip(&y)
        .map(|(&s, &t)| Cell { actual: class(t), predicted: class(s >= bundle.threshold) })
        .collect();
    write_json(&args.plots.join("confusion.json"), &Curve { points: cells })?;
    let imp = bundle.model.feature_importance();
    let mut ranked: Vec<Importance<'_>> = bundle
        .feature_names
        .iter()
        .zip(&imp)
        .map(|(f, &v)| Importance { feature: f, importance: round(v, 6) })
        .collect();
    ranked.sort_by(|a, b| b.importance.total_cmp(&a.importance).then(a.feature.cmp(b.feature)));
    ranked.truncate(p.importance_top);
    write_json(&args.plots.join("importance.json"), &Curve { points: ranked })?;

    tracing::info!(
        accuracy = metrics.accuracy,
        f1 = metrics.f1,
        roc_auc = metrics.roc_auc,
        threshold = metrics.threshold,
        "evaluated on the test part"
    );
    // MLflow (when configured): the test metrics, on the run train opened for this model.
    crate::tracking::report(|| {
        let test_metrics = serde_json::to_value(&metrics).map_err(|e| Error::Model(e.to_string()))?;
        Ok(crate::tracking::Report {
            dataset: bundle.dataset.clone(),
            model_sha256: bundle.content_sha256()?,
            run_name: format!("{} evaluate", bundle.dataset),
            metrics: test_metrics
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| v.as_f64().map(|f| (format!("test_{k}"), f)))
                .collect(),
            artifacts: vec![("eval.json".to_owned(), args.details.clone())],
            ..Default::default()
        })
    })?;
    Ok(metrics)
}
