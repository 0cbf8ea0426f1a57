//! Batch scoring on Apache Spark (`deploy/spark/score.py`): PySpark from PyPI (`.venv-spark`,
//! installed by `make test`) on `local[2]` with the machine's JRE streams every partition through
//! `predict - - --exact`. The Parquet it writes holds, row for row, the scores single-process
//! `predict` gives on the same rows, bit for bit.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use polars_io::prelude::*;

use crate::common::{bin, conn_header, conn_line, conn_log, toy_csv_with, Cmd, Dialect, Project};

/// 1,000,000 rows in 8 CSV files.
const ROWS: usize = 1_000_000;
const FILES: usize = 8;

/// The Python of the venv with PySpark (`NETSEC_SPARK_PYTHON` overrides).
fn spark_python() -> String {
    let python = std::env::var("NETSEC_SPARK_PYTHON")
        .unwrap_or_else(|_| format!("{}/.venv-spark/bin/python", env!("CARGO_MANIFEST_DIR")));
    assert!(Path::new(&python).exists(), "no {python}: `make test` installs .venv-spark");
    python
}

/// The Spark job on `input`, its summary line (JSON) and wall seconds.
fn spark_score(p: &Project, input: &Path, output: &Path, model: &Path) -> (serde_json::Value, f64) {
    let script = format!("{}/deploy/spark/score.py", env!("CARGO_MANIFEST_DIR"));
    let spark_tmp = p.path("spark-tmp");
    std::fs::create_dir_all(&spark_tmp).unwrap();
    let started = Instant::now();
    let run = Cmd::new(spark_python())
        .arg(script)
        .args(["--input".as_ref(), input.as_os_str()])
        .args(["--output".as_ref(), output.as_os_str()])
        .args(["--model".as_ref(), model.as_os_str()])
        .args(["--predict".as_ref(), bin("predict").as_os_str()])
        .args(["--master", "local[2]"])
        .env("SPARK_LOCAL_DIRS", &spark_tmp)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .run();
    run.success();
    let seconds = started.elapsed().as_secs_f64();
    let line = run.stdout.lines().last().unwrap_or_default().to_owned();
    (serde_json::from_str(&line).unwrap_or_else(|e| panic!("summary line {line:?}: {e}")), seconds)
}

/// Every Parquet part file under `dir`, as (key column → (threat_score bits, prediction)).
fn verdicts(dir: &Path, key: &str) -> HashMap<String, (u64, String)> {
    let mut out = HashMap::new();
    let mut parts = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("parquet") {
            continue;
        }
        parts += 1;
        let df = ParquetReader::new(std::fs::File::open(&path).unwrap()).finish().unwrap();
        let keys = df.column(key).unwrap().str().unwrap().clone();
        let scores = df.column("threat_score").unwrap().f64().unwrap().clone();
        let labels = df.column("prediction").unwrap().str().unwrap().clone();
        for i in 0..df.height() {
            let k = keys.get(i).unwrap().to_owned();
            let v = (scores.get(i).unwrap().to_bits(), labels.get(i).unwrap().to_owned());
            assert!(out.insert(k.clone(), v).is_none(), "{key} {k} scored twice");
        }
    }
    assert!(parts > 0, "no Parquet part files in {}", dir.display());
    out
}

/// Single-process `predict` of `input` into Parquet (every bit of a score), and its seconds.
fn predict(model: &Path, input: &Path, output: &Path) -> f64 {
    let started = Instant::now();
    Cmd::bin("predict").arg(input).arg(output).args(["--model".as_ref(), model.as_os_str()]).run().success();
    started.elapsed().as_secs_f64()
}

