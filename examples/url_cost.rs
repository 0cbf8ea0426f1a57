//! What the URL features cost per URL, in isolation: `cargo run --release --example url_cost
//! [URLS]` (one URL per line; default: `target/bench-urls/urls.txt`, written by `make
//! bench-urls`). Times parsing alone (`features::url::site`: the WHATWG parse and the
//! public-suffix lookups) and the whole extraction (`UrlFeatures::features`, all 1,472
//! numbers), each the best of five passes, so `predict`'s figure can be split into extraction
//! and the rest (reading, encoding, the trees, writing).

use std::time::Instant;

use netsec::features::url::{site, UrlFeatures};

fn best_of_five(urls: &[&str], mut f: impl FnMut(&str) -> f64) -> (f64, f64) {
    let mut best = f64::INFINITY;
    let mut sink = 0.0;
    for _ in 0..5 {
        let started = Instant::now();
        for u in urls {
            sink += f(u);
        }
        best = best.min(started.elapsed().as_secs_f64() / urls.len() as f64 * 1e6);
    }
    (best, sink)
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "target/bench-urls/urls.txt".into());
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{path}: {e} (run make bench-urls first)"))?;
    let urls: Vec<&str> = text.lines().collect();
    let d = UrlFeatures { column: "url".into() };
    let (parse, a) = best_of_five(&urls, |u| site(u).len() as f64);
    let (all, b) = best_of_five(&urls, |u| d.features(u)[0]);
    println!("{} URLs: parse {parse:.3} µs, all features {all:.3} µs per URL (checksums {a} {b})", urls.len());
    Ok(())
}
