//! Preprocessing fitted on the training part only, then applied to any data: imputation of
//! missing numeric values, and one-hot or ordinal encoding of categorical features. A
//! category never seen in training is encoded as "none of the known ones" and counted, so a
//! new value in production data never crashes scoring.

use std::collections::BTreeMap;

use ndarray::Array2;
use polars_core::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{column_keys, source_rows};
use crate::error::{Error, Result};
use crate::features::{Derivation, Kind, Value};
use crate::params::Check;
use crate::schema::{float_key, ColumnType, Schema};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImputeStrategy {
    Median,
    Mean,
    MostFrequent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformParams {
    pub impute: ImputeStrategy,
    /// How categorical features become numbers (fitted on the training part only).
    #[serde(default)]
    pub encode: Encoding,
}

/// Encoding of categorical features.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One 0/1 feature per category seen in training; an unseen category sets none of them.
    #[default]
    OneHot,
    /// One feature holding the category's index (categories sorted); unseen categories get -1.
    Ordinal,
}

impl Check for TransformParams {}

/// What to do with one raw feature column. Numeric steps serialize as `{name, fill}` (the
/// form bundles had before encoders existed, so older bundles still load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeatureStep {
    Numeric {
        name: String,
        /// Value substituted for a missing cell (a statistic of the training part).
        fill: f64,
    },
    Categorical {
        name: String,
        encoding: Encoding,
        /// The categories seen in training, sorted; a category's index is its code.
        categories: Vec<String>,
    },
}

pub use crate::features::Raw;

/// Value of an unseen (or missing) category under ordinal encoding: below every learned code.
pub const UNSEEN_CODE: f64 = -1.0;

impl FeatureStep {
    /// The raw column this step reads.
    pub fn name(&self) -> &str {
        match self {
            FeatureStep::Numeric { name, .. } | FeatureStep::Categorical { name, .. } => name,
        }
    }

    pub fn is_categorical(&self) -> bool {
        matches!(self, FeatureStep::Categorical { .. })
    }

    /// How many model features the step produces.
    pub fn width(&self) -> usize {
        match self {
            FeatureStep::Categorical { encoding: Encoding::OneHot, categories, .. } => categories.len(),
            _ => 1,
        }
    }

    /// Names of the model features the step produces: the column's own name, or
    /// `column=category` per one-hot category.
    pub fn output_names(&self) -> Vec<String> {
        match self {
            FeatureStep::Categorical { name, encoding: Encoding::OneHot, categories } => {
                categories.iter().map(|c| format!("{name}={c}")).collect()
            }
            _ => vec![self.name().to_owned()],
        }
    }

    /// Encode one raw value into `out` (exactly [`Self::width`] values). `Ok(true)` means the
    /// value was a category never seen in training: it is encoded as "none of the known ones"
    /// (all one-hot columns 0, or [`UNSEEN_CODE`]), never an error.
    pub fn encode(&self, raw: Raw<'_>, out: &mut [f64]) -> std::result::Result<bool, String> {
        match self {
            FeatureStep::Numeric { fill, .. } => {
                out[0] = match raw {
                    Raw::Missing => *fill,
                    Raw::Number(v) if v.is_finite() => v,
                    Raw::Number(_) => return Err("not a finite number".into()),
                    Raw::Text(t) => match parse_number(t) {
                        Some(v) if v.is_finite() => v,
                        _ => return Err(format!("expected a number, found {t:?}")),
                    },
                };
                Ok(false)
            }
            FeatureStep::Categorical { encoding, categories, .. } => {
                let number;
                let key = match raw {
                    Raw::Missing => None,
                    Raw::Text(t) => Some(t.trim()),
                    Raw::Number(v) => {
                        number = float_key(v);
                        Some(number.as_str())
                    }
                };
                let code = key.and_then(|k| find_category(categories, k));
                match encoding {
                    Encoding::OneHot => {
                        out.fill(0.0);
                        if let Some(i) = code {
                            out[i] = 1.0;
                        }
                    }
                    Encoding::Ordinal => out[0] = code.map_or(UNSEEN_CODE, |i| i as f64),
                }
                Ok(key.is_some() && code.is_none())
            }
        }
    }
}

/// The index of `key` among sorted `categories`. Compares the first bytes before the whole
/// strings: most comparisons end there, without a call to `memcmp`.
fn find_category(categories: &[String], key: &str) -> Option<usize> {
    let k = key.as_bytes();
    categories
        .binary_search_by(|c| {
            let c = c.as_bytes();
            match c.first().cmp(&k.first()) {
                std::cmp::Ordering::Equal => c.cmp(k),
                other => other,
            }
        })
        .ok()
}

