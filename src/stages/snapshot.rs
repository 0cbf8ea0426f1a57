//! snapshot: run a dataset's SQL query once and write its rows to a Parquet file under
//! `data/`, to be tracked with `dvc add`: the reproducible path from a database (`ingest` on
//! the SQL source reads whatever the table holds at the time).

use std::path::PathBuf;

use crate::data::dataset::{Dataset, Sources};
use crate::data::sql::Snapshot;
use crate::data::{write_parquet, ROW};
use crate::error::{Error, Result};
use crate::params::ParamsFile;
use crate::schema::Schema;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The dataset whose `source: {sql: ...}` is run [default: `dataset` of params.yaml].
    #[arg(long)]
    pub dataset: Option<String>,
    /// The Parquet file to write [default: data/<dataset>.parquet].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(params: Option<&ParamsFile>, args: &Args) -> Result<(PathBuf, Snapshot)> {
    let dataset = match (&args.dataset, params) {
        (Some(name), _) => Dataset::named(name)?,
        (None, Some(params)) => Dataset::selected(params)?,
        (None, None) => return Err(Error::file("params.yaml", "no params file: name the dataset with --dataset")),
    };
    let Sources::Sql(query) = dataset.params.sources() else {
        return Err(Error::Schema {
            path: dataset.params.schema.clone(),
            message: "`data.source` is not a SQL query (`source: {sql: ..., url_env: ...}`): nothing to snapshot"
                .into(),
        });
    };
    let schema = Schema::load(&dataset.params.schema)?;
    let mut client = query.connect(&dataset.name)?;
    let (mut df, snapshot) = query.read(&mut client, &schema, &dataset.name)?;
    let _ = df.drop_in_place(ROW);
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("data/{}.parquet", dataset.name)));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    write_parquet(&mut df, &out)?;
    tracing::info!(rows = snapshot.rows, sha256 = %snapshot.content_sha256, out = %out.display(), "snapshot written: track it with `dvc add`");
    Ok((out, snapshot))
}
