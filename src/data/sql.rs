//! A SQL source: the rows of a query, from PostgreSQL (`source: {sql: "SELECT ...",
//! url_env: NETSEC_DB_URL}` in a schema's `data:` block).
//!
//! The connection URL comes from the environment variable the schema names, never from a
//! file of the repository; it is never written to a log, an error or a metric (errors name
//! the server as `user@host:port/database`). The query's result columns are checked against
//! the schema's types before any row is read (a column of the wrong type is named), then the
//! rows are streamed with `COPY (query) TO STDOUT (FORMAT csv, HEADER)` through the same
//! record reader as CSV files: a bad cell is named by its row of the result and its column.
//!
//! The split follows the row order, so give the query an `ORDER BY`. What was read is
//! recorded as a snapshot: the row count, the SHA-256 of the rows as COPY sent them, and the
//! SHA-256 of the query's text. Another SQL engine is another client behind [`SqlClient`].

use std::io::Read;
use std::path::PathBuf;

use polars_core::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::records::Records;
use super::Layout;
use crate::error::{Error, Result};
use crate::schema::{ColumnType, Schema};

/// `source: {sql: ..., url_env: ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlQuery {
    /// The query (one SELECT; a trailing `;` is dropped).
    pub sql: String,
    /// The environment variable holding the connection URL
    /// (`postgresql://user:password@host:port/database`).
    #[serde(default = "default_url_env")]
    pub url_env: String,
}

fn default_url_env() -> String {
    "NETSEC_DB_URL".into()
}

/// What a run read: for `metrics/ingest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub rows: usize,
    /// SHA-256 of the rows as the server sent them (CSV, header included).
    pub content_sha256: String,
    /// SHA-256 of the query's text.
    pub query_sha256: String,
}

/// A result column: its name and the server's type name (`int4`, `text`, ...).
pub struct ResultColumn {
    pub name: String,
    pub type_name: String,
}

/// What the source needs of a SQL engine.
pub trait SqlClient {
    /// The columns the query would return, without running it.
    fn describe(&mut self, sql: &str) -> std::result::Result<Vec<ResultColumn>, String>;
    /// The query's rows as CSV with a header line.
    fn copy_csv<'a>(&'a mut self, sql: &str) -> std::result::Result<Box<dyn Read + 'a>, String>;
}

/// PostgreSQL, through the `postgres` crate (no TLS: a server on the same host or network).
pub struct Postgres(postgres::Client);

impl Postgres {
    pub fn connect(url: &str) -> std::result::Result<Postgres, String> {
        postgres::Client::connect(url, postgres::NoTls).map(Postgres).map_err(|e| one_line(&e))
    }
}

impl SqlClient for Postgres {
    fn describe(&mut self, sql: &str) -> std::result::Result<Vec<ResultColumn>, String> {
        let statement = self.0.prepare(sql).map_err(|e| one_line(&e))?;
        Ok(statement
            .columns()
            .iter()
            .map(|c| ResultColumn { name: c.name().to_owned(), type_name: c.type_().name().to_owned() })
            .collect())
    }

    fn copy_csv<'a>(&'a mut self, sql: &str) -> std::result::Result<Box<dyn Read + 'a>, String> {
        let copy = format!("COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)");
        let reader = self.0.copy_out(copy.as_str()).map_err(|e| one_line(&e))?;
        Ok(Box::new(reader))
    }
}

/// A driver error on one line: the server's message (and its detail), never the URL.
fn one_line(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string().replace('\n', " "),
    }
}

/// The URL without its password, for messages: `user@host:port/database`.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}@{}{}{}",
            u.username(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "(a URL that does not parse)".into(),
    }
}

/// Whether the server's column type holds what the schema says the column is.
fn fits(kind: ColumnType, type_name: &str) -> bool {
    let integer = matches!(type_name, "int2" | "int4" | "int8");
    let float = matches!(type_name, "float4" | "float8" | "numeric");
    let text = matches!(type_name, "text" | "varchar" | "bpchar" | "name");
    match kind {
        ColumnType::Integer => integer,
        ColumnType::Float => integer || float,
        ColumnType::Categorical => integer || text || type_name == "bool",
        ColumnType::Text | ColumnType::Url => text,
    }
}

impl SqlQuery {
    /// Where errors say the rows come from.
    pub fn origin(&self, dataset: &str) -> PathBuf {
        PathBuf::from(format!("sql:{dataset}"))
    }

    fn text(&self) -> &str {
        self.sql.trim().trim_end_matches(';').trim_end()
    }

    /// Connect with the URL in the environment.
    pub fn connect(&self, dataset: &str) -> Result<Postgres> {
        let origin = self.origin(dataset);
        let url = std::env::var(&self.url_env).ok().filter(|u| !u.is_empty()).ok_or_else(|| {
            Error::file(
                &origin,
                format!(
                    "{} is not set: it must hold the database URL (postgresql://user:password@host:port/database)",
                    self.url_env
                ),
            )
        })?;
        Postgres::connect(&url)
            .map_err(|m| Error::file(&origin, format!("cannot connect to {} ({}): {m}", redacted(&url), self.url_env)))
    }

    /// Run the query: its rows as a table (with the [`ROW`] column: the row's line in the CSV
    /// that COPY sent, so the first row is 2), and the snapshot.
    pub fn read(&self, client: &mut dyn SqlClient, schema: &Schema, dataset: &str) -> Result<(DataFrame, Snapshot)> {
        let origin = self.origin(dataset);
        let sql = self.text();
        let columns = client.describe(sql).map_err(|m| Error::file(&origin, format!("the query is refused: {m}")))?;
        for spec in &schema.columns {
            let Some(col) = columns.iter().find(|c| c.name == spec.name) else {
                return Err(Error::file(&origin, format!("the query returns no column `{}`", spec.name)));
            };
            if !fits(spec.kind, &col.type_name) {
                return Err(Error::file(
                    &origin,
                    format!(
                        "column `{}`: the query returns {}, the schema says {} (cast it in the query)",
                        spec.name, col.type_name, spec.kind
                    ),
                ));
            }
        }
        let reader = client.copy_csv(sql).map_err(|m| Error::file(&origin, format!("the query failed: {m}")))?;
        let mut hashed = Hashing { inner: reader, hash: Sha256::new() };
        let layout = Layout { delimiter: ',', header: true, columns: Vec::new() };
        let records = Records::new(&mut hashed, &layout).map_err(|e| super::csv::at(&origin, e))?;
        let df =
            super::csv::frame(records, &origin)?.ok_or_else(|| Error::file(&origin, "the query returned no rows"))?;
        let snapshot = Snapshot {
            rows: df.height(),
            content_sha256: crate::schema::hex(&hashed.hash.finalize()),
            query_sha256: crate::schema::hex(&Sha256::digest(sql.as_bytes())),
        };
        Ok((df, snapshot))
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_shown_without_its_password() {
        let shown = redacted("postgresql://netsec:s3cret-pw@127.0.0.1:5433/netsec");
        assert_eq!(shown, "netsec@127.0.0.1:5433/netsec");
        assert!(!redacted("postgres://u:s3cret-pw@h/db").contains("s3cret"));
    }

    #[test]
    fn schema_types_accept_only_fitting_server_types() {
        assert!(fits(ColumnType::Integer, "int8") && !fits(ColumnType::Integer, "text"));
        assert!(fits(ColumnType::Float, "int4") && fits(ColumnType::Float, "numeric"));
        assert!(!fits(ColumnType::Float, "varchar") && fits(ColumnType::Categorical, "varchar"));
    }
}