/// A number from text, as `str::parse::<f64>` reads it. Short integers, which most security
/// features are (flags, counts, ports), take a faster path that gives the same value.
fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.len() <= 15 {
        if let Ok(i) = t.parse::<i64>() {
            // `-0` is the float -0.0, as `parse::<f64>` has it.
            return Some(if i == 0 && t.starts_with('-') { -0.0 } else { i as f64 });
        }
    }
    crate::data::number::parse_f64(t)
}

/// What encoding a part of the data involved, for the transform metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodeStats {
    /// Missing numeric cells replaced by the training statistic.
    pub imputed: usize,
    /// Cells holding a category never seen in training, per column.
    pub unseen: BTreeMap<String, usize>,
    /// Rows with at least one unseen category.
    pub unseen_rows: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub impute: ImputeStrategy,
    pub features: Vec<FeatureStep>,
    /// Features derived from raw fields (the schema's `derive:`), computed before the steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derive: Vec<Derivation>,
    /// The schema's domain of numeric input columns (`allowed`, `min`, `max`): a value outside
    /// it is still scored, and reported (or refused in strict mode). Absent in bundles
    /// written before; an empty map is not written, so those re-serialize byte for byte.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub domains: std::collections::BTreeMap<String, Domain>,
    #[serde(skip)]
    plan: PlanCell,
}

/// The values a numeric column may take, from the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Domain {
    /// Whether `v` is inside the domain (the fast check; [`Self::refuses`] says why not).
    #[inline]
    pub fn admits(&self, v: f64) -> bool {
        let listed = match &self.allowed {
            Some(a) => a.contains(&v),
            None => true,
        };
        listed && self.min.is_none_or(|lo| v >= lo) && self.max.is_none_or(|hi| v <= hi)
    }

    /// Why `v` is outside the domain, or `None`.
    pub fn refuses(&self, v: f64) -> Option<String> {
        if let Some(allowed) = &self.allowed {
            if !allowed.contains(&v) {
                let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                return Some(format!("{v} is not one of the schema's values ({})", list.join(", ")));
            }
        }
        match (self.min, self.max) {
            (Some(lo), _) if v < lo => Some(format!("{v} is below the schema's minimum {lo}")),
            (_, Some(hi)) if v > hi => Some(format!("{v} is above the schema's maximum {hi}")),
            _ => None,
        }
    }
}

/// A raw field a record must give: a feature read as it is, or one a derivation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub kind: Kind,
}

impl Input {
    pub fn is_categorical(&self) -> bool {
        self.kind == Kind::Categorical
    }
}

/// Where a step's value comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Src {
    Input(usize),
    Derived(usize),
}

/// How a record's raw fields become the steps' values (worked out once per preprocessor).
#[derive(Debug, Clone)]
struct Plan {
    inputs: Vec<Input>,
    steps: Vec<Src>,
    /// Per step: when a run of numeric steps fed by consecutive derived values starts there
    /// (a URL's hundreds of hashed trigram counts), its length; else 0.
    runs: Vec<usize>,
    /// The fill value of each step (numeric steps; 0 for others).
    fills: Vec<f64>,
    /// Per derivation: the inputs it reads, and where its outputs start among the derived values.
    derive: Vec<(Vec<usize>, usize, usize)>,
    /// Per derivation: the column of an encoded row where its leading numbers
    /// ([`crate::features::Derive::direct`]) are written straight, when the row takes them as
    /// they are; else `None`.
    direct: Vec<Option<usize>>,
    /// Per step: how many steps from here a derivation has already written (see `direct`).
    written: Vec<usize>,
    derived: usize,
    /// Per numeric step with a schema domain: its column in an encoded row, the step, and
    /// the domain (copied here: no map lookup per value).
    domain_checks: Vec<(usize, usize, Domain)>,
    /// Width of an encoded row (asked once per record).
    width: usize,
}

