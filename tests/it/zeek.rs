//! Zeek conn.log in, verdicts out: the three dialects (TSV, JSON, IoT-23's three spaces),
//! gzip and several files per part, `ignore:` labels, derived features equal in `transform`
//! and the server, `predict` on logs, `predict --follow` through a rotation, log uploads.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{conn_header, conn_line, conn_text, gzip, Cmd, Conn, Dialect, Project};
use crate::serve::{post, Server};

fn background(rows: &[Conn]) -> usize {
    rows.iter().filter(|r| r[21] == "Background").count()
}

/// The same connections written in each dialect are read alike: the same split figures and
/// the same feature matrices; unlabeled rows are left out and counted, never benign.
#[test]
fn the_three_dialects_gzip_and_several_files_read_alike() {
    let mut reports = Vec::new();
    let mut matrices = Vec::new();
    for dialect in [Dialect::Tsv, Dialect::Json, Dialect::Iot23] {
        let (p, train, test) = Project::conn(dialect);
        p.run("ingest").success();
        let m = p.metrics("reports/ingest.json");
        let ignored = background(&train) + background(&test);
        assert!(ignored > 20, "the sample has unlabeled rows");
        assert_eq!(m["ignored_rows"], ignored, "{dialect:?}: {m:?}");
        assert_eq!(p.metrics("metrics/ingest.json")["ignored_rows"], ignored, "a headline figure");
        assert_eq!(m["train_rows"], train.len() - background(&train), "{dialect:?}");
        assert_eq!(m["test_rows"], test.len() - background(&test), "{dialect:?}");
        p.run("validate").success();
        p.run("transform").success();
        let names: Vec<String> = serde_json::from_str::<Value>(&p.read("artifacts/preprocessor.json")).unwrap()
            ["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(names.iter().any(|n| n == "history_S") && names.iter().any(|n| n == "resp_port_class"), "{names:?}");
        let pre: netsec::preprocess::Preprocessor =
            serde_json::from_str(&p.read("artifacts/preprocessor.json")).unwrap();
        let (x, y) =
            netsec::stages::read_features(&p.path("artifacts/features/train.parquet"), &pre.feature_names()).unwrap();
        assert_eq!(y.iter().filter(|&&t| t).count(), train.iter().filter(|r| r[21] == "Malicious").count());
        reports.push(m);
        matrices.push(x);
    }
    assert_eq!(reports[0], reports[1], "TSV and JSON");
    assert_eq!(reports[0], reports[2], "TSV and IoT-23");
    assert_eq!(matrices[0], matrices[1], "TSV and JSON give the same features");
    assert_eq!(matrices[0], matrices[2], "TSV and IoT-23 give the same features");
}

/// The server derives exactly the features `transform` derived, from the raw fields of the
/// same connection (sent as Zeek's JSON writes it); a log upload, `predict` on the log and
/// the JSON API give the same scores.
#[test]
fn the_server_derives_the_features_transform_derived_and_all_paths_agree() {
    let (p, _, test) = Project::conn(Dialect::Tsv);
    p.run_all();
    let model = p.path("models/production/conn.json");
    let pre: netsec::preprocess::Preprocessor = serde_json::from_str(&p.read("artifacts/preprocessor.json")).unwrap();
    let names = pre.feature_names();
    let (x, _) = netsec::stages::read_features(&p.path("artifacts/features/test.parquet"), &names).unwrap();
    let labeled: Vec<&Conn> = test.iter().filter(|r| r[21] != "Background").collect();
    assert_eq!(x.nrows(), labeled.len());

    let s = Server::start(&model, &[]);
    let records: Vec<Value> =
        labeled.iter().map(|r| serde_json::from_str(&conn_line(r, Dialect::Json)).unwrap()).collect();
    let (status, body) = post(
        &s.url("/v1/predict?features=true"),
        &[("Content-Type", "application/json")],
        serde_json::json!({ "records": records }).to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let predictions = answer["predictions"].as_array().unwrap();
    for (i, pred) in predictions.iter().enumerate() {
        for (j, name) in names.iter().enumerate() {
            let served = pred["features"][name].as_f64().unwrap();
            assert_eq!(served, x[[i, j]], "record {i} ({}), feature `{name}`", labeled[i][1]);
        }
    }
    let json_scores: Vec<f64> = predictions.iter().map(|p| p["score"].as_f64().unwrap()).collect();

    // The raw log uploaded (gzip), answered per connection with its uid.
    let log = gzip(conn_text(&test, Dialect::Tsv).as_bytes());
    let (status, body) = post(
        &s.url("/v1/predict/csv"),
        &[("Content-Type", "application/octet-stream"), ("Accept", "application/json")],
        &log,
    );
    assert_eq!(status, 200, "{body}");
    let upload: Value = serde_json::from_str(&body).unwrap();
    let by_uid: std::collections::HashMap<&str, f64> = upload["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["uid"].as_str().unwrap(), p["score"].as_f64().unwrap()))
        .collect();
    assert_eq!(by_uid.len(), test.len(), "every connection of the log, Background too, gets a verdict");
    for (r, score) in labeled.iter().zip(&json_scores) {
        assert!((by_uid[r[1].as_str()] - score).abs() < 1e-12, "{}", r[1]);
    }
    // CSV answer: the identity fields, then the verdict.
    let (status, csv) =
        post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/plain")], conn_text(&test, Dialect::Iot23).as_bytes());
    assert_eq!(status, 200, "{csv}");
    assert!(csv.starts_with("ts,uid,id.orig_h,id.orig_p,id.resp_h,id.resp_p,threat_score,prediction\n"), "{csv}");
    assert_eq!(csv.lines().count(), test.len() + 1);

    // predict on the log file, to JSON Lines: the same scores by uid.
    Cmd::bin("predict")
        .dir(p.path(""))
        .args(["data/conn-test.log", "out/verdicts.jsonl", "--model", model.to_str().unwrap()])
        .run()
        .success();
    let lines = p.read("out/verdicts.jsonl");
    let mut n = 0;
    for line in lines.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let uid = v["uid"].as_str().unwrap();
        assert!((v["threat_score"].as_f64().unwrap() - by_uid[uid]).abs() < 1e-6, "{line}");
        for key in ["ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "prediction"] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
        n += 1;
    }
    assert_eq!(n, test.len());
    // And to Parquet and CSV, by extension.
    for out in ["out/verdicts.parquet", "out/verdicts.csv"] {
        Cmd::bin("predict")
            .dir(p.path(""))
            .args(["data/conn-test.log", out, "--model", model.to_str().unwrap()])
            .run()
            .success();
    }
    let df = netsec::data::read_parquet(&p.path("out/verdicts.parquet")).unwrap();
    assert_eq!(df.height(), test.len());
    assert!(df.column("threat_score").is_ok() && df.column("uid").is_ok());
    s.stop();
}

/// `predict --follow` scores lines as they are appended, follows a rotation (the file renamed,
/// a new one created with its own header) and scores every connection exactly once.
#[test]
fn follow_scores_appends_and_a_rotation_once_each() {
    let (p, _, _) = Project::conn(Dialect::Tsv);
    p.run_all();
    let model = p.path("models/production/conn.json");
    let rows = crate::common::conn_log(160, 99);
    let live = p.path("live/conn.log");
    p.write("live/conn.log", conn_header(Dialect::Tsv));
    let append = |rows: &[Conn], newline: bool| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&live).unwrap();
        let mut text: String = rows.iter().map(|r| conn_line(r, Dialect::Tsv)).collect();
        if !newline {
            text.pop();
        }
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    };
    let out = p.path("live/verdicts.jsonl");
    let follower = Cmd::bin("predict")
        .dir(p.path(""))
        .args(["--follow", "live/conn.log", "--follow-output", "live/verdicts.jsonl", "--poll-ms", "20"])
        .args(["--model", model.to_str().unwrap()])
        .spawn();
    follower.wait_for_line("following", 20);
    let scored = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let lines = text.lines().count();
            if lines >= n || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    append(&rows[..50], true);
    assert_eq!(scored(50).lines().count(), 50);
    append(&rows[50..80], true);
    // Half a line: not scored until its end arrives.
    let half = conn_line(&rows[80], Dialect::Tsv);
    let (first, rest) = half.split_at(half.len() / 2);
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&live).unwrap();
        std::io::Write::write_all(&mut f, first.as_bytes()).unwrap();
    }
    assert_eq!(scored(80).lines().count(), 80);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(scored(80).lines().count(), 80, "a half-written line is not scored");
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&live).unwrap();
        std::io::Write::write_all(&mut f, rest.as_bytes()).unwrap();
    }
    // A last record without its newline, then the rotation: renamed, a new file created.
    append(&rows[81..82], false);
    std::fs::rename(&live, p.path("live/conn.00:00:00-01:00:00.log")).unwrap();
    p.write("live/conn.log", conn_header(Dialect::Tsv));
    append(&rows[82..], true);
    let text = scored(rows.len());
    let (status, stderr) = follower.stop("TERM");
    assert!(status.success(), "{stderr}");
    let uids: Vec<String> =
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["uid"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = rows.iter().map(|r| r[1].clone()).collect();
    assert_eq!(uids, expected, "every connection once, in order, across the rotation");
    assert!(stderr.contains("rotations=1") && stderr.contains("rejected=0"), "{stderr}");
}

