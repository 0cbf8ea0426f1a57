//! `rollback`: put the previous production model of the configured dataset back.
//!
//! The current production version becomes `rolled_back` (the gate never promotes it again),
//! the previous one `production`, and its kept bundle is copied byte for byte to
//! models/production/<dataset>.json.

use anyhow::Context;
use clap::Parser;
use netsec::cli::Common;
use netsec::stages::promote;

#[derive(Parser)]
#[command(version, about = "Restore the previous production model of the configured dataset.")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    args: promote::RollbackArgs,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| exec(Cli::parse()))
}

fn exec(cli: Cli) -> anyhow::Result<()> {
    cli.common.init_logging();
    let params = cli.common.load_params()?;
    let restored = promote::rollback(&params, &cli.args).context("rollback failed")?;
    println!(
        "{} is in production again ({})",
        restored.id,
        restored.bundle.as_deref().map(|p| p.display().to_string()).unwrap_or_default()
    );
    Ok(())
}
