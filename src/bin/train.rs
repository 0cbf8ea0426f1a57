//! `train` stage: Cross-validate the configured model family on the training part, fit it, save the bundle.
//!
//! Reads the section `train`. The test part is never read here: selection is honest.

use anyhow::Context;
use clap::Parser;
use netsec::cli::Common;
use netsec::stages::train;

#[derive(Parser)]
#[command(
    version,
    about = "Cross-validate the configured model family on the training part, fit it, save the bundle.",
    long_about = "Cross-validate the configured model family on the training part, fit it, save the bundle.\n\nReads the section `train`. The test part is never read here: selection is honest."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    args: train::Args,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| exec(Cli::parse()))
}

fn exec(cli: Cli) -> anyhow::Result<()> {
    cli.common.init_logging();
    let params = cli.common.load_params()?;
    train::run(&params, &cli.args).context("train failed")?;
    Ok(())
}
