//! validate: both parts against the dataset's schema, then drift of the test part against the
//! profile of the training part. The same checks run on a new batch in monitoring mode
//! (`--reference PROFILE --current FILE`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::artifact::{read_json, round, write_json};
use crate::data::{read_table, Layout, ParquetSource, Source};
use crate::error::{Error, Result};
use crate::params::ParamsFile;
use crate::schema::Schema;
use crate::validate::drift::{FeatureDrift, Profile};
use crate::validate::ValidateParams;
use crate::validate::{check_classes, check_frame, count_levels, Expect, Level, Violation};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "artifacts/split/train.parquet")]
    pub train: PathBuf,
    #[arg(long, default_value = "artifacts/split/test.parquet")]
    pub test: PathBuf,
    /// Every violation found (JSON).
    #[arg(long, default_value = "reports/validation.json")]
    pub report: PathBuf,
    /// Per-feature drift table (JSON).
    #[arg(long, default_value = "reports/drift.json")]
    pub drift: PathBuf,
    /// Profile of the training part, the reference for monitoring (JSON).
    #[arg(long, default_value = "artifacts/profile.json")]
    pub profile: PathBuf,
    /// Headline metrics (flat JSON, a few numbers: the columns of `dvc exp show`).
    #[arg(long, default_value = "metrics/validate.json")]
    pub metrics: PathBuf,
    /// Every figure of the stage (flat JSON), the headline ones included.
    #[arg(long, default_value = "reports/validate.json")]
    pub details: PathBuf,
    /// Monitoring mode: the training profile to compare against (e.g. artifacts/profile.json).
    #[arg(long, requires = "current")]
    pub reference: Option<PathBuf>,
    /// Monitoring mode: a new batch (CSV, Parquet or JSON Lines, gzip allowed); the target
    /// column is optional.
    #[arg(long, requires = "reference")]
    pub current: Option<PathBuf>,
    /// Monitoring mode: where the report goes (JSON).
    #[arg(long, default_value = "reports/monitor.json")]
    pub monitor_report: PathBuf,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    dataset: &'a str,
    schema_hash: String,
    errors: usize,
    warnings: usize,
    violations: &'a [Violation],
}

#[derive(Debug, Serialize)]
struct DriftReport<'a> {
    alpha: f64,
    correction: &'static str,
    reference_rows: usize,
    current_rows: usize,
    features: &'a [FeatureDrift],
}

#[derive(Debug, Serialize)]
struct MonitorReport<'a> {
    current: String,
    rows: usize,
    summary: &'a DriftSummary,
    violations: &'a [Violation],
    drift: DriftReport<'a>,
}

/// Flat summary of a drift table.
#[derive(Debug, Clone, Serialize)]
pub struct DriftSummary {
    pub violations_error: usize,
    pub violations_warning: usize,
    pub features_tested: usize,
    pub features_drifted: usize,
    pub max_psi: f64,
    pub min_p_adjusted: f64,
}

fn drift_violations(drift: &[FeatureDrift], p: &ValidateParams, part: &str) -> Vec<Violation> {
    drift
        .iter()
        .filter(|d| d.drifted)
        .map(|d| Violation {
            part: part.into(),
            column: d.column.clone(),
            rule: "drift".into(),
            level: if p.fail_on_drift { Level::Error } else { Level::Warning },
            expected: format!("{} p-value (BH-adjusted) >= {}", d.test, p.drift_alpha),
            found: format!("statistic {}, adjusted p {}, PSI {}", d.statistic, d.p_adjusted, d.psi),
            count: 0,
            rows: vec![],
        })
        .collect()
}

fn summarize(violations: &[Violation], drift: &[FeatureDrift]) -> DriftSummary {
    let levels = count_levels(violations);
    DriftSummary {
        violations_error: levels["errors"],
        violations_warning: levels["warnings"],
        features_tested: drift.len(),
        features_drifted: drift.iter().filter(|d| d.drifted).count(),
        max_psi: drift.iter().map(|d| d.psi).fold(0.0, f64::max),
        min_p_adjusted: drift.iter().map(|d| d.p_adjusted).fold(1.0, f64::min),
    }
}

