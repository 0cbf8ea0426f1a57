//! `export`: write a Parquet table of the pipeline (a split part, a feature table) as CSV,
//! to inspect it or to hand it to another tool (the benchmarks give our split to the Python
//! reference this way).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Write a Parquet table (e.g. artifacts/split/test.parquet) as CSV.")]
struct Cli {
    #[command(flatten)]
    log: netsec::cli::Verbosity,
    /// Parquet file to read.
    input: PathBuf,
    /// CSV file to write.
    output: PathBuf,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| {
        let cli = Cli::parse();
        cli.log.init_logging();
        let df = netsec::data::read_parquet(&cli.input)?;
        netsec::data::write_csv(&df, &cli.output).with_context(|| format!("exporting {}", cli.input.display()))?;
        Ok(())
    })
}
