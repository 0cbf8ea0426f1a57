//! validate: both parts against the dataset's schema, then per-feature drift, train vs test.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use crate::artifact::{round, write_json};
use crate::data::ParquetSource;
use crate::data::{ReadOptions, Source};
use crate::error::{Error, Result};
use crate::params::{ParamsFile, ValidateParams};
use crate::schema::Schema;
use crate::validate::drift::{ks_2samp, FeatureDrift};
use crate::validate::{check_classes, check_frame, count_levels, Level, Violation};

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
    /// Flat metrics (JSON).
    #[arg(long, default_value = "metrics/validate.json")]
    pub metrics: PathBuf,
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
    features: &'a [FeatureDrift],
}

#[derive(Debug, Clone, Serialize)]
pub struct ValidateMetrics {
    pub violations_error: usize,
    pub violations_warning: usize,
    pub features_tested: usize,
    pub features_drifted: usize,
    pub max_ks_statistic: f64,
}

fn read_part(path: &Path, schema: &Schema) -> Result<DataFrame> {
    ParquetSource.read(path, &ReadOptions::from_schema(schema))
}

/// Numeric values of a feature, when the column is numeric.
fn numeric_values(df: &DataFrame, name: &str) -> Option<Vec<f64>> {
    let col = df.column(name).ok()?;
    match col.dtype() {
        DataType::Int64 => Some(col.i64().ok()?.into_no_null_iter().map(|v| v as f64).collect()),
        DataType::Float64 => Some(col.f64().ok()?.iter().flatten().filter(|v| v.is_finite()).collect()),
        _ => None,
    }
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<ValidateMetrics> {
    let dataset = params.dataset()?;
    let p: ValidateParams = params.section("validate")?;
    let schema = Schema::load(&dataset.params.schema)?;
    let train = read_part(&args.train, &schema)?;
    let test = read_part(&args.test, &schema)?;

    let mut violations = check_frame(&schema, &train, "train");
    violations.extend(check_frame(&schema, &test, "test"));
    for (name, df, path, level) in [("train", &train, &args.train, Level::Error), ("test", &test, &args.test, Level::Warning)] {
        if let Ok(labels) = super::labels(df, &schema, path) {
            violations.extend(check_classes(name, &labels, level, &schema.target.column));
        }
    }

    let mut drift = Vec::new();
    for spec in schema.features().filter(|c| c.kind.is_numeric()) {
        let (Some(a), Some(b)) = (numeric_values(&train, &spec.name), numeric_values(&test, &spec.name)) else {
            continue;
        };
        let (statistic, p_value) = ks_2samp(&a, &b);
        drift.push(FeatureDrift {
            column: spec.name.clone(),
            test: "ks".into(),
            statistic: round(statistic, 6),
            p_value: round(p_value, 6),
            drifted: p_value < p.drift_alpha,
        });
    }
    let drifted: Vec<&FeatureDrift> = drift.iter().filter(|d| d.drifted).collect();
    for d in &drifted {
        violations.push(Violation {
            part: "test".into(),
            column: d.column.clone(),
            rule: "drift".into(),
            level: if p.fail_on_drift { Level::Error } else { Level::Warning },
            expected: format!("KS p-value >= {}", p.drift_alpha),
            found: format!("D = {}, p = {}", d.statistic, d.p_value),
            count: 0,
            rows: vec![],
        });
    }

    let levels = count_levels(&violations);
    let (errors, warnings) = (levels["errors"], levels["warnings"]);
    write_json(
        &args.report,
        &Report { dataset: &dataset.name, schema_hash: schema.hash(), errors, warnings, violations: &violations },
    )?;
    write_json(&args.drift, &DriftReport { alpha: p.drift_alpha, features: &drift })?;
    let metrics = ValidateMetrics {
        violations_error: errors,
        violations_warning: warnings,
        features_tested: drift.len(),
        features_drifted: drifted.len(),
        max_ks_statistic: drift.iter().map(|d| d.statistic).fold(0.0, f64::max),
    };
    write_json(&args.metrics, &metrics)?;

    for v in violations.iter().filter(|v| v.level == Level::Warning) {
        tracing::warn!("{v}");
    }
    if errors > 0 {
        let lines: Vec<String> = violations.iter().filter(|v| v.level == Level::Error).map(|v| format!("  {v}")).collect();
        return Err(Error::Validation(format!(
            "{errors} schema violation{} (full report: {}):\n{}",
            if errors == 1 { "" } else { "s" },
            args.report.display(),
            lines.join("\n")
        )));
    }
    tracing::info!(
        train = train.height(),
        test = test.height(),
        drifted = metrics.features_drifted,
        warnings,
        "data valid"
    );
    Ok(metrics)
}