thread_local! {
    /// The derived values of the record being encoded (reused: no allocation per record).
    static DERIVED: std::cell::RefCell<Vec<Value>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The plan, computed on first use; not part of the bundle, equal whatever it holds.
#[derive(Debug, Clone, Default)]
struct PlanCell(std::sync::OnceLock<Plan>);

impl PartialEq for PlanCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The derived columns added to a frame, computed row by row through the same
/// [`crate::features::Derive::derive`] that scores a single record.
pub fn with_derived(derive: &[Derivation], df: &DataFrame, part: &str) -> Result<DataFrame> {
    if derive.is_empty() {
        return Ok(df.clone());
    }
    let rows = source_rows(df);
    let mut df = df.clone();
    for d in derive {
        let d = d.get();
        let inputs = d.inputs();
        let outputs = d.outputs();
        // Each input column as raw values: numbers stay numbers, text stays text.
        let mut numbers: Vec<Option<Vec<Option<f64>>>> = Vec::new();
        let mut texts: Vec<Option<Vec<Option<String>>>> = Vec::new();
        for (name, _) in &inputs {
            let col = df.column(name).map_err(|_| {
                Error::artifact(part, format!("column `{name}` (read by a derived feature) is missing"))
            })?;
            match col.dtype() {
                DataType::Int64 | DataType::Float64 => {
                    numbers.push(Some(numeric(col, part)?));
                    texts.push(None);
                }
                _ => {
                    numbers.push(None);
                    texts.push(Some(column_keys(col)));
                }
            }
        }
        let mut out_num: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(df.height()); outputs.len()];
        let mut out_text: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(df.height()); outputs.len()];
        let mut out = vec![Value::Missing; outputs.len()];
        let mut raw = Vec::with_capacity(inputs.len());
        for i in 0..df.height() {
            raw.clear();
            for k in 0..inputs.len() {
                raw.push(match (&numbers[k], &texts[k]) {
                    (Some(n), _) => n[i].map_or(Raw::Missing, Raw::Number),
                    (_, Some(t)) => t[i].as_deref().map_or(Raw::Missing, Raw::Text),
                    _ => Raw::Missing,
                });
            }
            d.derive(&raw, &mut out).map_err(|(k, message)| Error::Row {
                path: part.into(),
                row: rows[i] as u64,
                column: Some(inputs[k].0.clone()),
                message,
            })?;
            for (j, v) in out.iter().enumerate() {
                match (outputs[j].1, v) {
                    (Kind::Numeric, Value::Number(x)) => out_num[j].push(Some(*x)),
                    (Kind::Numeric, _) => out_num[j].push(None),
                    (Kind::Categorical, Value::Text(t)) => out_text[j].push(Some(t.clone())),
                    (Kind::Categorical, Value::Static(t)) => out_text[j].push(Some((*t).to_owned())),
                    (Kind::Categorical, Value::Number(x)) => out_text[j].push(Some(float_key(*x))),
                    (Kind::Categorical, Value::Missing) => out_text[j].push(None),
                }
            }
        }
        for (j, (name, kind)) in outputs.iter().enumerate() {
            let col = match kind {
                Kind::Numeric => Column::new(name.as_str().into(), std::mem::take(&mut out_num[j])),
                Kind::Categorical => Column::new(name.as_str().into(), std::mem::take(&mut out_text[j])),
            };
            df.with_column(col).map_err(|e| Error::polars(part, e))?;
        }
    }
    Ok(df)
}

/// Numeric values of a column (missing and NaN as `None`).
fn numeric(col: &Column, part: &str) -> Result<Vec<Option<f64>>> {
    let values = match col.dtype() {
        DataType::Int64 => col.i64().expect("dtype").iter().map(|v| v.map(|i| i as f64)).collect(),
        DataType::Float64 => col.f64().expect("dtype").iter().map(|v| v.filter(|f| !f.is_nan())).collect(),
        other => {
            return Err(Error::artifact(
                part,
                format!("feature `{}` holds {other}, not numbers: run the validate stage first", col.name()),
            ))
        }
    };
    Ok(values)
}

fn statistic(strategy: ImputeStrategy, mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match strategy {
        ImputeStrategy::Mean => v.iter().sum::<f64>() / v.len() as f64,
        ImputeStrategy::Median => {
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        }
        ImputeStrategy::MostFrequent => {
            // Sorted, so equal values are adjacent; ties go to the smallest value.
            let (mut best, mut best_n, mut i) = (v[0], 0, 0);
            while i < v.len() {
                let j = v[i..].iter().position(|&x| x != v[i]).map_or(v.len(), |p| i + p);
                if j - i > best_n {
                    best = v[i];
                    best_n = j - i;
                }
                i = j;
            }
            best
        }
    }
}

