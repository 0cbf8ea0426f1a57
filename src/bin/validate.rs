//! `validate` stage: check both parts against the dataset schema and test every feature for drift.
//!
//! Pipeline mode reads the sections `datasets` and `validate`. Monitoring mode
//! (`--reference artifacts/profile.json --current batch.csv`) checks a new batch against the
//! training profile and needs only the `validate` section (defaults if there is no params file).

use anyhow::Context;
use clap::Parser;
use netsec::cli::Common;
use netsec::stages::validate;
use netsec::validate::ValidateParams;

#[derive(Parser)]
#[command(
    version,
    about = "Check both parts against the dataset schema and test every feature for drift.",
    long_about = "Check both parts against the dataset schema and test every feature for drift \
(KS for numeric, chi-squared for categorical features, PSI for both, Benjamini-Hochberg corrected).\n\n\
Exits non-zero on any error-level violation, naming the column and the rows; the full list goes to \
reports/validation.json. With --reference and --current, checks a new batch against the training \
profile instead (monitoring)."
)]
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
    let args = &cli.args;
    if let (Some(reference), Some(current)) = (&args.reference, &args.current) {
        let p = if cli.common.params.exists() {
            cli.common.load_params()?.section("validate")?
        } else {
            ValidateParams::default()
        };
        validate::monitor(&p, reference, current, &args.monitor_report).context("monitoring check failed")?;
        return Ok(());
    }
    let params = cli.common.load_params()?;
    validate::run(&params, args).context("validate failed")?;
    Ok(())
}
