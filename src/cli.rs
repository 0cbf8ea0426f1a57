//! What every stage binary shares: the `--params` flag, logging to stderr, and turning an
//! error into a readable message and a non-zero exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::params::ParamsFile;

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Parameter file; the stage reads its own section of it.
    #[arg(long, default_value = "params.yaml", global = true)]
    pub params: PathBuf,
    #[command(flatten)]
    pub log: Verbosity,
}

/// `-v` / `-q`, on every binary (those without params take only these).
#[derive(Debug, Clone, clap::Args)]
pub struct Verbosity {
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Limits of one input (`predict`, `serve`; `ingest` reads them from `ingest.limits`).
#[derive(Debug, Clone, clap::Args)]
pub struct InputLimitArgs {
    /// Bytes a gzip input may expand to.
    #[arg(long, default_value_t = crate::data::limits::InputLimits::default().max_decompressed_bytes)]
    pub max_decompressed_bytes: u64,
    /// Bytes of one line (a record or a header).
    #[arg(long, default_value_t = crate::data::limits::InputLimits::default().max_line_bytes)]
    pub max_line_bytes: usize,
    /// Fields of one row or header (CSV), or of one JSON record.
    #[arg(long, default_value_t = crate::data::limits::InputLimits::default().max_fields)]
    pub max_fields: usize,
    /// How many times its compressed size a gzip input may expand to past 64 MiB (0: any).
    #[arg(long, default_value_t = crate::data::limits::InputLimits::default().max_gzip_ratio)]
    pub max_gzip_ratio: u64,
}

impl InputLimitArgs {
    /// Make these this process's input limits.
    pub fn apply(&self) -> crate::data::limits::InputLimits {
        let limits = crate::data::limits::InputLimits {
            max_decompressed_bytes: self.max_decompressed_bytes,
            max_line_bytes: self.max_line_bytes,
            max_fields: self.max_fields,
            max_gzip_ratio: self.max_gzip_ratio,
        };
        crate::data::limits::set(limits);
        limits
    }
}

impl Common {
    pub fn load_params(&self) -> anyhow::Result<ParamsFile> {
        Ok(ParamsFile::load(&self.params)?)
    }

    pub fn init_logging(&self) {
        self.log.init_logging()
    }
}

impl Verbosity {
    /// Log to stderr, so stdout stays free for data.
    pub fn init_logging(&self) {
        let level = match (self.quiet, self.verbose) {
            (true, _) => "warn",
            (false, 0) => "info",
            (false, 1) => "debug",
            _ => "trace",
        };
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .without_time()
            .try_init();
    }
}

/// Run a stage's `exec`, print the whole error chain on failure, exit 1.
pub fn main(exec: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    match exec() {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`predict ... - | head`): stop quietly, as a filter
        // does (Rust ignores SIGPIPE, so this arrives as an error).
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether the error is a write to standard output (`-`) whose reader has gone; a broken
/// pipe anywhere else (a socket to a server) stays an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        matches!(c.downcast_ref::<crate::error::Error>(), Some(crate::error::Error::Io { path, err })
            if path.as_os_str() == "-" && err.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