impl Preprocessor {
    /// Fit on the training part. `part` names the file in errors.
    pub fn fit(schema: &Schema, train: &DataFrame, p: &TransformParams, part: &str) -> Result<Self> {
        // Names were checked when the schema was loaded.
        let derive = schema.derivations();
        let train = &with_derived(&derive, train, part)?;
        // The schema's features, then the derived ones.
        let mut columns: Vec<(String, ColumnType)> = schema.features().map(|c| (c.name.clone(), c.kind)).collect();
        for d in &derive {
            for (name, kind) in d.get().outputs() {
                // A derived name may shadow a dropped column (a dataset that ships its own,
                // published values of the same feature: they are never read).
                let taken = schema.column(&name).is_some_and(|c| c.role != crate::schema::Role::Drop);
                if columns.iter().any(|(n, _)| *n == name) || taken {
                    return Err(Error::artifact(part, format!("derived feature `{name}` has the name of a column")));
                }
                let kind = if kind == Kind::Numeric { ColumnType::Float } else { ColumnType::Categorical };
                columns.push((name, kind));
            }
        }
        let mut features = Vec::new();
        for (name, kind) in &columns {
            let col = train.column(name).map_err(|_| Error::artifact(part, format!("feature `{name}` is missing")))?;
            if !kind.is_numeric() {
                let mut categories: Vec<String> = column_keys(col).into_iter().flatten().collect();
                categories.sort_unstable();
                categories.dedup();
                if categories.is_empty() {
                    return Err(Error::artifact(part, format!("feature `{name}` has no categories to learn")));
                }
                features.push(FeatureStep::Categorical { name: name.clone(), encoding: p.encode, categories });
                continue;
            }
            let present: Vec<f64> = numeric(col, part)?.into_iter().flatten().collect();
            // A derived value that is never there (a rate of connections that all lack a
            // duration) is filled with 0; a raw feature without values is an error.
            let derived = schema.column(name).is_none_or(|c| c.role == crate::schema::Role::Drop);
            if present.is_empty() && !derived {
                return Err(Error::artifact(part, format!("feature `{name}` has no values to learn imputation from")));
            }
            let mut fill = if present.is_empty() { 0.0 } else { statistic(p.impute, present) };
            if *kind == ColumnType::Integer && p.impute != ImputeStrategy::Mean {
                fill = fill.round();
            }
            features.push(FeatureStep::Numeric { name: name.clone(), fill });
        }
        let mut pre = Preprocessor::new(p.impute, features, derive);
        pre.domains = schema
            .features()
            .filter(|c| c.kind.is_numeric() && (c.allowed.is_some() || c.min.is_some() || c.max.is_some()))
            .map(|c| {
                let allowed = c.allowed.as_ref().map(|a| {
                    a.iter()
                        .filter_map(|v| match v {
                            crate::schema::Scalar::Int(i) => Some(*i as f64),
                            crate::schema::Scalar::Float(f) => Some(*f),
                            crate::schema::Scalar::Str(s) => s.parse().ok(),
                        })
                        .collect()
                });
                (c.name.clone(), Domain { allowed, min: c.min, max: c.max })
            })
            .collect();
        Ok(pre)
    }

    pub fn new(impute: ImputeStrategy, features: Vec<FeatureStep>, derive: Vec<Derivation>) -> Self {
        Preprocessor { impute, features, derive, domains: Default::default(), plan: PlanCell::default() }
    }

