//! The SQL source against a real PostgreSQL (Debian's package), started by the test on a free
//! port of 127.0.0.1 with its own data folder: the phishing table loaded into it gives the same
//! evaluation as the CSV file; wrong password, missing table and wrong column type each give
//! a one-line error without the password; a snapshot and a second run give the same bytes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Cmd, Project, Spawned};
use crate::serve::start_on_free_port;

pub const PASSWORD: &str = "pg-Secret-4217";
const CSV: &str = "data/phishing-websites/phishing_websites.csv";

/// The folder of PostgreSQL's programs (Debian installs them under /usr/lib/postgresql/<v>/bin).
fn pg_bin(program: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path().join("bin"))).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.into_iter().rev().map(|d| d.join(program)).find(|p| p.exists()).unwrap_or_else(|| PathBuf::from(program))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A command run as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_pg(program: PathBuf) -> Cmd {
    if is_root() {
        Cmd::new("runuser").args(["-u", "postgres", "--"]).arg(program)
    } else {
        Cmd::new(program)
    }
}

pub struct Pg {
    _server: Spawned,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Pg {
    /// initdb (user `netsec`, password auth on TCP), then the server on a free port.
    pub fn start() -> Pg {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if is_root() {
            let chown = Cmd::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).run();
            assert_eq!(chown.code, Some(0), "{}", chown.stderr);
        }
        let init = as_pg(pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "netsec", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .run();
        assert_eq!(init.code, Some(0), "initdb: {}{}", init.stdout, init.stderr);
        let socket = dir.path().to_path_buf();
        let (server, port) = start_on_free_port(
            "postgres",
            60,
            |port| {
                as_pg(pg_bin("postgres")).arg("-D").arg(&data).args([
                    "-h".to_owned(),
                    "127.0.0.1".to_owned(),
                    "-p".to_owned(),
                    port.to_string(),
                    "-k".to_owned(),
                    socket.display().to_string(),
                    "-c".to_owned(),
                    "fsync=off".to_owned(),
                ])
            },
            |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        let pg = Pg { _server: server, port, _dir: dir };
        // Accepting TCP is not yet accepting queries: wait for a query to pass.
        let deadline = Instant::now() + Duration::from_secs(30);
        while pg.psql("SELECT 1").code != Some(0) {
            assert!(Instant::now() < deadline, "postgres does not answer queries");
            std::thread::sleep(Duration::from_millis(200));
        }
        pg
    }

    pub fn url(&self, password: &str) -> String {
        format!("postgresql://netsec:{password}@127.0.0.1:{}/postgres", self.port)
    }

    pub fn psql(&self, sql: &str) -> crate::common::Run {
        Cmd::new(pg_bin("psql"))
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-h", "127.0.0.1", "-U", "netsec", "-d", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .run()
    }
}

/// The phishing columns, quoted for SQL (their names are mixed case).
fn columns(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join(CSV)).unwrap();
    text.lines().next().unwrap().split(',').map(str::to_owned).collect()
}

/// A project with the repository's params and phishing schema, its data block given.
fn project(root: &Path, data_block: &str) -> Project {
    let p = Project::new();
    p.write("params.yaml", std::fs::read_to_string(root.join("params.yaml")).unwrap());
    let schema = std::fs::read_to_string(root.join("schemas/phishing.yaml")).unwrap();
    let schema = schema.replace("  source: data/phishing-websites/phishing_websites.csv\n", data_block);
    p.write("schemas/phishing.yaml", schema);
    p
}

fn run_until_evaluate(p: &Project, env: &[(&str, &str)]) -> String {
    for stage in ["ingest", "validate", "transform", "train", "evaluate"] {
        p.run_env(stage, env).success();
    }
    p.read("metrics/eval.json")
}

/// Load the phishing CSV of `root` into table `phishing` (with an `id` in file order); the
/// SELECT that reads it back in that order.
pub fn load_phishing(pg: &Pg, root: &Path) -> String {
    let cols = columns(root);
    let quoted: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
    let create = format!(
        "CREATE TABLE phishing (id bigserial PRIMARY KEY, {})",
        quoted.iter().map(|c| format!("{c} integer NOT NULL")).collect::<Vec<_>>().join(", ")
    );
    let r = pg.psql(&create);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let load = format!(
        "\\copy phishing({}) FROM '{}' WITH (FORMAT csv, HEADER true)",
        quoted.join(","),
        root.join(CSV).display()
    );
    let r = pg.psql(&load);
    assert_eq!(r.code, Some(0), "{}", r.stderr);

    format!("SELECT {} FROM phishing ORDER BY id", quoted.join(", "))
}

#[test]
fn a_postgres_table_gives_the_same_evaluation_as_the_csv_and_errors_keep_the_password() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(root.join(CSV).exists(), "{CSV}: run `dvc pull` first (make test does)");
    let pg = Pg::start();
    let select = load_phishing(&pg, root);
    let sql_block = |select: &str| format!("  source:\n    url_env: NETSEC_DB_URL\n    sql: |\n      {select}\n");
    let url = pg.url(PASSWORD);
    let env = [("NETSEC_DB_URL", url.as_str())];

