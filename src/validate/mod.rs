//! Checking data against its schema. Every violation is collected (not just the first), with
//! the column, the rule, what was expected, what was found, how often and the first rows.

pub mod drift;
pub mod reference;
pub mod stats;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use polars_core::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{column_keys, source_rows, ROW};
use crate::params::{in_open_unit, Check};
use crate::schema::{ColumnSpec, ColumnType, Role, Schema};

/// How many offending rows a violation lists.
const MAX_ROWS: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateParams {
    /// Significance level of the per-feature drift tests, after the Benjamini-Hochberg
    /// correction across features.
    pub drift_alpha: f64,
    /// Treat drift as an error (non-zero exit) instead of a warning.
    #[serde(default)]
    pub fail_on_drift: bool,
}

impl Default for ValidateParams {
    fn default() -> Self {
        ValidateParams { drift_alpha: 0.01, fail_on_drift: false }
    }
}

impl Check for ValidateParams {
    fn check(&self) -> std::result::Result<(), String> {
        in_open_unit("drift_alpha", self.drift_alpha)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Stops the pipeline (non-zero exit).
    Error,
    /// Reported, does not stop anything.
    Warning,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Violation {
    /// Which file or part (`train`, `test`, a batch file name).
    pub part: String,
    pub column: String,
    pub rule: String,
    pub level: Level,
    pub expected: String,
    pub found: String,
    /// Offending cells or rows.
    pub count: usize,
    /// First offending rows, as row numbers of the source file.
    pub rows: Vec<i64>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: column `{}` [{}] expected {}, found {}",
            self.part, self.column, self.rule, self.expected, self.found
        )?;
        if self.count > 0 {
            write!(f, " in {} row{}", self.count, if self.count == 1 { "" } else { "s" })?;
        }
        if !self.rows.is_empty() {
            let rows: Vec<String> = self.rows.iter().map(i64::to_string).collect();
            let more = if self.count > self.rows.len() { ", ..." } else { "" };
            write!(f, " (rows {}{more})", rows.join(", "))?;
        }
        Ok(())
    }
}

/// Collects violations for one part.
struct Checker<'a> {
    part: &'a str,
    rows: Vec<i64>,
    out: Vec<Violation>,
}

impl Checker<'_> {
    #[allow(clippy::too_many_arguments)]
    fn add(&mut self, column: &str, rule: &str, level: Level, expected: String, found: String, hits: &[usize]) {
        self.out.push(Violation {
            part: self.part.to_owned(),
            column: column.to_owned(),
            rule: rule.to_owned(),
            level,
            expected,
            found,
            count: hits.len(),
            rows: hits.iter().take(MAX_ROWS).map(|&i| self.rows[i]).collect(),
        });
    }
}

/// Describe offending values: the first few distinct ones.
fn sample_values<'v>(values: impl Iterator<Item = &'v str>) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    let mut more = 0;
    for v in values {
        if distinct.contains(&v) {
            continue;
        }
        if distinct.len() < 5 {
            distinct.push(v);
        } else {
            more += 1;
        }
    }
    let mut s = distinct.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

/// Which columns a frame must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Every schema column (a labelled part of the dataset).
    AllColumns,
    /// The features only (a new, unlabelled batch to score or monitor).
    Features,
}

/// Check one part (a whole frame) against the schema.
pub fn check_frame(schema: &Schema, df: &DataFrame, part: &str, expect: Expect) -> Vec<Violation> {
    let mut c = Checker { part, rows: source_rows(df), out: Vec::new() };
    let present: Vec<String> = df.get_column_names().into_iter().map(|n| n.to_string()).filter(|n| n != ROW).collect();
    let present_set: HashSet<&str> = present.iter().map(String::as_str).collect();

    for spec in &schema.columns {
        let required = expect == Expect::AllColumns || matches!(spec.role, Role::Feature | Role::Input);
        if required && !present_set.contains(spec.name.as_str()) {
            let rule = if spec.role == Role::Target { "target_missing" } else { "missing_column" };
            c.add(&spec.name, rule, Level::Error, "the column to be present".into(), "no such column".into(), &[]);
        }
    }
    for name in &present {
        if schema.column(name).is_none() {
            c.add(
                name,
                "unexpected_column",
                Level::Error,
                "only the schema's columns".into(),
                "a column the schema does not list".into(),
                &[],
            );
        }
    }
    let expected_order: Vec<&str> =
        schema.columns.iter().map(|s| s.name.as_str()).filter(|n| present_set.contains(n)).collect();
    let actual_order: Vec<&str> = present.iter().map(String::as_str).filter(|n| schema.column(n).is_some()).collect();
    if schema.header && expected_order != actual_order {
        c.add("*", "column_order", Level::Warning, "the schema's column order".into(), "another order".into(), &[]);
    }

    for spec in &schema.columns {
        if let Ok(col) = df.column(&spec.name) {
            check_column(&mut c, spec, col);
        }
    }
    c.out
}

