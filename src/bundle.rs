//! The model bundle: everything needed to score raw records, in one file.
//!
//! JSON, not pickle: loading it runs no code. The file has two lines:
//!
//! 1. a header, `{"format":"netsec-model-bundle","version":2,"sha256":"<hex>"}`;
//! 2. the content, one JSON object ([`Bundle`]), whose exact bytes (through the final newline)
//!    hash to the header's `sha256`.
//!
//! Loading checks the format, the version and the checksum BEFORE parsing the content, so a
//! truncated, edited or corrupted file is refused with a message naming the checksum.
//!
//! The format is every type written inside [`Bundle`]: the models of `models`, the
//! preprocessing steps and their enums (`preprocess::Encoding`, `ImputeStrategy`),
//! `metrics::MeanStd`, `schema::TargetSpec`, `features::Derivation` (and each derivation's
//! own fields), `validate::reference::Reference` (optional: a bundle without it reads the
//! same and is served without drift monitoring). A change that makes an existing bundle read
//! differently (a renamed, removed or reshaped field or variant) must move [`VERSION`]: the
//! fixtures `tests/bundles/v<VERSION>-*.json`, one per family, must load and re-serialize byte
//! for byte, so such a change fails the test until the version moves and new fixtures are
//! written (`cargo test --release --lib write_bundle_fixtures -- --ignored`). Adding a family
//! (a new variant) keeps old bundles readable and the version.

use std::path::Path;

use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::artifact::atomic_write;
use crate::data::Layout;
use crate::error::{Error, Result};
use crate::models::Model;
use crate::preprocess::Preprocessor;
use crate::schema::hex;
use crate::schema::TargetSpec;
use std::collections::BTreeMap;

use crate::metrics::MeanStd;
use crate::validate::reference::Reference;

pub const FORMAT: &str = "netsec-model-bundle";
/// The version written. 3 added `input` (how the dataset's files are laid out); 4 added the
/// derived features (`preprocessor.derive`, `features::Derivation`) and the target's
/// `ignore` and `detail`, so that a build which cannot derive refuses such a bundle instead
/// of missing its features.
pub const VERSION: u32 = 4;
/// The versions read: a version-2 bundle reads as a CSV with a header row.
pub const READS: [u32; 3] = [2, 3, 4];

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub dataset: String,
    /// [`crate::schema::Schema::hash`] of the schema the model was trained under.
    pub schema_hash: String,
    pub target: TargetSpec,
    /// How the dataset's text files are laid out (delimiter, header or column names), so that
    /// `predict` and the server read a file as `ingest` did.
    #[serde(default)]
    pub input: Layout,
    pub feature_names: Vec<String>,
    pub preprocessor: Preprocessor,
    pub model: Model,
    /// Scores at or above it are threats (chosen on the training part, see `train.threshold`).
    pub threshold: f64,
    /// The winning candidate's hyperparameters (all of them, defaults included).
    pub hyperparameters: serde_json::Value,
    /// The `train` section of `params.yaml` that produced the model.
    pub params: serde_json::Value,
    /// The winner's cross-validated scores on the training part.
    pub cv: BTreeMap<String, MeanStd>,
    /// The training distribution of the raw inputs and of the scores, for live drift
    /// monitoring in `serve` (absent in bundles made before it, or without a profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
}

