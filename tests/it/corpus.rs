//! The bad-input corpus (`tests/corpus/`): every file must be refused by the stage named in
//! `cases.tsv`, with the expected message, a non-zero exit and no panic.

use std::path::Path;

use crate::common::Project;

#[test]
fn every_corpus_input_is_refused_with_its_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let cases = std::fs::read_to_string(dir.join("cases.tsv")).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in cases.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let [file, stage, expected]: [&str; 3] =
            line.splitn(3, '\t').collect::<Vec<_>>().try_into().expect("3 tab-separated fields");
        // Zeek logs go into the training part of a conn.log project, the rest into the toy one.
        let p = if file.contains("zeek") {
            let (p, _, _) = Project::conn(crate::common::Dialect::Tsv);
            p.edit("schemas/conn.yaml", "data/conn-b.log.gz", &format!("data/{file}"));
            p
        } else {
            let p = Project::new();
            p.edit("schemas/toy.yaml", "source: data/toy.csv", &format!("source: data/{file}"));
            p
        };
        p.write(&format!("data/{file}"), std::fs::read(dir.join(file)).unwrap());
        let outcome = if stage == "ingest" {
            p.run("ingest")
        } else {
            let ingest = p.run("ingest");
            if ingest.code != Some(0) {
                failures.push(format!("{file}: ingest should pass, failed with:\n{}", ingest.stderr));
                continue;
            }
            p.run(stage)
        };
        if stage == "ingest" && p.path("artifacts/split").exists() {
            failures.push(format!("{file}: ingest failed but left artifacts/split behind"));
        }
        if outcome.code != Some(1) || outcome.stderr.contains("panicked") || !outcome.stderr.contains(expected) {
            failures.push(format!(
                "{file}: exit {:?}, expected message {expected:?}, stderr:\n{}",
                outcome.code, outcome.stderr
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{} of the corpus failed:\n{}", failures.len(), failures.join("\n"));
    // Every case listed ran, and every file of the corpus is a listed case.
    let listed = cases.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
    assert_eq!(checked, listed, "every listed case runs");
    let files = std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().file_name() != "cases.tsv").count();
    assert_eq!(checked, files, "a corpus file without a line in cases.tsv is never checked");
}
