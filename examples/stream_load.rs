//! Load for `bench/stream.sh`: `stream_load URL N publish CSV` publishes N records to
//! `netsec.in.bench`, the rows of CSV (a header line, then numbers; the last column, the label,
//! left out) cycled; `stream_load URL N wait` prints the seconds until the verdict stream holds
//! N verdicts, counted from when it is called.

use std::time::{Duration, Instant};

use async_nats::jetstream;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (url, n, what) = (&args[1], args[2].parse::<u64>()?, args[3].as_str());
    let js = jetstream::new(async_nats::connect(url.as_str()).await?);
    if what == "publish" {
        let text = std::fs::read_to_string(&args[4])?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        let mut acks = Vec::new();
        for i in 0..n {
            let row = &rows[i as usize % rows.len()];
            let fields: Vec<String> =
                header.iter().zip(row).take(header.len() - 1).map(|(h, v)| format!("\"{h}\":{v}")).collect();
            let body = format!("{{\"id\":\"b{i}\",{}}}", fields.join(","));
            acks.push(js.publish("netsec.in.bench", body.into()).await?);
            if acks.len() == 2000 {
                for a in acks.drain(..) {
                    a.await?;
                }
            }
        }
        for a in acks {
            a.await?;
        }
        return Ok(());
    }
    let started = Instant::now();
    loop {
        let stored = match js.get_stream("NETSEC_OUT").await {
            Ok(mut s) => s.info().await?.state.messages,
            Err(_) => 0,
        };
        if stored >= n {
            println!("{:.3}", started.elapsed().as_secs_f64());
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
