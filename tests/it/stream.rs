//! Stream scoring on a real NATS JetStream (Debian's `nats-server`, on a free loopback port with
//! its own store): 200,000 records through two `stream` workers, one SIGKILLed mid-run; every
//! record gets exactly one verdict, and the scores are `predict`'s, bit for bit.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;

use crate::common::{toy_csv_with, Cmd, Project, Spawned};
use crate::serve::start_on_free_port;

const RECORDS: usize = 200_000;

fn nats_server(dir: &Path) -> (Spawned, u16) {
    start_on_free_port(
        "nats-server",
        30,
        |port| {
            Cmd::new("nats-server").args([
                "-js".to_owned(),
                "-a".to_owned(),
                "127.0.0.1".to_owned(),
                "-p".to_owned(),
                port.to_string(),
                "-sd".to_owned(),
                dir.display().to_string(),
            ])
        },
        |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    )
}

fn worker(model: &Path, url: &str) -> Spawned {
    let w = Cmd::bin("stream")
        .args(["--model", model.to_str().unwrap(), "--nats-url", url, "--ack-wait-s", "2", "--batch", "512"])
        .spawn();
    w.wait_for_line("scoring", 30);
    w
}

/// Messages stored in a stream.
async fn stored(js: &jetstream::Context, name: &str) -> u64 {
    js.get_stream(name).await.unwrap().info().await.unwrap().state.messages
}

