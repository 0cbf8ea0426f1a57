//! Our side of `make bench-peers` (bench/peers.sh): GBM fits and in-memory scoring on a
//! pipeline's transformed features (`artifacts/features/`), with the hyperparameters the
//! peers (LightGBM, XGBoost, lleaves; bench/peers.py) get: 100 and 300 rounds, depth 6,
//! learning rate 0.3, lambda 1, min child weight 1, 255 bins. For each thread count: median
//! fit seconds, test accuracy and ROC-AUC, and scoring rows/s on the test part tiled to
//! `--tile-rows` rows. Prints one JSON object.

use std::time::Instant;

use clap::Parser;
use ndarray::{concatenate, Array2, Axis};
use netsec::metrics::{roc_auc, Confusion};
use netsec::models::Classifier;

mod common;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    split: common::Split,
    /// Fits (and scoring passes) per figure; the median is reported.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Thread counts, comma-separated.
    #[arg(long, default_value = "1,2", value_delimiter = ',')]
    threads: Vec<usize>,
    /// Rows scored in memory: the test part repeated up to this many.
    #[arg(long, default_value_t = 450_880)]
    tile_rows: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (x, y, xt, yt) = cli.split.read()?;
    let copies = cli.tile_rows.div_ceil(xt.nrows().max(1));
    let views: Vec<_> = (0..copies).map(|_| xt.view()).collect();
    let tiled: Array2<f64> = concatenate(Axis(0), &views)?.slice(ndarray::s![..cli.tile_rows, ..]).to_owned();
    let mut out = serde_json::Map::new();
    out.insert("train_rows".into(), x.nrows().into());
    out.insert("features".into(), x.ncols().into());
    out.insert("scored_rows".into(), tiled.nrows().into());
    for &threads in &cli.threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        for rounds in [100, 300] {
            let spec = common::gbm(rounds)?;
            let mut fits = Vec::new();
            let mut model = None;
            for _ in 0..cli.reps {
                let t = Instant::now();
                let m = pool.install(|| spec.fit(x.view(), &y, cli.seed))?;
                fits.push(t.elapsed().as_secs_f64());
                model = Some(m);
            }
            let model = model.expect("reps >= 1");
            let scores = model.predict_proba(xt.view()).to_vec();
            let c = Confusion::at(&scores, &yt, 0.5);
            // The first pass compiles the trees into the block scorer (cached); then timed.
            pool.install(|| model.predict_proba(tiled.view()));
            let mut rates = Vec::new();
            for _ in 0..cli.reps {
                let t = Instant::now();
                let s = pool.install(|| model.predict_proba(tiled.view()));
                rates.push(s.len() as f64 / t.elapsed().as_secs_f64());
            }
            out.insert(
                format!("gbm_{rounds}_t{threads}"),
                serde_json::json!({
                    "fit_s": median(fits),
                    "test_accuracy": c.accuracy(),
                    "test_roc_auc": roc_auc(&scores, &yt),
                    "score_rows_per_s": median(rates),
                }),
            );
            eprintln!("ours: gbm({rounds}) {threads} thread(s) done");
        }
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