fn rounded(mut drift: Vec<FeatureDrift>) -> Vec<FeatureDrift> {
    for d in &mut drift {
        d.statistic = round(d.statistic, 6);
        d.p_value = round(d.p_value, 6);
        d.p_adjusted = round(d.p_adjusted, 6);
        d.psi = round(d.psi, 6);
    }
    drift
}

/// Log warnings; turn error-level violations into the stage's error.
fn finish(violations: &[Violation], report: &Path) -> Result<()> {
    for v in violations.iter().filter(|v| v.level == Level::Warning) {
        tracing::warn!("{v}");
    }
    let errors: Vec<String> = violations.iter().filter(|v| v.level == Level::Error).map(|v| format!("  {v}")).collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(Error::Validation(format!(
        "{} violation{} (full report: {}):\n{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        report.display(),
        errors.join("\n")
    )))
}

/// Pipeline mode: the train and test parts of the configured dataset.
pub fn run(params: &ParamsFile, args: &Args) -> Result<DriftSummary> {
    let dataset = crate::data::dataset::Dataset::selected(params)?;
    let p: ValidateParams = params.section("validate")?;
    let schema = Schema::load(&dataset.params.schema)?;
    let opts = Layout::from_schema(&schema);
    let train = ParquetSource.read(&args.train, &opts)?;
    let test = ParquetSource.read(&args.test, &opts)?;

    let mut violations = check_frame(&schema, &train, "train", Expect::AllColumns);
    violations.extend(check_frame(&schema, &test, "test", Expect::AllColumns));
    for (name, df, path, level) in
        [("train", &train, &args.train, Level::Error), ("test", &test, &args.test, Level::Warning)]
    {
        if let Ok(labels) = super::labels(df, &schema, path) {
            violations.extend(check_classes(name, &labels, level, &schema.target.column));
        }
    }

    let profile = Profile::build(&dataset.name, &schema, &train);
    let drift = rounded(profile.compare(&test, p.drift_alpha));
    violations.extend(drift_violations(&drift, &p, "test"));
    let summary = summarize(&violations, &drift);

    write_json(
        &args.report,
        &Report {
            dataset: &dataset.name,
            schema_hash: schema.hash(),
            errors: summary.violations_error,
            warnings: summary.violations_warning,
            violations: &violations,
        },
    )?;
    let table = DriftReport {
        alpha: p.drift_alpha,
        correction: "benjamini-hochberg",
        reference_rows: train.height(),
        current_rows: test.height(),
        features: &drift,
    };
    write_json(&args.drift, &table)?;
    write_json(&args.profile, &profile)?;
    super::write_metrics(&args.metrics, &args.details, &summary, &["violations_error", "features_drifted"])?;
    finish(&violations, &args.report)?;
    tracing::info!(
        train = train.height(),
        test = test.height(),
        drifted = summary.features_drifted,
        max_psi = summary.max_psi,
        warnings = summary.violations_warning,
        "data valid"
    );
    Ok(summary)
}

/// Monitoring mode: a new batch against the stored training profile.
pub fn monitor(p: &ValidateParams, reference: &Path, current: &Path, report: &Path) -> Result<DriftSummary> {
    let profile: Profile = read_json(reference)?;
    let schema = &profile.schema;
    let df = read_table(current, None, &Layout::from_schema(schema))?;
    let part = current.display().to_string();
    let mut violations = check_frame(schema, &df, &part, Expect::Features);
    let drift = rounded(profile.compare(&df, p.drift_alpha));
    violations.extend(drift_violations(&drift, p, &part));
    let summary = summarize(&violations, &drift);
    let out = MonitorReport {
        current: part,
        rows: df.height(),
        summary: &summary,
        violations: &violations,
        drift: DriftReport {
            alpha: p.drift_alpha,
            correction: "benjamini-hochberg",
            reference_rows: profile.rows,
            current_rows: df.height(),
            features: &drift,
        },
    };
    write_json(report, &out)?;
    finish(&violations, report)?;
    tracing::info!(rows = df.height(), drifted = summary.features_drifted, max_psi = summary.max_psi, report = %report.display(), "batch checked");
    Ok(summary)
}