    // The CSV file and the table: the same evaluation, figure for figure.
    let from_csv = project(root, &format!("  source: {}\n", root.join(CSV).display()));
    let csv_eval = run_until_evaluate(&from_csv, &[]);
    let from_sql = project(root, &sql_block(&select));
    let sql_eval = run_until_evaluate(&from_sql, &env);
    assert_eq!(sql_eval, csv_eval, "the SQL source must evaluate as the CSV does");
    let ingest = from_sql.metrics("metrics/ingest.json");
    assert_eq!(ingest["snapshot_rows"], 11055, "{ingest:?}");
    assert_eq!(ingest["snapshot_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(ingest["query_sha256"].as_str().map(str::len), Some(64));

    // A second run reads the same rows into the same split bytes.
    let split = |p: &Project| std::fs::read(p.path("artifacts/split/train.parquet")).unwrap();
    let before = split(&from_sql);
    from_sql.run_env("ingest", &env).success();
    assert_eq!(split(&from_sql), before);

    // snapshot: the rows to Parquet, then read as a file source: the same split.
    let snap = from_sql.run_env("snapshot", &env);
    snap.success();
    let printed: serde_json::Value = serde_json::from_str(snap.stdout.trim()).unwrap();
    assert_eq!(printed["rows"], 11055);
    assert_eq!(printed["content_sha256"], ingest["snapshot_sha256"]);
    let from_snapshot = project(root, &format!("  source: {}\n", from_sql.path("data/phishing.parquet").display()));
    from_snapshot.run("ingest").success();
    // The same rows on each side (compared as CSV: `export` leaves out the source-row column,
    // a line of COPY's CSV on one side and a Parquet row on the other).
    let rows = |p: &Project| {
        for part in ["train", "test"] {
            Cmd::bin("export")
                .arg(p.path(&format!("artifacts/split/{part}.parquet")))
                .arg(p.path(&format!("{part}.csv")))
                .run()
                .success();
        }
        (p.read("train.csv"), p.read("test.csv"))
    };
    let (a, b) = (rows(&from_snapshot), rows(&from_sql));
    assert!(a.1.lines().count() > 2000 && a == b, "the snapshot splits otherwise");

    // Wrong password, missing table, a column of the wrong type: one line each, no password.
    let bad_url = pg.url("wrong-Pass-9981");
    let wrong_pw = from_sql.run_env("ingest", &[("NETSEC_DB_URL", bad_url.as_str())]);
    let missing = project(root, &sql_block("SELECT * FROM no_such_table"));
    let missing = missing.run_env("ingest", &env);
    let typed = select.replacen("\"having_IP_Address\"", "'x'::text AS \"having_IP_Address\"", 1);
    let wrong_type = project(root, &sql_block(&typed));
    let wrong_type = wrong_type.run_env("ingest", &env);
    let unset = from_sql.run("ingest");
    for (run, needle) in [
        (&wrong_pw, "password authentication failed for user \"netsec\""),
        (&missing, "relation \"no_such_table\" does not exist"),
        (&wrong_type, "column `having_IP_Address`: the query returns text, the schema says integer"),
        (&unset, "NETSEC_DB_URL is not set"),
    ] {
        assert_ne!(run.code, Some(0), "{needle}: it succeeded");
        // `error: ingest failed` and one `caused by:` line that names the problem.
        let report: Vec<&str> = run.stderr.lines().skip_while(|l| !l.starts_with("error:")).collect();
        assert_eq!(report.len(), 2, "{needle}:\n{}", run.stderr);
        assert!(report[1].contains(needle), "{needle} not in: {}", report[1]);
        for secret in [PASSWORD, "wrong-Pass-9981"] {
            assert!(
                !run.stderr.contains(secret) && !run.stdout.contains(secret),
                "the password leaked:\n{}",
                run.stderr
            );
        }
    }
    assert!(wrong_pw.stderr.contains("netsec@127.0.0.1"), "the server is named: {}", wrong_pw.stderr);
}
