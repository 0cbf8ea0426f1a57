//! `validate` stage: Check both parts against the dataset schema and test every feature for drift.
//!
//! Reads the sections `datasets` and `validate`. Exits non-zero on any error-level violation, naming the column and the rows; the full list goes to reports/validation.json.

use anyhow::Context;
use clap::Parser;
use netsec::cli::Common;
use netsec::stages::validate;

#[derive(Parser)]
#[command(version, about = "Check both parts against the dataset schema and test every feature for drift.", long_about = "Check both parts against the dataset schema and test every feature for drift.\n\nReads the sections `datasets` and `validate`. Exits non-zero on any error-level violation, naming the column and the rows; the full list goes to reports/validation.json.")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    args: validate::Args,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| exec(Cli::parse()))
}

fn exec(cli: Cli) -> anyhow::Result<()> {
    cli.common.init_logging();
    let params = cli.common.load_params()?;
    validate::run(&params, &cli.args).context("validate failed")?;
    Ok(())
}
