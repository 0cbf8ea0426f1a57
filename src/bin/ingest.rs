//! `ingest` stage: Read the raw dataset, count duplicates, write a seeded train/test split as Parquet.
//!
//! Reads the dataset selected by `dataset` in params.yaml (CSV, Parquet or JSON Lines, gzip allowed), using the sections `datasets` and `ingest`.

use anyhow::Context;
use clap::Parser;
use netsec::cli::Common;
use netsec::stages::ingest;

#[derive(Parser)]
#[command(
    version,
    about = "Read the raw dataset, count duplicates, write a seeded train/test split as Parquet.",
    long_about = "Read the raw dataset, count duplicates, write a seeded train/test split as Parquet.\n\nReads the dataset selected by `dataset` in params.yaml (CSV, Parquet or JSON Lines, gzip allowed), using the sections `datasets` and `ingest`."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    args: ingest::Args,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| exec(Cli::parse()))
}

fn exec(cli: Cli) -> anyhow::Result<()> {
    cli.common.init_logging();
    let params = cli.common.load_params()?;
    ingest::run(&params, &cli.args).context("ingest failed")?;
    Ok(())
}