#[test]
fn two_workers_one_killed_give_every_record_exactly_one_verdict_equal_to_predict() {
    let p = Project::new();
    p.run_all();
    let model = p.path("models/production/toy.json");
    let store = tempfile::tempdir().unwrap();
    let (_nats, port) = nats_server(store.path());
    let url = format!("nats://127.0.0.1:{port}");

    // The records, as CSV for `predict` and as JSON for the stream.
    let csv = toy_csv_with(RECORDS, 51, 0.0);
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    p.write("stream_in.csv", &csv);
    // Parquet keeps every bit of a score (the CSV output rounds to 6 decimals); `export` writes
    // it back as text that parses to the same f64.
    Cmd::bin("predict")
        .args([p.path("stream_in.csv"), p.path("stream_out.parquet")])
        .args(["--model", model.to_str().unwrap()])
        .run()
        .success();
    Cmd::bin("export").args([p.path("stream_out.parquet"), p.path("stream_out.csv")]).run().success();
    let out = p.read("stream_out.csv");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "threat_score").unwrap();
    let expected: Vec<f64> = lines.map(|l| l.split(',').nth(at).unwrap().parse().unwrap()).collect();
    assert_eq!(expected.len(), RECORDS);

    let w1 = worker(&model, &url);
    let mut w2 = worker(&model, &url);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let verdicts = rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let js = jetstream::new(client);
        // Two sensors; acknowledged publishes, a thousand in flight at a time.
        for (chunk_no, chunk) in rows.chunks(1000).enumerate() {
            let mut acks = Vec::new();
            for (j, r) in chunk.iter().enumerate() {
                let i = chunk_no * 1000 + j;
                let body = format!(r#"{{"id":"r{i}","a":{},"b":{},"c":{}}}"#, r[0], r[1], r[2]);
                let subject = if i % 2 == 0 { "netsec.in.sensor-a" } else { "netsec.in.sensor-b" };
                acks.push(js.publish(subject, body.into()).await.unwrap());
            }
            for a in acks {
                a.await.unwrap();
            }
        }
        // Kill one worker once a quarter of the verdicts are in.
        let deadline = Instant::now() + Duration::from_secs(300);
        while stored(&js, "NETSEC_OUT").await < (RECORDS / 4) as u64 {
            assert!(Instant::now() < deadline, "too slow");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(w1); // SIGKILL (the process group), with records pulled and not acknowledged
        while stored(&js, "NETSEC_OUT").await < RECORDS as u64 {
            assert!(Instant::now() < deadline, "verdicts stuck at {}", stored(&js, "NETSEC_OUT").await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The killed worker's records come back after the ack wait: give them time to be
        // scored again (and their verdicts dropped as duplicates).
        tokio::time::sleep(Duration::from_secs(4)).await;
        let input = js.get_stream("NETSEC_IN").await.unwrap();
        let mut consumer_info = input.consumer_info("netsec-scorers").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumer_info.num_ack_pending > 0 || consumer_info.num_pending > 0 {
            assert!(Instant::now() < deadline, "records left unacknowledged: {consumer_info:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            consumer_info = input.consumer_info("netsec-scorers").await.unwrap();
        }
        // Read every verdict back.
        let out = js.get_stream("NETSEC_OUT").await.unwrap();
        let reader = out
            .create_consumer(jetstream::consumer::pull::Config {
                ack_policy: jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut verdicts: Vec<(String, serde_json::Value)> = Vec::new();
        let total = stored(&js, "NETSEC_OUT").await as usize;
        while verdicts.len() < total {
            let mut batch =
                reader.fetch().max_messages(10_000).expires(Duration::from_secs(1)).messages().await.unwrap();
            while let Some(m) = batch.next().await {
                let m = m.unwrap();
                verdicts.push((m.subject.to_string(), serde_json::from_slice(&m.payload).unwrap()));
            }
        }
        verdicts
    });
    assert!(w2.running(), "{}", w2.stderr());

    assert_eq!(verdicts.len(), RECORDS, "verdicts stored");
    let mut by_id: HashMap<String, (String, serde_json::Value)> = HashMap::new();
    for (subject, v) in verdicts {
        let id = v["id"].as_str().unwrap().to_owned();
        assert!(by_id.insert(id.clone(), (subject, v)).is_none(), "two verdicts for {id}");
    }
    for (i, want) in expected.iter().enumerate() {
        let (subject, v) = by_id.get(&format!("r{i}")).unwrap_or_else(|| panic!("no verdict for r{i}"));
        assert_eq!(subject, if i % 2 == 0 { "netsec.out.sensor-a" } else { "netsec.out.sensor-b" });
        assert_eq!(v["score"].as_f64().unwrap().to_bits(), want.to_bits(), "r{i}: {v} vs predict {want}");
    }
    let (status, stderr) = w2.stop("TERM");
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stopped (SIGTERM)"), "{stderr}");
}

/// A three-node JetStream cluster on loopback, the streams with three replicas: one node is
/// killed mid-run and nothing is lost, nothing is answered twice.
#[test]
fn a_three_node_cluster_losing_a_node_loses_no_record() {
    const N: usize = 30_000;
    let p = Project::new();
    p.run_all();
    let model = p.path("models/production/toy.json");
    let dir = tempfile::tempdir().unwrap();
    // Six ports (client and cluster for each node), taken from the OS just before use.
    let ports: Vec<u16> = (0..6).map(|_| crate::serve::free_port()).collect();
    let routes: Vec<String> = (0..3).map(|n| format!("nats-route://127.0.0.1:{}", ports[3 + n])).collect();
    let mut nodes: Vec<Option<Spawned>> = (0..3)
        .map(|n| {
            let conf = dir.path().join(format!("n{n}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{n}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\" }}\ncluster {{ name: netsec, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                    ports[n],
                    dir.path().join(format!("store{n}")).display(),
                    ports[3 + n],
                    routes.join(", ")
                ),
            )
            .unwrap();
            Some(Cmd::new("nats-server").arg("-c").arg(&conf).spawn())
        })
        .collect();
    let urls: Vec<String> = (0..3).map(|n| format!("nats://127.0.0.1:{}", ports[n])).collect();
    let all = urls.join(",");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The cluster is ready when a replicated stream can be created.
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(client) = async_nats::connect(urls[0].as_str()).await {
                let js = jetstream::new(client);
                let config = jetstream::stream::Config {
                    name: "NETSEC_IN".into(),
                    subjects: vec!["netsec.in.>".into()],
                    num_replicas: 3,
                    ..Default::default()
                };
                if js.get_or_create_stream(config).await.is_ok() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "no JetStream cluster after 60 s");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let start = |url: &str| {
        let w = Cmd::bin("stream")
            .args(["--model", model.to_str().unwrap(), "--nats-url", url, "--ack-wait-s", "2", "--batch", "256"])
            .args(["--replicas", "3"])
            .spawn();
        w.wait_for_line("scoring", 60);
        w
    };
    let _w1 = start(&all);
    let _w2 = start(&all);
    let csv = toy_csv_with(N, 61, 0.0);
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let ids = rt.block_on(async {
        let client =
            async_nats::connect(urls.iter().map(|u| u.parse::<async_nats::ServerAddr>().unwrap()).collect::<Vec<_>>())
                .await
                .unwrap();
        let js = jetstream::new(client);
        for (k, chunk) in rows.chunks(500).enumerate() {
            // Kill node 1 a third of the way through publishing.
            if k == N / 500 / 3 {
                nodes[1] = None;
            }
            for (j, r) in chunk.iter().enumerate() {
                let i = k * 500 + j;
                let body = format!(r#"{{"id":"c{i}","a":{},"b":{},"c":{}}}"#, r[0], r[1], r[2]);
                // Publishing is retried through the election that follows the kill.
                let mut tries = 0;
                loop {
                    match js.publish("netsec.in.edge", body.clone().into()).await {
                        Ok(ack) => match ack.await {
                            Ok(_) => break,
                            Err(e) if tries < 50 => eprintln!("publish ack: {e}"),
                            Err(e) => panic!("publish c{i}: {e}"),
                        },
                        Err(e) if tries < 50 => eprintln!("publish: {e}"),
                        Err(e) => panic!("publish c{i}: {e}"),
                    }
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut verdicts: HashMap<String, u32> = HashMap::new();
        loop {
            if let Ok(n) =
                async { Ok::<u64, async_nats::Error>(js.get_stream("NETSEC_OUT").await?.info().await?.state.messages) }
                    .await
            {
                if n >= N as u64 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "verdicts did not all arrive");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        let out = js.get_stream("NETSEC_OUT").await.unwrap();
        // With a node down, the cluster may take a few tries to place a new consumer.
        let mut tries = 0;
        let reader = loop {
            let config = jetstream::consumer::pull::Config {
                ack_policy: jetstream::consumer::AckPolicy::None,
                ..Default::default()
            };
            match out.create_consumer(config).await {
                Ok(c) => break c,
                Err(e) if tries < 30 => eprintln!("reader: {e}"),
                Err(e) => panic!("reader: {e}"),
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let total = out.clone().info().await.unwrap().state.messages as usize;
        let mut seen = 0;
        while seen < total {
            let mut batch =
                reader.fetch().max_messages(5_000).expires(Duration::from_secs(1)).messages().await.unwrap();
            while let Some(m) = batch.next().await {
                let v: serde_json::Value = serde_json::from_slice(&m.unwrap().payload).unwrap();
                *verdicts.entry(v["id"].as_str().unwrap().to_owned()).or_default() += 1;
                seen += 1;
            }
        }
        verdicts
    });
    assert!(nodes[1].is_none());
    assert_eq!(ids.len(), N, "records with a verdict");
    assert!(ids.values().all(|&c| c == 1), "a record answered twice");
    assert!((0..N).all(|i| ids.contains_key(&format!("c{i}"))), "a record lost");
}
