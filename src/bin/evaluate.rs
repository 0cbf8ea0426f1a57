//! `evaluate` stage: Score the test part with the saved model bundle; write metrics and the ROC curve.
//!
//! Reads the section `evaluate`. Metrics are for the threat class.

use anyhow::Context;
use clap::Parser;
use netsec::cli::Common;
use netsec::stages::evaluate;

#[derive(Parser)]
#[command(
    version,
    about = "Score the test part with the saved model bundle; write metrics and the ROC curve.",
    long_about = "Score the test part with the saved model bundle; write metrics and the ROC curve.\n\nReads the section `evaluate`. Metrics are for the threat class."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    args: evaluate::Args,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| exec(Cli::parse()))
}

fn exec(cli: Cli) -> anyhow::Result<()> {
    cli.common.init_logging();
    let params = cli.common.load_params()?;
    evaluate::run(&params, &cli.args).context("evaluate failed")?;
    Ok(())
}