#[test]
fn spark_job_scores_a_million_rows_row_for_row_as_predict_does() {
    let p = Project::new();
    p.run_all();
    let model = p.path("models/production/toy.json");
    // A million rows with an id, in 8 CSV files; the same rows as one file for predict.
    let csv = toy_csv_with(ROWS, 77, 0.0);
    let mut all = String::from("row_id,a,b,c,label\n");
    let mut parts = vec![all.clone(); FILES];
    for (i, line) in csv.lines().skip(1).enumerate() {
        let row = format!("r{i},{line}\n");
        parts[i % FILES].push_str(&row);
        all.push_str(&row);
    }
    for (k, part) in parts.iter().enumerate() {
        p.write(&format!("lake/part-{k}.csv"), part);
    }
    p.write("all.csv", &all);
    drop((csv, parts, all));

    let single = predict(&model, &p.path("all.csv"), &p.path("all.parquet"));
    let expected = {
        let df = ParquetReader::new(std::fs::File::open(p.path("all.parquet")).unwrap()).finish().unwrap();
        let keys = df.column("row_id").unwrap().str().unwrap().clone();
        let scores = df.column("threat_score").unwrap().f64().unwrap().clone();
        let labels = df.column("prediction").unwrap().str().unwrap().clone();
        (0..df.height())
            .map(|i| {
                let v = (scores.get(i).unwrap().to_bits(), labels.get(i).unwrap().to_owned());
                (keys.get(i).unwrap().to_owned(), v)
            })
            .collect::<HashMap<_, _>>()
    };
    assert_eq!(expected.len(), ROWS);

    let (summary, seconds) = spark_score(&p, &p.path("lake"), &p.path("verdicts"), &model);
    assert_eq!(summary["rows"], ROWS, "{summary}");
    assert!(summary["partitions"].as_u64().unwrap() >= 2, "one partition is no test of partitioning: {summary}");
    let got = verdicts(&p.path("verdicts"), "row_id");
    assert_eq!(got.len(), ROWS, "every row once");
    let differ = expected.iter().filter(|(k, v)| got.get(*k) != Some(v)).count();
    assert_eq!(differ, 0, "{differ} of {ROWS} rows scored differently on Spark than by predict");
    eprintln!(
        "{ROWS} rows: Spark local[2] {seconds:.1} s ({} partitions, JVM start included); single-process predict {single:.1} s",
        summary["partitions"]
    );

    // The job refuses to overwrite what it wrote before, unless told to.
    Cmd::new(spark_python())
        .arg(format!("{}/deploy/spark/score.py", env!("CARGO_MANIFEST_DIR")))
        .args(["--input".as_ref(), p.path("lake").as_os_str()])
        .args(["--output".as_ref(), p.path("verdicts").as_os_str()])
        .args(["--model".as_ref(), model.as_os_str()])
        .run()
        .fails_with(&["exists", "--overwrite"]);
}

#[test]
fn spark_job_scores_zeek_logs_with_their_header_in_every_partition() {
    let (p, _, _) = Project::conn(Dialect::Tsv);
    p.run_all();
    let model = p.path("models/production/conn.json");
    // Three logs of one header, split by Spark into partitions that have no header of their own.
    let rows = conn_log(30_000, 5);
    let header = conn_header(Dialect::Tsv);
    let mut all = header.clone();
    for (k, chunk) in rows.chunks(10_000).enumerate() {
        let mut text = header.clone();
        for r in chunk {
            text.push_str(&conn_line(r, Dialect::Tsv));
            all.push_str(&conn_line(r, Dialect::Tsv));
        }
        p.write(&format!("zeek/conn.{k}.log"), &text);
    }
    p.write("all.log", &all);
    predict(&model, &p.path("all.log"), &p.path("all.parquet"));
    let expected = verdicts_of_file(&p.path("all.parquet"));
    let (summary, _) = spark_score(&p, &p.path("zeek"), &p.path("verdicts"), &model);
    assert_eq!(summary["format"], "zeek", "{summary}");
    assert!(summary["partitions"].as_u64().unwrap() >= 2, "one partition is no test of the header: {summary}");
    let got = verdicts(&p.path("verdicts"), "uid");
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected, "Spark's verdicts differ from predict's");
}

/// One Parquet file of predict, keyed by the connection's uid.
fn verdicts_of_file(path: &Path) -> HashMap<String, (u64, String)> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(path, dir.path().join("one.parquet")).unwrap();
    verdicts(dir.path(), "uid")
}
