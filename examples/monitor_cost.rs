//! What drift monitoring costs per record, in isolation: `cargo run --release --example
//! monitor_cost [BUNDLE]` (default: the production phishing bundle). Each record is begun,
//! its inputs observed (values cycling through -1, 0, 1) and added to a 10,000-record window.

use netsec::features::Raw;
use netsec::serving::monitor::{Monitor, WindowConfig};

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "models/production/phishing.json".into());
    let b = netsec::bundle::Bundle::load(std::path::Path::new(&path))?;
    let reference = b.reference.as_ref().ok_or_else(|| anyhow::anyhow!("{path} has no drift reference"))?;
    let inputs = b.preprocessor.inputs().to_vec();
    let config = WindowConfig { records: 10_000, period: std::time::Duration::from_secs(900) };
    let m = Monitor::new(reference, &inputs, config).expect("a window");
    let n = 200_000;
    let started = std::time::Instant::now();
    let mut codes = Vec::new();
    for i in 0..n {
        codes.clear();
        m.begin(&mut codes);
        for k in 0..inputs.len() {
            m.observe(&mut codes, k, &Raw::Number(((i + k) % 3) as f64 - 1.0));
        }
        m.record(&mut codes, &[0.3]);
    }
    let us = started.elapsed().as_secs_f64() / n as f64 * 1e6;
    println!("{us:.3} µs per record ({} inputs, window {})", inputs.len(), config.records);
    Ok(())
}
