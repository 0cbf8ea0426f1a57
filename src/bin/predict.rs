//! `predict`: score a CSV or Parquet file in batch with a model bundle, streaming in chunks
//! (bounded memory), and write the predictions; prints rows/s.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use netsec::serving::batch::score_file;
use netsec::serving::Loaded;

#[derive(Parser)]
#[command(
    version,
    about = "Score a CSV (optionally .gz) or Parquet file with a model bundle; write CSV with threat_score and prediction."
)]
struct Cli {
    /// Records to score: one column per feature (by name), other columns are carried through.
    input: PathBuf,
    /// Predictions (CSV): the input columns, `threat_score`, `prediction`.
    output: PathBuf,
    #[arg(long, default_value = "models/production/phishing.json", env = "NETSEC_MODEL")]
    model: PathBuf,
    /// Rows per chunk: memory use is bounded by one chunk.
    #[arg(long, default_value_t = 65_536)]
    chunk: usize,
    #[command(flatten)]
    common: netsec::cli::Common,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| {
        let cli = Cli::parse();
        cli.common.init_logging();
        let model = Loaded::from_path(&cli.model).with_context(|| format!("loading {}", cli.model.display()))?;
        let s = score_file(&model, &cli.input, &cli.output, cli.chunk).context("predict failed")?;
        println!(
            "{} rows scored ({} threats) in {:.3} s: {:.0} rows/s -> {}",
            s.rows,
            s.threats,
            s.seconds,
            s.rows_per_second,
            cli.output.display()
        );
        if s.unseen_category_cells > 0 {
            tracing::warn!(
                cells = s.unseen_category_cells,
                "categories never seen in training were scored as unknown categories"
            );
        }
        Ok(())
    })
}
