//! Single-model fits for `make bench-train`: our random forest (100 trees) and GBM (100
//! rounds) on the pipeline's own split (`artifacts/features/`), each fitted `--reps` times.
//! Prints one JSON object: median fit seconds (wall and CPU of the process), test accuracy,
//! F1 (threat class) and ROC-AUC.

use std::time::Instant;

use clap::Parser;
use linfa::ParamGuard;
use netsec::metrics::{roc_auc, Confusion};
use netsec::models::random_forest::RandomForestParams;
use netsec::models::{Classifier, ModelSpec};

mod common;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    split: common::Split,
    #[arg(long, default_value_t = 5)]
    reps: usize,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (clock ticks of 1/100 s on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (x, y, xt, yt) = cli.split.read()?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(cli.threads).build()?;
    let specs = [
        (
            "random_forest_100",
            ModelSpec::RandomForest(RandomForestParams { n_estimators: 100, ..Default::default() }.check()?),
        ),
        ("gbm_100", common::gbm(100)?),
    ];
    let mut out = serde_json::Map::new();
    for (name, spec) in specs {
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        let mut model = None;
        for _ in 0..cli.reps {
            let (w0, c0) = (Instant::now(), cpu_seconds());
            let m = pool.install(|| spec.fit(x.view(), &y, cli.seed))?;
            wall.push(w0.elapsed().as_secs_f64());
            cpu.push(cpu_seconds() - c0);
            model = Some(m);
        }
        let model = model.expect("reps >= 1");
        let scores = model.predict_proba(xt.view()).to_vec();
        let c = Confusion::at(&scores, &yt, 0.5);
        wall.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        out.insert(
            name.into(),
            serde_json::json!({
                "fit_wall_s_median": wall[wall.len() / 2],
                "fit_cpu_s_median": cpu[cpu.len() / 2],
                "threads": cli.threads,
                "test_accuracy": c.accuracy(),
                "test_f1_threat": c.f1(),
                "test_roc_auc": roc_auc(&scores, &yt),
            }),
        );
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