    /// Contributions to the model's features summed back to the step (input or derived
    /// feature) each came from: one-hot columns to their categorical column. The `top`
    /// largest by magnitude, largest first (ties by name).
    pub fn contributions_by_input(&self, phi: &[f64], top: usize) -> Vec<(&str, f64)> {
        let mut out: Vec<(&str, f64)> = Vec::with_capacity(self.features.len());
        let mut at = 0;
        for f in &self.features {
            let w = f.width();
            out.push((f.name(), phi[at..at + w].iter().sum()));
            at += w;
        }
        out.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(b.0)));
        out.truncate(top);
        out
    }

    /// Each value of an encoded row outside its column's schema domain: the column and why.
    pub fn outside_domain<'p>(&'p self, row: &[f64], mut found: impl FnMut(&'p str, String)) {
        for (at, step, domain) in &self.plan().domain_checks {
            if domain.admits(row[*at]) {
                continue;
            }
            let name = self.features[*step].name();
            if let Some(why) = domain.refuses(row[*at]) {
                found(name, why);
            }
        }
    }

    /// How many values of an encoded row are outside their column's schema domain, and the
    /// first of them (its column and why): what a scorer counts, and refuses in strict mode.
    pub fn domain_report(&self, row: &[f64]) -> (u64, Option<(&str, String)>) {
        let (mut n, mut first) = (0, None);
        self.outside_domain(row, |name, why| {
            n += 1;
            first.get_or_insert((name, why));
        });
        (n, first)
    }

    /// Check steps read from a bundle: each column once, categories sorted without repeats
    /// (codes are found by binary search), fills that are numbers, and a derived feature
    /// encoded as the kind its derivation gives.
    pub fn check(&self) -> std::result::Result<(), String> {
        let derived: Vec<(String, Kind)> = self.derive.iter().flat_map(|d| d.get().outputs()).collect();
        let mut names = std::collections::HashSet::new();
        for (i, step) in self.features.iter().enumerate() {
            let at = |m: String| format!("features[{i}] (`{}`): {m}", step.name());
            if !names.insert(step.name()) {
                return Err(at("the column has two steps".into()));
            }
            match step {
                FeatureStep::Numeric { fill, .. } if fill.is_nan() => {
                    return Err(at("the fill is not a number".into()))
                }
                FeatureStep::Categorical { categories, .. } => {
                    if let Some(w) = categories.windows(2).find(|w| w[0] >= w[1]) {
                        return Err(at(format!("categories not sorted or repeated at `{}`", w[1])));
                    }
                }
                _ => {}
            }
            if let Some((_, kind)) = derived.iter().find(|(n, _)| n == step.name()) {
                if step.is_categorical() != (*kind == Kind::Categorical) {
                    return Err(at(format!(
                        "encoded as {} but derived as {kind:?}",
                        if step.is_categorical() { "a category" } else { "a number" }
                    )));
                }
            }
        }
        Ok(())
    }

    fn plan(&self) -> &Plan {
        self.plan.0.get_or_init(|| {
            let outputs: Vec<Vec<(String, Kind)>> = self.derive.iter().map(|d| d.get().outputs()).collect();
            let derived_at = |name: &str| {
                let mut at = 0;
                for o in &outputs {
                    if let Some(j) = o.iter().position(|(n, _)| n == name) {
                        return Some(at + j);
                    }
                    at += o.len();
                }
                None
            };
            let mut inputs: Vec<Input> = Vec::new();
            let mut input = |name: &str, kind: Kind| match inputs.iter().position(|i| i.name == name) {
                Some(i) => i,
                None => {
                    inputs.push(Input { name: name.to_owned(), kind });
                    inputs.len() - 1
                }
            };
            let steps: Vec<Src> = self
                .features
                .iter()
                .map(|step| match derived_at(step.name()) {
                    Some(j) => Src::Derived(j),
                    None => Src::Input(input(
                        step.name(),
                        if step.is_categorical() { Kind::Categorical } else { Kind::Numeric },
                    )),
                })
                .collect();
            let mut derive = Vec::new();
            let mut at = 0;
            for (d, o) in self.derive.iter().zip(&outputs) {
                let idx: Vec<usize> = d.get().inputs().iter().map(|(n, k)| input(n, *k)).collect();
                derive.push((idx, at, o.len()));
                at += o.len();
            }
            let numeric_derived = |s: usize| -> Option<usize> {
                match (&self.features[s], steps[s]) {
                    (FeatureStep::Numeric { .. }, Src::Derived(j)) => Some(j),
                    _ => None,
                }
            };
            let mut runs = vec![0; steps.len()];
            let mut s = 0;
            while s < steps.len() {
                let Some(j) = numeric_derived(s) else {
                    s += 1;
                    continue;
                };
                let mut len = 1;
                while s + len < steps.len() && numeric_derived(s + len) == Some(j + len) {
                    len += 1;
                }
                runs[s] = len;
                s += len;
            }
            let fills = self
                .features
                .iter()
                .map(|f| match f {
                    FeatureStep::Numeric { fill, .. } => *fill,
                    _ => 0.0,
                })
                .collect();
            // One pass over the encoded row's columns: the domain checks, and where a derivation
            // writes its leading numbers into the row itself (a run of numeric steps, one column
            // each, takes exactly them, in order).
            let leading: Vec<usize> = self.derive.iter().map(|d| d.get().direct()).collect();
            let mut domain_checks = Vec::new();
            let mut direct = vec![None; self.derive.len()];
            let mut written = vec![0; steps.len()];
            let mut col = 0;
            for (i, f) in self.features.iter().enumerate() {
                if let (false, Some(d)) = (f.is_categorical(), self.domains.get(f.name())) {
                    domain_checks.push((col, i, d.clone()));
                }
                for (k, (&n, &(_, at, _))) in leading.iter().zip(&derive).enumerate() {
                    if n > 0 && runs[i] >= n && steps[i] == Src::Derived(at) && direct[k].is_none() {
                        direct[k] = Some(col);
                        written[i] = n;
                    }
                }
                col += f.width();
            }
            Plan { inputs, steps, runs, fills, derive, direct, written, derived: at, domain_checks, width: col }
        })
    }

    /// The raw fields a record must give, in the order [`Self::encode_row`] asks for them.
    pub fn inputs(&self) -> &[Input] {
        &self.plan().inputs
    }

    /// Names of the model's features, in matrix column order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().flat_map(FeatureStep::output_names).collect()
    }

    /// Width of an encoded row.
    pub fn width(&self) -> usize {
        self.plan().width
    }

    /// Encode one record into `out` ([`Self::width`] values). `raw(k, input)` gives the value
    /// of raw field k (`self.inputs()[k]`); derived features are computed from them. The
    /// indices of steps (`self.features`) that met an unseen category are pushed onto
    /// `unseen`. An error names the index of the raw field at fault.
    pub fn encode_row<'a>(
        &self,
        raw: impl FnMut(usize, &Input) -> std::result::Result<Raw<'a>, String>,
        out: &mut [f64],
        unseen: &mut Vec<usize>,
    ) -> std::result::Result<(), (usize, String)> {
        if self.derive.is_empty() {
            return self.encode_row_with(raw, out, unseen, &mut Vec::new());
        }
        DERIVED.with(|cell| self.encode_row_with(raw, out, unseen, &mut cell.borrow_mut()))
    }

    /// [`Self::encode_row`] with the caller's buffer for derived values (a batch scorer keeps
    /// one for all its records).
    pub fn encode_row_with<'a>(
        &self,
        mut raw: impl FnMut(usize, &Input) -> std::result::Result<Raw<'a>, String>,
        out: &mut [f64],
        unseen: &mut Vec<usize>,
        derived: &mut Vec<Value>,
    ) -> std::result::Result<(), (usize, String)> {
        let plan = self.plan();
        // Raw values are asked for when a step or a derivation needs them (a field read by
        // both is asked twice: cheaper than gathering every input first).
        let mut get = |k: usize| raw(k, &plan.inputs[k]).map_err(|m| (k, m));
        // Every derivation writes each of its outputs: the values of the previous record are
        // all overwritten.
        if derived.len() != plan.derived {
            derived.clear();
            derived.resize(plan.derived, Value::Missing);
        }
        for ((d, (idx, at, len)), direct) in self.derive.iter().zip(&plan.derive).zip(&plan.direct) {
            let mut stack = [Raw::Missing; 16];
            let mut heap = Vec::new();
            let ins: &mut [Raw<'_>] = if idx.len() <= stack.len() {
                &mut stack[..idx.len()]
            } else {
                heap.resize(idx.len(), Raw::Missing);
                &mut heap
            };
            for (slot, &i) in ins.iter_mut().zip(idx) {
                *slot = get(i)?;
            }
            let d = d.get();
            match *direct {
                Some(col) => {
                    let n = d.direct();
                    let numbers = &mut out[col..col + n];
                    d.derive_direct(ins, numbers, &mut derived[at + n..at + len]).map_err(|(j, m)| (idx[j], m))?;
                    // Branch-free (a vector loop): the check costs little beside the derivation.
                    if !numbers.iter().fold(true, |ok, x| ok & x.is_finite()) {
                        return Err((
                            idx.first().copied().unwrap_or(0),
                            "a derived feature is not a finite number".into(),
                        ));
                    }
                }
                None => d.derive(ins, &mut derived[*at..at + len]).map_err(|(j, m)| (idx[j], m))?,
            }
        }
        self.encode_steps(plan, &mut get, derived, out, unseen)
    }

    /// Encode every step from the raw values and the derived ones.
    fn encode_steps<'a>(
        &self,
        plan: &Plan,
        get: &mut impl FnMut(usize) -> std::result::Result<Raw<'a>, (usize, String)>,
        derived: &[Value],
        out: &mut [f64],
        unseen: &mut Vec<usize>,
    ) -> std::result::Result<(), (usize, String)> {
        let mut at = 0;
        let mut s = 0;
        while s < self.features.len() {
            // Numbers a derivation wrote into the row itself.
            let written = plan.written[s];
            if written > 0 {
                s += written;
                at += written;
                continue;
            }
            let run = plan.runs[s];
            if run > 1 {
                // Numeric steps over consecutive derived values: one tight loop.
                let Src::Derived(j) = plan.steps[s] else { unreachable!("a run starts at a derived step") };
                let (values, fills, out) = (&derived[j..j + run], &plan.fills[s..s + run], &mut out[at..at + run]);
                let mut ok = true;
                for ((o, v), &fill) in out.iter_mut().zip(values).zip(fills) {
                    *o = match v {
                        Value::Number(x) if x.is_finite() => *x,
                        Value::Missing => fill,
                        _ => {
                            ok = false;
                            0.0
                        }
                    };
                }
                if ok {
                    s += run;
                    at += run;
                    continue;
                }
                // A value the loop cannot take (not finite, text): step by step, for the error.
            }
            let step = &self.features[s];
            let value = match plan.steps[s] {
                Src::Input(i) => get(i)?,
                Src::Derived(j) => derived[j].raw(),
            };
            // The common case first: a number, or a missing one, for a numeric step.
            if let FeatureStep::Numeric { fill, .. } = step {
                match value {
                    Raw::Number(v) if v.is_finite() => {
                        out[at] = v;
                        at += 1;
                        s += 1;
                        continue;
                    }
                    Raw::Missing => {
                        out[at] = *fill;
                        at += 1;
                        s += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            let w = step.width();
            let blame = || match plan.steps[s] {
                Src::Input(i) => i,
                // A derived value: blame the derivation's first input.
                Src::Derived(_) => plan.derive.first().and_then(|d| d.0.first().copied()).unwrap_or(0),
            };
            if step.encode(value, &mut out[at..at + w]).map_err(|m| (blame(), m))? {
                unseen.push(s);
            }
            at += w;
            s += 1;
        }
        Ok(())
    }

    /// Feature matrix of a frame, and what it took (imputation, unseen categories).
    pub fn transform(&self, df: &DataFrame, part: &str) -> Result<(Array2<f64>, EncodeStats)> {
        let df = &with_derived(&self.derive, df, part)?;
        let n = df.height();
        let mut x = Array2::<f64>::zeros((n, self.width()));
        let mut stats = EncodeStats::default();
        let mut row_unseen = vec![false; n];
        let mut at = 0;
        let rows = source_rows(df);
        for step in &self.features {
            let name = step.name();
            let col = df.column(name).map_err(|_| Error::artifact(part, format!("feature `{name}` is missing")))?;
            let w = step.width();
            let mut buf = vec![0.0; w];
            let mut unseen = 0;
            let mut put = |i: usize, raw: Raw<'_>, x: &mut Array2<f64>| -> Result<()> {
                let new = step.encode(raw, &mut buf).map_err(|message| Error::Row {
                    path: part.into(),
                    row: rows[i] as u64,
                    column: Some(name.to_owned()),
                    message,
                })?;
                if new {
                    unseen += 1;
                    row_unseen[i] = true;
                }
                x.slice_mut(ndarray::s![i, at..at + w]).assign(&ndarray::ArrayView1::from(&buf));
                Ok(())
            };
            if step.is_categorical() {
                for (i, key) in column_keys(col).iter().enumerate() {
                    put(i, key.as_deref().map_or(Raw::Missing, Raw::Text), &mut x)?;
                }
            } else {
                for (i, v) in numeric(col, part)?.into_iter().enumerate() {
                    stats.imputed += usize::from(v.is_none());
                    put(i, v.map_or(Raw::Missing, Raw::Number), &mut x)?;
                }
            }
            if unseen > 0 {
                stats.unseen.insert(name.to_owned(), unseen);
            }
            at += w;
        }
        stats.unseen_rows = row_unseen.iter().filter(|&&u| u).count();
        Ok((x, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record encoded alone (`predict`, the server) gives the row `transform` gives.
    #[test]
    fn one_record_encodes_as_the_frame_does() {
        let schema: Schema = serde_yaml_ng::from_str(
            "name: u\ntarget: {column: y, threat: [1]}\ncolumns:\n  - {name: url, type: url}\n  - {name: y, type: integer, role: target}\n",
        )
        .unwrap();
        let urls = [
            "http://www.crestonwood.com/router.php",
            "https://kywait.blogspot.com/",
            "example.com/login?a=1&b=2",
            "http://[::1]:8080/x",
            "",
            "javascript:alert(1)",
            "https://xn--80aajiaapeyhqdbo9bk.xn--p1acf/",
            "http://a.b.c.d.e.f.g.h.co.uk/%zz/../x.txt",
        ];
        let df = DataFrame::new(
            urls.len(),
            vec![
                Column::new("url".into(), urls.iter().map(|u| u.to_string()).collect::<Vec<_>>()),
                Column::new("y".into(), (0..urls.len() as i64).map(|i| i % 2).collect::<Vec<_>>()),
            ],
        )
        .unwrap();
        let p = TransformParams { impute: ImputeStrategy::Median, encode: Encoding::OneHot };
        let pre = Preprocessor::fit(&schema, &df, &p, "test").unwrap();
        let (x, _) = pre.transform(&df, "test").unwrap();
        for (i, url) in urls.iter().enumerate() {
            let mut row = vec![0.0; pre.width()];
            pre.encode_row(|_, _| Ok(Raw::Text(url)), &mut row, &mut Vec::new()).unwrap();
            let names = pre.feature_names();
            for (j, (a, b)) in row.iter().zip(x.row(i)).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{url:?}: feature `{}`", names[j]);
            }
        }
    }

    #[test]
    fn statistics() {
        assert_eq!(statistic(ImputeStrategy::Median, vec![3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(statistic(ImputeStrategy::Mean, vec![1.0, 2.0, 6.0]), 3.0);
        assert_eq!(statistic(ImputeStrategy::MostFrequent, vec![1.0, 2.0, 2.0, -1.0, -1.0, 2.0]), 2.0);
        assert_eq!(statistic(ImputeStrategy::MostFrequent, vec![0.0, 1.0]), 0.0);
    }

    #[test]
    fn numbers_read_as_the_float_parser_reads_them() {
        for t in [
            "-1",
            "0",
            "1",
            " 7 ",
            "-0",
            "+0",
            "+12",
            "007",
            "123456789012345",
            "-99999999999999",
            "1234567890123456",
            "99999999999999999999",
            "1.5",
            "-0.0",
            "1e3",
            "nan",
            "inf",
            "",
            "-",
            "1,5",
            "0x10",
        ] {
            let expected = t.trim().parse::<f64>().ok().map(f64::to_bits);
            assert_eq!(parse_number(t).map(f64::to_bits), expected, "{t:?}");
        }
    }

    fn categorical(encoding: Encoding) -> FeatureStep {
        FeatureStep::Categorical {
            name: "proto".into(),
            encoding,
            categories: vec!["icmp".into(), "tcp".into(), "udp".into()],
        }
    }

    #[test]
    fn one_hot_and_ordinal_encode_seen_and_unseen_categories() {
        let one_hot = categorical(Encoding::OneHot);
        assert_eq!(one_hot.output_names(), ["proto=icmp", "proto=tcp", "proto=udp"]);
        let mut out = [9.0; 3];
        assert_eq!(one_hot.encode(Raw::Text(" tcp "), &mut out), Ok(false));
        assert_eq!(out, [0.0, 1.0, 0.0]);
        assert_eq!(one_hot.encode(Raw::Text("sctp"), &mut out), Ok(true), "unseen is flagged, not an error");
        assert_eq!(out, [0.0; 3]);
        assert_eq!(one_hot.encode(Raw::Missing, &mut out), Ok(false), "missing is not 'unseen'");

        let ordinal = categorical(Encoding::Ordinal);
        let mut one = [0.0];
        assert_eq!(ordinal.encode(Raw::Text("udp"), &mut one), Ok(false));
        assert_eq!(one, [2.0]);
        assert_eq!(ordinal.encode(Raw::Text("gre"), &mut one), Ok(true));
        assert_eq!(one, [UNSEEN_CODE]);
        // A number given for a categorical feature is matched by its text.
        let codes =
            FeatureStep::Categorical { name: "c".into(), encoding: Encoding::Ordinal, categories: vec!["6".into()] };
        assert_eq!(codes.encode(Raw::Number(6.0), &mut one), Ok(false));
        assert_eq!(one, [0.0]);
    }

    #[test]
    fn numeric_steps_parse_impute_and_refuse() {
        let step = FeatureStep::Numeric { name: "bytes".into(), fill: 3.0 };
        let mut out = [0.0];
        assert_eq!(step.encode(Raw::Missing, &mut out), Ok(false));
        assert_eq!(out, [3.0]);
        assert_eq!(step.encode(Raw::Text(" 2.5"), &mut out), Ok(false));
        assert_eq!(out, [2.5]);
        assert!(step.encode(Raw::Text("abc"), &mut out).unwrap_err().contains("expected a number"));
        assert!(step.encode(Raw::Number(f64::NAN), &mut out).is_err());
    }

    #[test]
    fn numeric_steps_keep_the_form_older_bundles_have() {
        let step = FeatureStep::Numeric { name: "a".into(), fill: 1.5 };
        let json = serde_json::to_string(&step).unwrap();
        assert_eq!(json, r#"{"name":"a","fill":1.5}"#);
        assert_eq!(serde_json::from_str::<FeatureStep>(&json).unwrap(), step);
        let cat = categorical(Encoding::OneHot);
        let back: FeatureStep = serde_json::from_str(&serde_json::to_string(&cat).unwrap()).unwrap();
        assert_eq!(back, cat);
    }
}
