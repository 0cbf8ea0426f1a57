//! Typed errors of the library. Binaries wrap them with `anyhow` context at the edge.

use std::path::PathBuf;

/// Everything the library can refuse. Each variant names the file it is about, and where the
/// problem is inside it, so a user can go straight to the offending cell.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },

    /// The file as a whole is unusable (empty, wrong delimiter, no data rows, ...).
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },

    /// One cell or row of a data file is malformed.
    #[error("{}: row {row}{}: {message}", path.display(), column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default())]
    Row {
        path: PathBuf,
        /// 1-based line number in the file for text formats, 1-based row index otherwise.
        row: u64,
        column: Option<String>,
        message: String,
    },

    /// A key of `params.yaml` is missing, unknown or out of range.
    #[error("{}: {message}", path.display())]
    Params { path: PathBuf, message: String },

    /// The dataset schema file itself is invalid.
    #[error("schema {}: {message}", path.display())]
    Schema { path: PathBuf, message: String },

    /// The data broke error-level rules of the schema; the message lists every violation.
    #[error("{0}")]
    Validation(String),

    /// A stage input does not fit what the previous stage should have written.
    #[error("{}: {message}", path.display())]
    Artifact { path: PathBuf, message: String },

    #[error("model: {0}")]
    Model(String),

    /// A DVC remote refused the credentials or could not be reached.
    #[error("DVC remote {url}: {message}")]
    Remote { url: String, message: String },

    /// The experiment tracker (MLflow) refused a request or could not be reached.
    #[error("tracking server {uri}: {message}")]
    Tracking { uri: String, message: String },

    #[error("{}: {err}", path.display())]
    Polars { path: PathBuf, err: polars_core::error::PolarsError },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::params::ParamsError> for Error {
    fn from(e: crate::params::ParamsError) -> Self {
        Error::Params { path: e.path, message: e.message }
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io { path: path.into(), err }
    }

    pub(crate) fn polars(path: impl Into<PathBuf>, err: polars_core::error::PolarsError) -> Self {
        Error::Polars { path: path.into(), err }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File { path: path.into(), message: message.into() }
    }

    pub(crate) fn artifact(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Artifact { path: path.into(), message: message.into() }
    }

    /// The message without the file's path: what an HTTP answer may say (a path on the server
    /// is not the client's business).
    pub fn without_path(&self) -> String {
        match self {
            Error::Io { path, err } => format!("{}: {err}", name_of(path)),
            Error::File { path, message } | Error::Artifact { path, message } | Error::Params { path, message } => {
                format!("{}: {message}", name_of(path))
            }
            Error::Schema { path, message } => format!("schema {}: {message}", name_of(path)),
            Error::Row { path, row, column, message } => format!(
                "{}: row {row}{}: {message}",
                name_of(path),
                column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default()
            ),
            Error::Polars { path, err } => format!("{}: {err}", name_of(path)),
            other => other.to_string(),
        }
    }

    pub(crate) fn params(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Params { path: path.into(), message: message.into() }
    }
}

/// A path's file name alone.
fn name_of(path: &std::path::Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "the file".into())
}