fn check_column(c: &mut Checker<'_>, spec: &ColumnSpec, col: &Column) {
    let name = spec.name.as_str();
    let keys = column_keys(col);

    let nulls: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].is_none()).collect();
    if !nulls.is_empty() && (!spec.nullable || spec.role == Role::Target) {
        c.add(name, "not_null", Level::Error, "a value in every row".into(), "empty cells or NaN".into(), &nulls);
    }

    // Type: what the column holds versus what the schema says.
    let mut numeric: Vec<Option<f64>> = vec![None; keys.len()];
    if spec.kind.is_numeric() {
        let mut bad = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let Some(key) = key else { continue };
            let parsed = match spec.kind {
                ColumnType::Integer => key.parse::<i64>().ok().map(|v| v as f64),
                _ => key.parse::<f64>().ok(),
            };
            match parsed {
                Some(v) => numeric[i] = Some(v),
                None => bad.push(i),
            }
        }
        if !bad.is_empty() {
            let found = sample_values(bad.iter().map(|&i| keys[i].as_deref().unwrap_or_default()));
            c.add(name, "type", Level::Error, format!("{} values", spec.kind), found, &bad);
        }
        let non_finite: Vec<usize> = (0..keys.len()).filter(|&i| numeric[i].is_some_and(|v| !v.is_finite())).collect();
        if !non_finite.is_empty() {
            c.add(name, "finite", Level::Error, "finite numbers".into(), "infinity".into(), &non_finite);
        }
    }

    if let Some(allowed) = &spec.allowed {
        let allowed: HashSet<String> = allowed.iter().map(|s| s.key()).collect();
        let bad: Vec<usize> =
            (0..keys.len()).filter(|&i| keys[i].as_ref().is_some_and(|k| !allowed.contains(k))).collect();
        if !bad.is_empty() {
            let mut expected: Vec<&String> = allowed.iter().collect();
            expected.sort();
            let expected = expected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            let found = sample_values(bad.iter().map(|&i| keys[i].as_deref().unwrap_or_default()));
            c.add(name, "allowed", Level::Error, format!("one of {{{expected}}}"), found, &bad);
        }
    }

    if spec.min.is_some() || spec.max.is_some() {
        let lo = spec.min.unwrap_or(f64::NEG_INFINITY);
        let hi = spec.max.unwrap_or(f64::INFINITY);
        let bad: Vec<usize> = (0..keys.len()).filter(|&i| numeric[i].is_some_and(|v| v < lo || v > hi)).collect();
        if !bad.is_empty() {
            let found = sample_values(bad.iter().map(|&i| keys[i].as_deref().unwrap_or_default()));
            c.add(name, "range", Level::Error, format!("values in [{lo}, {hi}]"), found, &bad);
        }
    }
}

/// Both classes must be present where a model is fitted; a test part with one class only
/// makes several metrics meaningless.
pub fn check_classes(part: &str, labels: &[bool], level: Level, target: &str) -> Option<Violation> {
    let threats = labels.iter().filter(|&&t| t).count();
    if threats > 0 && threats < labels.len() {
        return None;
    }
    let only = if threats == 0 { "benign" } else { "threat" };
    Some(Violation {
        part: part.to_owned(),
        column: target.to_owned(),
        rule: "both_classes".into(),
        level,
        expected: "threat and benign rows".into(),
        found: format!("only {only} rows"),
        count: 0,
        rows: vec![],
    })
}

/// Counts by level, for flat metrics.
pub fn count_levels(violations: &[Violation]) -> BTreeMap<&'static str, usize> {
    let errors = violations.iter().filter(|v| v.level == Level::Error).count();
    BTreeMap::from([("errors", errors), ("warnings", violations.len() - errors)])
}
