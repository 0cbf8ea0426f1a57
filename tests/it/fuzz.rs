//! Property tests of the parsers that take untrusted bytes: the server's JSON body reader, the
//! CSV record reader (uploads, `predict`, `ingest`), and the bundle loader. Each runs
//! generated inputs (proptest, stable Rust) and asserts: no panic, errors are 4xx-style
//! refusals, and a bundle that loads can encode and score a row without panicking.
//!
//! `NETSEC_FUZZ_CASES` sets the cases per parser (default 400,000: 1.2 million in all).
//! Re-run: `NETSEC_FUZZ_CASES=1000000 cargo test --release --test it fuzz::`.

use std::io::Read;

use ndarray::Array2;
use netsec::bundle::Bundle;
use netsec::data::records::{Layout, Records};
use netsec::models::Classifier;
use netsec::preprocess::Raw;
use netsec::serving::json_body::{self, Limits};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn cases() -> u32 {
    std::env::var("NETSEC_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400_000)
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() })
}

/// Bytes that are mostly made of a grammar's tokens, sometimes of anything.
fn tokens(alphabet: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(proptest::sample::select(alphabet), 0..max).prop_map(|t| t.concat().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..max),
    ]
}

const JSON: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"a\"",
    "\"b\"",
    "\"c\"",
    "\"id\"",
    "\"records\"",
    "1",
    "-0.5",
    "1e999",
    "90",
    "true",
    "null",
    "\"x\"",
    " ",
    "\n",
    "\u{feff}",
    "\"\\u0000\"",
    "\"",
    "\\",
    "[]",
    "{}",
    "0.9",
];

#[test]
fn json_bodies_never_panic_and_respect_their_limits() {
    let limits = Limits { max_records: 5, max_fields: 4 };
    runner()
        .run(&tokens(JSON, 48), |body| {
            let mut seen = 0usize;
            let out = json_body::read(&body, limits, &mut |i, rec| {
                assert_eq!(i, seen);
                assert!(rec.len() <= limits.max_fields);
                seen += 1;
                Ok(())
            });
            match out {
                Ok(n) => prop_assert!(n == seen && (1..=limits.max_records).contains(&n)),
                Err(e) => prop_assert!(e.0.is_client_error(), "{}: {}", e.0, e.1),
            }
            Ok(())
        })
        .unwrap();
}

const CSV: &[&str] =
    &["a", "b", "c", ",", ";", "\t", "\"", "\n", "\r\n", "1", "-1", "0.5", "\u{feff}", "\u{e9}", "\u{ff}", " ", "\"\""];

#[test]
fn csv_records_never_panic() {
    let layouts = [
        Layout::default(),
        Layout { delimiter: '\t', header: false, columns: vec!["a".into(), "b".into(), "c".into()] },
    ];
    runner()
        .run(&(tokens(CSV, 48), 0..2usize), |(text, l)| {
            let layout = &layouts[l];
            let Ok(mut records) = Records::new(text.as_slice(), layout) else { return Ok(()) };
            let width = records.columns().len();
            let mut record = csv::ByteRecord::new();
            while let Ok(true) = records.next_record(&mut record) {
                prop_assert_eq!(record.len(), width);
                if let Ok(fields) = records.fields(&record) {
                    for i in 0..fields.len() {
                        let _ = fields.get(i);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

/// The fixtures of the current bundle version, one per model family: (content, header).
fn fixtures() -> Vec<(Value, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bundles");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with(&format!("v{}-", netsec::bundle::VERSION)) {
            continue;
        }
        let mut text = String::new();
        std::fs::File::open(&path).unwrap().read_to_string(&mut text).unwrap();
        let (head, content) = text.split_once('\n').unwrap();
        out.push((serde_json::from_str(content.trim_end()).unwrap(), serde_json::from_str(head).unwrap()));
    }
    assert!(out.len() >= 6, "the fixtures of every family");
    out
}

/// Numbers a mutation puts in place of another: edges of indices, sizes and floats.
const NUMBERS: &[f64] = &[0.0, 1.0, -1.0, 2.0, 0.5, 7.0, 4294967294.0, 4294967295.0, 1e308, -1e308, 1e-300, 65535.0];

/// Apply mutation `(pick, kind, number)` to the `pick`-th leaf or array of `v` (in a walk).
fn mutate(v: &mut Value, pick: &mut usize, kind: u8, number: f64) -> bool {
    match v {
        Value::Array(items) => {
            if *pick == 0 {
                match kind % 3 {
                    0 if !items.is_empty() => {
                        items.pop();
                    }
                    1 if !items.is_empty() => {
                        let first = items[0].clone();
                        items.push(first);
                    }
                    _ => items.clear(),
                }
                return true;
            }
            *pick -= 1;
            items.iter_mut().any(|x| mutate(x, pick, kind, number))
        }
        Value::Object(map) => map.values_mut().any(|x| mutate(x, pick, kind, number)),
        Value::Number(_) | Value::Bool(_) | Value::Null | Value::String(_) => {
            if *pick == 0 {
                *v = match kind % 4 {
                    0 | 1 => serde_json::Number::from_f64(number).map(Value::Number).unwrap_or(Value::Null),
                    2 => Value::String("z".into()),
                    _ => Value::Null,
                };
                return true;
            }
            *pick -= 1;
            false
        }
    }
}

/// Structurally mutated bundles, resealed with a valid checksum: each either is refused with
/// a message, or loads and then encodes and scores rows without panicking.
#[test]
fn mutated_bundles_are_refused_or_score_without_panicking() {
    use sha2::{Digest, Sha256};
    let fixtures = fixtures();
    let n = fixtures.len();
    let loaded = std::cell::Cell::new(0u64);
    runner()
        .run(
            &(0..n, proptest::collection::vec((0..4000usize, any::<u8>(), proptest::sample::select(NUMBERS)), 1..4)),
            |(f, edits)| {
                let (mut content, mut header) = fixtures[f].clone();
                for (pick, kind, number) in edits {
                    let mut pick = pick;
                    mutate(&mut content, &mut pick, kind, number);
                }
                let mut bytes = serde_json::to_vec(&content).unwrap();
                bytes.push(b'\n');
                let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
                header["sha256"] = Value::String(sha);
                let mut file = serde_json::to_vec(&header).unwrap();
                file.push(b'\n');
                file.extend_from_slice(&bytes);
                let Ok(bundle) = Bundle::from_bytes(&file) else { return Ok(()) };
                loaded.set(loaded.get() + 1);
                let pre = &bundle.preprocessor;
                let mut x = Array2::<f64>::zeros((2, pre.width()));
                for (r, value) in [0.5, -3.0].into_iter().enumerate() {
                    let row = x.row_mut(r).into_slice().unwrap();
                    let mut unseen = Vec::new();
                    let _ = pre.encode_row(
                        |_, input| Ok(if input.is_categorical() { Raw::Text("q") } else { Raw::Number(value) }),
                        row,
                        &mut unseen,
                    );
                }
                let scores = bundle.model.predict_proba(x.view());
                prop_assert_eq!(scores.len(), 2);
                Ok(())
            },
        )
        .unwrap();
    let loaded = loaded.get();
    assert!(loaded > 0, "no mutated bundle loaded: the property was never exercised");
    eprintln!("{loaded} of {} mutated bundles loaded and scored", cases());
}