/// Bad logs are refused over HTTP with a 4xx naming the line and the field.
#[test]
fn bad_log_uploads_get_4xx_naming_line_and_field() {
    let (p, _, test) = Project::conn(Dialect::Tsv);
    p.run_all();
    let s = Server::start(&p.path("models/production/conn.json"), &[]);
    let good = conn_text(&test[..5], Dialect::Tsv);
    let no_types: String = good.lines().filter(|l| !l.starts_with("#types")).map(|l| format!("{l}\n")).collect();
    let short = good.replacen("\tExternal-Attack-to-Device\n", "\n", 1).replacen("\t(empty)\tMalicious\n", "\n", 1);
    let mut bad_count: Vec<String> = good.lines().map(str::to_owned).collect();
    let mut f: Vec<String> = bad_count[9].split('\t').map(str::to_owned).collect();
    f[17] = "many".into();
    bad_count[9] = f.join("\t");
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        ("no #types".into(), no_types.into_bytes(), "no `#types`"),
        ("bad count".into(), (bad_count.join("\n") + "\n").into_bytes(), "orig_ip_bytes"),
        ("separator".into(), good.replacen("\\x09", "\\x41", 1).into_bytes(), "unknown `#separator"),
        ("binary".into(), b"\x7fELF\x00\x01\x02#separator".to_vec(), "binary data"),
        ("0 rows".into(), conn_header(Dialect::Tsv).into_bytes(), "no records"),
    ];
    for (what, body, expected) in cases {
        let (status, answer) = post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/plain")], &body);
        assert!((400..500).contains(&status), "{what}: {status} {answer}");
        assert!(answer.contains(expected), "{what}: {answer}");
    }
    let (status, answer) = post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/plain")], short.as_bytes());
    assert_eq!(status, 400, "{answer}");
    let v: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["row"], 9, "{answer}");
    assert!(v["column"].is_string(), "{answer}");
    s.stop();
}

/// A real browser uploads a gzip conn.log through the page and sees one row per connection,
/// each with its uid.
#[test]
fn browser_uploads_a_conn_log_through_the_page() {
    let (p, _, test) = Project::conn(Dialect::Tsv);
    p.run_all();
    let s = Server::start(&p.path("models/production/conn.json"), &[]);
    p.write("upload/conn.log.gz", gzip(conn_text(&test[..25], Dialect::Tsv).as_bytes()));
    let source = crate::serve::browser_upload(&s.url("/"), &p.path("upload/conn.log.gz"));
    assert!(source.contains("id=\"predictions\""), "no table in the page:\n{source}");
    assert_eq!(source.matches("<tr class=").count(), 25, "{source}");
    assert!(source.contains(&test[3][1]), "the uid of a connection is shown: {source}");
    s.stop();
}