impl Bundle {
    /// The file's bytes: header line, then the content line. The same model always gives the
    /// same bytes (no timestamps inside).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut content =
            serde_json::to_vec(self).map_err(|e| Error::Model(format!("cannot serialize bundle: {e}")))?;
        content.push(b'\n');
        let header = Header { format: FORMAT.into(), version: VERSION, sha256: hex(&Sha256::digest(&content)) };
        let mut bytes = serde_json::to_vec(&header).expect("header serializes");
        bytes.push(b'\n');
        bytes.extend_from_slice(&content);
        Ok(bytes)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        atomic_write(path, |f| std::io::Write::write_all(f, &bytes).map_err(|e| Error::io(path, e)))
    }

    pub fn load(path: &Path) -> Result<Self> {
        Self::load_identified(path).map(|(b, _)| b)
    }

    /// The bundle and its identity: the sha256 its header records (checked against the
    /// content). A file of an older version keeps its identity, which re-serializing it in
    /// this version's form would change.
    pub fn load_identified(path: &Path) -> Result<(Self, String)> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&bytes).map_err(|m| Error::artifact(path, m))
    }

    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        Self::parse(bytes).map(|(b, _)| b)
    }

    /// The sha256 a bundle's bytes record, once the format, version and checksum are checked
    /// and the content parses.
    pub fn from_bytes_identified(bytes: &[u8]) -> std::result::Result<String, String> {
        Self::parse(bytes).map(|(_, sha)| sha)
    }

    /// The bundle and the sha256 its header records (checked against the content).
    fn parse(bytes: &[u8]) -> std::result::Result<(Self, String), String> {
        let split = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("not a model bundle (no header line); cannot verify its sha256 checksum")?;
        let (head, content) = (&bytes[..split], &bytes[split + 1..]);
        let header: Header = serde_json::from_slice(head)
            .map_err(|e| format!("unreadable bundle header ({e}); cannot verify its sha256 checksum"))?;
        if header.format != FORMAT {
            return Err(format!(
                "not a model bundle (format `{}`, expected `{FORMAT}`); its sha256 checksum cannot be verified",
                header.format
            ));
        }
        if !READS.contains(&header.version) {
            return Err(format!(
                "bundle version {} is not supported (this build reads versions {}); its sha256 checksum cannot be verified",
                header.version,
                READS.map(|v| v.to_string()).join(", ")
            ));
        }
        let actual = hex(&Sha256::digest(content));
        if actual != header.sha256 {
            return Err(format!(
                "sha256 checksum mismatch: the header says {} but the content hashes to {actual}; the file was modified or corrupted",
                header.sha256
            ));
        }
        let bundle: Bundle = serde_json::from_slice(content).map_err(|e| format!("malformed bundle content: {e}"))?;
        bundle.check().map_err(|e| format!("invalid bundle: {e}"))?;
        Ok((bundle, header.sha256))
    }

    /// The parts agree with each other: the steps with the feature names, the model with the
    /// width of an encoded row, a threshold a score can be compared with (see
    /// [`Model::check`] for the model's own structure).
    pub fn check(&self) -> std::result::Result<(), String> {
        self.preprocessor.check().map_err(|e| format!("preprocessor.{e}"))?;
        let width = self.preprocessor.width();
        let names = self.preprocessor.feature_names();
        if names != self.feature_names {
            return Err(format!(
                "feature_names: {} names that are not the {width} the preprocessor's steps give",
                self.feature_names.len()
            ));
        }
        self.model.check(width).map_err(|e| format!("model ({}): {e}", self.model.family()))?;
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold: {} is not a probability between 0 and 1", self.threshold));
        }
        Ok(())
    }

    /// sha256 of the content (what the header records): the model's identity.
    pub fn content_sha256(&self) -> Result<String> {
        let bytes = self.to_bytes()?;
        let header: Header =
            serde_json::from_slice(&bytes[..bytes.iter().position(|&b| b == b'\n').expect("header line")])
                .expect("own header parses");
        Ok(header.sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::logistic::LogisticModel;
    use crate::preprocess::FeatureStep;
    use crate::preprocess::ImputeStrategy;
    use crate::schema::Scalar;

    fn bundle() -> Bundle {
        Bundle {
            dataset: "toy".into(),
            schema_hash: "ab".repeat(32),
            target: TargetSpec {
                column: "y".into(),
                threat: Some(vec![Scalar::Int(1)]),
                benign: None,
                ignore: None,
                detail: None,
            },
            input: Layout { delimiter: ',', header: true, columns: vec!["a".into(), "b".into(), "y".into()] },
            feature_names: vec!["a".into(), "b".into()],
            preprocessor: Preprocessor::new(
                ImputeStrategy::Median,
                vec![
                    FeatureStep::Numeric { name: "a".into(), fill: 0.0 },
                    FeatureStep::Numeric { name: "b".into(), fill: 1.5 },
                ],
                Vec::new(),
            ),
            model: Model::Logistic(LogisticModel {
                intercept: -0.25,
                coefficients: vec![1.0 / 3.0, -2.0],
                importance: vec![0.5, 0.5],
            }),
            threshold: 0.4,
            hyperparameters: serde_json::json!({"alpha": 1.0}),
            params: serde_json::json!({"seed": 1}),
            cv: BTreeMap::from([("f1".to_string(), MeanStd { mean: 0.9, std: 0.01 })]),
            reference: None,
        }
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let b = bundle();
        let bytes = b.to_bytes().unwrap();
        let back = Bundle::from_bytes(&bytes).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn any_flipped_byte_is_refused_naming_the_checksum() {
        let bytes = bundle().to_bytes().unwrap();
        let split = bytes.iter().position(|&b| b == b'\n').unwrap();
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let err = match Bundle::from_bytes(&bad) {
                Err(e) => e,
                // A flip of the header's version digit can name another version this build
                // reads; the content, covered by the checksum, is then the same model.
                Ok(b) if i < split => {
                    assert_eq!(b, bundle(), "byte {i}");
                    continue;
                }
                Ok(_) => panic!("byte {i}: a modified content was accepted"),
            };
            if i > split {
                // Every content byte is covered by the checksum, and the error says so.
                assert!(err.contains("sha256 checksum mismatch"), "byte {i}: {err}");
            } else {
                // A damaged header is refused before the content is looked at.
                assert!(!err.is_empty(), "byte {i}");
            }
        }
        let mut bad = bytes.clone();
        bad[split + 10] ^= 0x01;
        assert!(Bundle::from_bytes(&bad).unwrap_err().contains("sha256 checksum mismatch"));
    }

    #[test]
    fn another_version_is_refused() {
        let bytes = bundle().to_bytes().unwrap();
        let text = String::from_utf8(bytes).unwrap().replacen(&format!("\"version\":{VERSION}"), "\"version\":1", 1);
        let err = Bundle::from_bytes(text.as_bytes()).unwrap_err();
        assert!(err.contains("bundle version 1 is not supported (this build reads versions 2, 3, 4)"), "{err}");
    }

    /// One bundle per family, with numeric and both categorical encodings, fitted on a tiny
    /// deterministic problem.
    fn fixtures() -> Vec<(String, Bundle)> {
        use crate::models::{ModelSpec, FAMILIES};
        use crate::preprocess::Encoding;
        let x = ndarray::Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
        let y: Vec<bool> = (0..40).map(|i| (i * 7) % 11 > 5).collect();
        FAMILIES
            .iter()
            .map(|f| {
                let params = match *f {
                    "logistic" | "decision_tree" => serde_json::json!({}),
                    _ => serde_json::json!({ "n_estimators": 3 }),
                };
                let spec = ModelSpec::from_json(f, params).unwrap();
                let mut b = bundle();
                b.model = spec.fit(x.view(), &y, 1).unwrap();
                b.hyperparameters = spec.params_json();
                b.feature_names = vec!["a".into(), "proto=tcp".into(), "service".into()];
                b.input = Layout {
                    delimiter: '\t',
                    header: false,
                    columns: vec!["a".into(), "proto".into(), "service".into(), "y".into()],
                };
                b.preprocessor = Preprocessor::new(
                    ImputeStrategy::MostFrequent,
                    vec![
                        FeatureStep::Numeric { name: "a".into(), fill: 0.5 },
                        FeatureStep::Categorical {
                            name: "proto".into(),
                            encoding: Encoding::OneHot,
                            categories: vec!["tcp".into()],
                        },
                        FeatureStep::Categorical {
                            name: "service".into(),
                            encoding: Encoding::Ordinal,
                            categories: vec!["dns".into(), "http".into()],
                        },
                    ],
                    vec![crate::features::Derivation::ZeekConn(Default::default())],
                );
                b.target.ignore = Some(vec![Scalar::Str("Background".into())]);
                b.target.detail = Some("detailedlabel".into());
                (f.to_string(), b)
            })
            .collect()
    }

    fn fixture_path(family: &str) -> std::path::PathBuf {
        fixture_of(VERSION, family)
    }

    fn fixture_of(version: u32, family: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/bundles/v{version}-{family}.json"))
    }

    /// Older bundles (in production, kept for rollback) still load, with the defaults of what
    /// their version did not record.
    #[test]
    fn bundles_of_older_versions_still_load() {
        for family in ["logistic", "decision_tree", "random_forest", "adaboost", "gbm", "bagging"] {
            let path = fixture_of(2, family);
            let b = Bundle::from_bytes(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(b.model.family(), family);
            assert_eq!(b.input, Layout::default(), "a version-2 bundle reads CSV with a header");
            let path = fixture_of(3, family);
            let b = Bundle::from_bytes(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(b.model.family(), family);
            assert!(b.preprocessor.derive.is_empty() && b.target.ignore.is_none(), "version 3 derived nothing");
        }
    }

    #[test]
    #[ignore = "writes the bundle format fixtures; run after moving VERSION"]
    fn write_bundle_fixtures() {
        for (family, b) in fixtures() {
            let path = fixture_path(&family);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b.to_bytes().unwrap()).unwrap();
        }
    }

    #[test]
    fn bundles_of_this_format_version_read_back_byte_for_byte() {
        for family in crate::models::FAMILIES {
            let path = fixture_path(family);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (a new family needs its fixture: see the module doc)", path.display())
            });
            let b = Bundle::from_bytes(&bytes).unwrap_or_else(|e| {
                panic!("{}: {e}\nthe bundle format changed: move bundle::VERSION (see the module doc)", path.display())
            });
            assert_eq!(b.model.family(), *family);
            assert!(
                b.to_bytes().unwrap() == bytes,
                "{}: reads back differently; the bundle format changed: move bundle::VERSION",
                path.display()
            );
        }
    }
}
