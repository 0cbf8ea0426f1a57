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
        let p = Project::new();
        p.write(&format!("data/{file}"), std::fs::read(dir.join(file)).unwrap());
        p.edit("schemas/toy.yaml", "source: data/toy.csv", &format!("source: data/{file}"));
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
        if outcome.code != Some(1) || outcome.stderr.contains("panicked") || !outcome.stderr.contains(expected) {
            failures.push(format!(
                "{file}: exit {:?}, expected message {expected:?}, stderr:\n{}",
                outcome.code, outcome.stderr
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{} of the corpus failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 20, "the corpus has only {checked} cases");
}
