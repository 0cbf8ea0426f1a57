//! `transform` stage: Fit preprocessing (imputation, categorical encoders) on the training part and apply it to both parts.
//!
//! Reads the section `transform`. Writes the feature tables, the fitted preprocessor and the unseen-category report.

use anyhow::Context;
use clap::Parser;
use netsec::cli::Common;
use netsec::stages::transform;

#[derive(Parser)]
#[command(
    version,
    about = "Fit preprocessing (imputation, categorical encoders) on the training part and apply it to both parts.",
    long_about = "Fit preprocessing (imputation, categorical encoders) on the training part and apply it to both parts.\n\nReads the section `transform`. Writes the feature tables, the fitted preprocessor and the unseen-category report."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    args: transform::Args,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| exec(Cli::parse()))
}

fn exec(cli: Cli) -> anyhow::Result<()> {
    cli.common.init_logging();
    let params = cli.common.load_params()?;
    transform::run(&params, &cli.args).context("transform failed")?;
    Ok(())
}
