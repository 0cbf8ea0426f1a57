//! `promote` stage: the gate between the trained candidate and production.
//!
//! Scores the candidate and the production model on the same test part and promotes the
//! candidate only if every rule of the `promote` section passes; records the decision in
//! models/registry.json and writes metrics/promote.json.

use anyhow::Context;
use clap::Parser;
use netsec::cli::Common;
use netsec::stages::promote;

#[derive(Parser)]
#[command(
    version,
    about = "Promote the trained candidate to production if it passes every gate rule.",
    long_about = "Promote the trained candidate to production if it passes every gate rule.\n\n\
Reads the sections `datasets` and `promote`. The production bundle of a dataset lives at \
models/production/<dataset>.json; every promoted bundle is kept under models/versions/ for `rollback`."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    args: promote::Args,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| exec(Cli::parse()))
}

fn exec(cli: Cli) -> anyhow::Result<()> {
    cli.common.init_logging();
    let params = cli.common.load_params()?;
    promote::run(&params, &cli.args).context("promote failed")?;
    Ok(())
}
