//! `snapshot`: run a dataset's SQL query (its `data: source: {sql: ...}`) and write the rows to
//! Parquet under `data/`, to be tracked with `dvc add`. Prints the snapshot (rows, SHA-256 of
//! the rows, SHA-256 of the query) as JSON on stdout.

use anyhow::Context;
use clap::Parser;
use netsec::cli::Common;
use netsec::stages::snapshot;

#[derive(Parser)]
#[command(
    version,
    about = "Write a dataset's SQL query result to Parquet under data/ (then `dvc add` it).",
    long_about = "Write a dataset's SQL query result to Parquet under data/ (then `dvc add` it).\n\n\
The connection URL comes from the environment variable the schema names (`url_env`, default \
NETSEC_DB_URL), never from a file; it is not printed. Prints {rows, content_sha256, query_sha256, out} on stdout."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    args: snapshot::Args,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| exec(Cli::parse()))
}

fn exec(cli: Cli) -> anyhow::Result<()> {
    cli.common.init_logging();
    let params = if cli.args.dataset.is_some() { None } else { Some(cli.common.load_params()?) };
    let (out, snap) = snapshot::run(params.as_ref(), &cli.args).context("snapshot failed")?;
    let mut v = serde_json::to_value(&snap)?;
    v["out"] = out.display().to_string().into();
    println!("{v}");
    Ok(())
}
