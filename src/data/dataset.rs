//! Which dataset the pipeline runs on: `dataset: <name>` in `params.yaml` picks the schema
//! `schemas/<name>.yaml`, whose `data:` block says where the raw files are.
//!
//! The file locations live with the schema, not in `params.yaml`: every key of `params.yaml`
//! is a column of `dvc exp show`, and a registry of every dataset's paths made that table
//! unreadable. `schemas/` is a dep of every stage, so moving a file still re-runs them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sql::SqlQuery;
use super::Format;
use crate::error::{Error, Result};
use crate::params::{Check, ParamsFile};
use crate::schema::Schema;

/// Folder of the schema files, relative to the project root.
pub const SCHEMAS: &str = "schemas";

/// A named dataset: its schema file and where its raw files are.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub params: DatasetParams,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetParams {
    /// Schema file: `schemas/<dataset>.yaml`.
    #[serde(skip)]
    pub schema: PathBuf,
    /// The raw data (CSV, Parquet, JSON Lines or Zeek logs, optionally gzip-compressed): one
    /// file or a list, read as one table and split by the `ingest` section.
    #[serde(default)]
    pub source: Option<Files>,
    /// A dataset published already split (such as NSL-KDD), or split by capture (Zeek logs of
    /// some days to train, a later day to test): the training part, one file or a list. Give
    /// `train` and `test` instead of `source`; `ingest` then keeps this split as it is.
    #[serde(default)]
    pub train: Option<Files>,
    /// The test part (with `train`).
    #[serde(default)]
    pub test: Option<Files>,
    /// Overrides the format guessed from the file names.
    #[serde(default)]
    pub format: Option<Format>,
    /// The column whose value groups rows for `ingest.split: stratified_grouped` (for a `url`
    /// column: its registrable domain, so that no site is on both sides). Without it, rows
    /// group by their feature vector.
    #[serde(default)]
    pub group: Option<String>,
    /// The entry of `train.spaces` searched on this dataset when `train.space` is `auto`
    /// (a grid sized for the dataset: 126k rows need a smaller one than 9k).
    #[serde(default)]
    pub space: Option<String>,
}

/// One file or several, read as one table (`train: [a.log.gz, b.log.gz]`); or, as `source`
/// only, the rows of a SQL query (`source: {sql: "SELECT ...", url_env: NETSEC_DB_URL}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Files {
    One(PathBuf),
    Many(Vec<PathBuf>),
    Sql(SqlQuery),
}

impl Files {
    /// The files (none for a query).
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            Files::One(p) => std::slice::from_ref(p),
            Files::Many(v) => v,
            Files::Sql(_) => &[],
        }
    }
}

/// Where a dataset's rows come from.
#[derive(Debug, Clone, Copy)]
pub enum Sources<'a> {
    /// Files read as one table, split by `ingest`.
    One(&'a [PathBuf]),
    /// The publisher's own split (or one by capture).
    PreSplit { train: &'a [PathBuf], test: &'a [PathBuf] },
    /// The rows of a query, split by `ingest`.
    Sql(&'a SqlQuery),
}

impl DatasetParams {
    pub fn sources(&self) -> Sources<'_> {
        match (&self.source, &self.train, &self.test) {
            (Some(Files::Sql(q)), _, _) => Sources::Sql(q),
            (Some(s), _, _) => Sources::One(s.paths()),
            (None, Some(train), Some(test)) => Sources::PreSplit { train: train.paths(), test: test.paths() },
            _ => unreachable!("checked by DatasetParams::check"),
        }
    }
}

impl Check for DatasetParams {
    fn check(&self) -> std::result::Result<(), String> {
        match (&self.source, &self.train, &self.test) {
            _ if [&self.source, &self.train, &self.test]
                .iter()
                .any(|f| matches!(f, Some(Files::Many(v)) if v.is_empty())) =>
            {
                Err("an empty list of files".into())
            }
            (_, Some(Files::Sql(_)), _) | (_, _, Some(Files::Sql(_))) => {
                Err("a SQL query goes in `source:` (split by `ingest`), not in `train:` or `test:`".into())
            }
            (Some(_), None, None) | (None, Some(_), Some(_)) => Ok(()),
            (Some(_), _, _) => Err("give either `source` (split by `ingest`) or `train` and `test`, not both".into()),
            (None, None, None) => Err("missing `source` (or `train` and `test` for a pre-split dataset)".into()),
            (None, _, _) => Err("a pre-split dataset needs both `train` and `test`".into()),
        }
    }
}

impl Dataset {
    /// The dataset selected by the top-level `dataset` key: `schemas/<name>.yaml` and its `data:`.
    pub fn selected(params: &ParamsFile) -> Result<Dataset> {
        let name: String = params.section::<DatasetName>("dataset")?.0;
        Dataset::named(&name).map_err(|e| match e {
            Error::Io { path, err } if err.kind() == std::io::ErrorKind::NotFound => Error::params(
                params.path(),
                format!("`dataset: {name}`: no schema file {} (known: {})", path.display(), known().join(", ")),
            ),
            e => e,
        })
    }

    /// The dataset whose schema is `schemas/<name>.yaml` (read and checked once, by
    /// `Schema::load`, which keeps the `data:` block for this).
    pub fn named(name: &str) -> Result<Dataset> {
        let schema = Path::new(SCHEMAS).join(format!("{name}.yaml"));
        let bad = |message: String| Error::Schema { path: schema.clone(), message };
        let block = Schema::load(&schema)?.data.ok_or_else(|| {
            bad("no `data:` block (where the raw files are: `source:`, or `train:` and `test:`)".into())
        })?;
        let mut params: DatasetParams = serde_yaml_ng::from_value(block).map_err(|e| bad(format!("`data`: {e}")))?;
        params.check().map_err(|m| bad(format!("`data`: {m}")))?;
        params.schema = schema;
        Ok(Dataset { name: name.to_owned(), params })
    }
}

/// Names of the datasets that have a schema file.
fn known() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(SCHEMAS)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".yaml").map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[derive(Deserialize)]
struct DatasetName(String);

impl Check for DatasetName {}
