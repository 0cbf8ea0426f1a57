//! `check-remote`: probe a DVC remote (HTTP, or S3 with signed requests) with the credentials DVC would use.
//!
//! DVC with wrong credentials reports only missing files; this names the problem (HTTP 401 or
//! 403, which remote, which user) and how to fix it. `scripts/dvc-pull` runs it before pulling.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use netsec::remote::{load, probe, Probe};

#[derive(Parser)]
#[command(
    version,
    about = "Check that a DVC remote (e.g. DagsHub) accepts the configured credentials.",
    long_about = "Check that a DVC remote (e.g. DagsHub) accepts the configured credentials.\n\nReads .dvc/config and .dvc/config.local (where `dvc remote modify <name> --local user/password` puts them) and probes the remote (HTTP, or S3 with a signed list request). Exits 1 with a message naming the remote and what to change when the credentials are refused."
)]
struct Cli {
    /// The remote's name (default: the repository's default remote).
    remote: Option<String>,
    /// Root of the DVC repository.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    #[command(flatten)]
    common: netsec::cli::Common,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| {
        let cli = Cli::parse();
        cli.common.init_logging();
        let remote = load(&cli.repo, cli.remote.as_deref()).context("reading the DVC config")?;
        match probe(&remote).context("checking the remote")? {
            Probe::NotHttp => {
                println!("remote `{}` ({}) is not an HTTP or S3 remote: nothing to check", remote.name, remote.url)
            }
            Probe::Accepted(status) => {
                println!("remote `{}` ({}) accepts the credentials (HTTP {status})", remote.name, remote.url)
            }
        }
        Ok(())
    })
}
