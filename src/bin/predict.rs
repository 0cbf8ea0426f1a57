//! `predict`: score a file in batch with a model bundle, streaming in chunks (bounded memory),
//! and write the verdicts; or, with `--follow`, score a Zeek log as Zeek appends to it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use netsec::serving::batch::{score_file, Options};
use netsec::serving::follow::follow;
use netsec::serving::Loaded;

#[derive(Parser)]
#[command(
    version,
    about = "Score a CSV (optionally .gz), Parquet or Zeek log file with a model bundle; write CSV, JSON Lines or Parquet with threat_score and prediction.",
    after_help = "Examples:\n  predict conn.log.gz verdicts.csv --model models/production/zeek_ctu50.json\n  predict --follow /opt/zeek/logs/current/conn.log --model models/production/zeek_ctu50.json\n  zcat conn.*.log.gz | predict - - --exact --model models/production/zeek_ctu50.json > verdicts.csv"
)]
struct Cli {
    /// Records to score: a table with one column per model input (other columns are carried
    /// through), or a Zeek log (TSV or JSON, gzip or not; detected from its content). `-` reads
    /// standard input (CSV, a Zeek log or URLs; not Parquet).
    input: PathBuf,
    /// Verdicts, by extension: .csv (default), .jsonl/.ndjson/.json, .parquet. For a Zeek log
    /// each row keeps the connection's ts, uid and address/port fields. `-` writes CSV to
    /// stdout; a device or FIFO is written through; a file appears only when complete and
    /// keeps its permissions. Not with --follow.
    output: Option<PathBuf>,
    /// Write to the target of OUTPUT when it is a symbolic link (refused otherwise).
    #[arg(long)]
    follow_symlinks: bool,
    /// Stop at a value outside its column's schema domain (default: score it and count it).
    #[arg(long)]
    strict: bool,
    /// Write for a program, not a spreadsheet: CSV cells exactly as read (no `'` before a
    /// cell that looks like a formula) and every bit of threat_score (the shortest text that
    /// parses back to the same number; default: 6 decimals). For pipes and the Spark job.
    #[arg(long)]
    exact: bool,
    /// Add each row's K largest contributions (TreeSHAP, or the linear terms) as columns
    /// reason_1, contribution_1, ..., reason_K, contribution_K, explain_base.
    #[arg(long, value_name = "K", default_value_t = 0)]
    explain: usize,
    #[arg(long, default_value = "models/production/phishing.json", env = "NETSEC_MODEL")]
    model: PathBuf,
    /// Rows per chunk: memory use is bounded by one chunk.
    #[arg(long, default_value_t = 65_536)]
    chunk: usize,
    /// Score a Zeek log as it grows, surviving rotation; one JSON line per verdict to stdout
    /// (or --follow-output). Runs until SIGINT or SIGTERM.
    #[arg(long)]
    follow: bool,
    /// With --follow: append the JSON lines to this file instead of stdout.
    #[arg(long, requires = "follow")]
    follow_output: Option<PathBuf>,
    /// With --follow: how often to look for new lines, in milliseconds.
    #[arg(long, default_value_t = 200, requires = "follow")]
    poll_ms: u64,
    #[command(flatten)]
    limits: netsec::cli::InputLimitArgs,
    #[command(flatten)]
    common: netsec::cli::Common,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| {
        let cli = Cli::parse();
        cli.common.init_logging();
        cli.limits.apply();
        let model = Loaded::from_path(&cli.model).with_context(|| format!("loading {}", cli.model.display()))?;
        if cli.follow {
            if cli.output.is_some() {
                bail!("--follow writes JSON lines to stdout or --follow-output, not to an OUTPUT file");
            }
            return follow_log(&cli, &model);
        }
        let Some(output) = &cli.output else { bail!("missing OUTPUT: where to write the verdicts") };
        let opts = Options {
            chunk: cli.chunk,
            follow_symlinks: cli.follow_symlinks,
            strict: cli.strict,
            explain: cli.explain,
            exact: cli.exact,
        };
        let s = score_file(&model, &cli.input, output, &opts).context("predict failed")?;
        let line = format!(
            "{} rows scored ({} threats) in {:.3} s: {:.0} rows/s -> {}",
            s.rows,
            s.threats,
            s.seconds,
            s.rows_per_second,
            output.display()
        );
        // With `-` stdout carries the verdicts: the summary goes to stderr.
        if output.as_os_str() == "-" {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        if s.out_of_domain_cells > 0 {
            tracing::warn!(
                cells = s.out_of_domain_cells,
                "values outside the schema's domain were scored (--strict refuses them)"
            );
        }
        if s.unseen_category_cells > 0 {
            tracing::warn!(
                cells = s.unseen_category_cells,
                "categories never seen in training were scored as unknown categories"
            );
        }
        Ok(())
    })
}

fn follow_log(cli: &Cli, model: &Loaded) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a signal runtime");
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
            }
        });
        flag.store(true, Ordering::Relaxed);
    });
    let mut out: Box<dyn std::io::Write> = match &cli.follow_output {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let s = follow(model, &cli.input, &mut out, Duration::from_millis(cli.poll_ms.max(1)), &stop)
        .context("predict --follow failed")?;
    tracing::info!(
        scored = s.scored,
        threats = s.threats,
        rejected = s.rejected,
        rotations = s.rotations,
        "stopped following"
    );
    Ok(())
}
