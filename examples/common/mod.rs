//! What the fit benchmarks (`fit_bench`, `peers_bench`) share: the pipeline's split, read from
//! `artifacts/`, and the GBM the peers are measured with.

use std::path::PathBuf;

use linfa::ParamGuard;
use ndarray::Array2;
use netsec::models::gbm::GbmParams;
use netsec::models::ModelSpec;
use netsec::preprocess::Preprocessor;

/// Where the transformed split is (the transform stage's outputs).
#[derive(clap::Args)]
pub struct Split {
    #[arg(long, default_value = "artifacts/features")]
    pub features: PathBuf,
    #[arg(long, default_value = "artifacts/preprocessor.json")]
    pub preprocessor: PathBuf,
}

/// Training and test features and labels.
pub type Parts = (Array2<f64>, Vec<bool>, Array2<f64>, Vec<bool>);

impl Split {
    pub fn read(&self) -> anyhow::Result<Parts> {
        let pre: Preprocessor = netsec::artifact::read_json(&self.preprocessor)?;
        let names = pre.feature_names();
        let (x, y) = netsec::stages::read_features(&self.features.join("train.parquet"), &names)?;
        let (xt, yt) = netsec::stages::read_features(&self.features.join("test.parquet"), &names)?;
        Ok((x, y, xt, yt))
    }
}

/// XGBoost's defaults (depth 6, eta 0.3, lambda 1, min_child_weight 1) for `rounds` rounds.
pub fn gbm(rounds: usize) -> anyhow::Result<ModelSpec> {
    let params = GbmParams {
        n_estimators: rounds,
        learning_rate: 0.3,
        max_depth: 6,
        lambda: 1.0,
        min_child_weight: 1.0,
        ..Default::default()
    };
    Ok(ModelSpec::Gbm(params.check()?))
}
