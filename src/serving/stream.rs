//! Stream scoring on NATS JetStream (the `stream` binary): records in on `netsec.in.<sensor>`,
//! verdicts out on `netsec.out.<sensor>`.
//!
//! Every copy of `stream` joins one durable pull consumer, so JetStream spreads the records
//! among however many run. A worker pulls up to `--batch` records, scores them as one block
//! (the same record parsing and encoding as `POST /v1/predict`), publishes one verdict per
//! record with the record's id as `Nats-Msg-Id`, waits for JetStream to acknowledge every
//! verdict, and only then acknowledges the records. A worker killed between the two leaves its
//! records unacknowledged: they are delivered again after `--ack-wait-s`, scored again, and the
//! second verdicts are dropped by the verdict stream's duplicate window (the same id). So every
//! record gets exactly one verdict in the verdict stream, none is lost.
//!
//! SIGTERM: stop pulling, finish the batch in hand, exit. SIGHUP: load the model again
//! between batches (a bundle that fails to load leaves the old one scoring).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use ndarray::ArrayView2;
use serde_json::{json, Value};

use super::json_body::{self, Field};
use super::Loaded;
use crate::error::{Error, Result};
use crate::models::Classifier;
use crate::output::label;

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub model: PathBuf,
    pub url: String,
    /// The stream the records are in (created if missing, with subjects `<input>.>`).
    pub input_stream: String,
    pub input_subject: String,
    /// The stream verdicts go to (created if missing, with subjects `<output>.>` and a
    /// duplicate window of `dedup_window`).
    pub output_stream: String,
    pub output_subject: String,
    pub consumer: String,
    pub batch: usize,
    pub max_wait: Duration,
    pub ack_wait: Duration,
    pub dedup_window: Duration,
    /// Replicas of the streams this creates (3 on a three-node cluster: a node may fail).
    pub replicas: usize,
}

fn nats_error(url: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Remote { url: url.to_owned(), message: format!("{what}: {e}") }
}

/// Records scored and batches, for the progress log.
#[derive(Default)]
struct Progress {
    records: u64,
    rejected: u64,
    last: Option<Instant>,
    since: u64,
}

pub async fn run(config: StreamConfig) -> Result<u64> {
    let url = config.url.as_str();
    let addrs = url
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| nats_error(url, "not a NATS URL (or a comma-separated list of them)", e))?;
    let client = async_nats::connect(addrs).await.map_err(|e| nats_error(url, "cannot connect", e))?;
    let js = jetstream::new(client);
    let input = js
        .get_or_create_stream(stream::Config {
            name: config.input_stream.clone(),
            subjects: vec![format!("{}.>", config.input_subject)],
            num_replicas: config.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_error(url, "input stream", e))?;
    js.get_or_create_stream(stream::Config {
        name: config.output_stream.clone(),
        subjects: vec![format!("{}.>", config.output_subject)],
        duplicate_window: config.dedup_window,
        num_replicas: config.replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| nats_error(url, "verdict stream", e))?;
    let consumer: consumer::PullConsumer = input
        .get_or_create_consumer(
            &config.consumer,
            consumer::pull::Config {
                durable_name: Some(config.consumer.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_ack_pending: (config.batch * 16).max(1024) as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| nats_error(url, "consumer", e))?;

    let mut model = Arc::new(Loaded::from_path(&config.model)?);
    tracing::info!(version = %model.version, stream = %config.input_stream, consumer = %config.consumer, "scoring");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Io { path: "SIGTERM".into(), err: e })?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| Error::Io { path: "SIGHUP".into(), err: e })?;
    let mut progress = Progress::default();
    loop {
        // Between batches: a reload, a stop.
        tokio::select! {
            biased;
            _ = term.recv() => break,
            _ = hup.recv() => {
                match Loaded::from_path(&config.model) {
                    Ok(m) => { tracing::info!(version = %m.version, "model reloaded"); model = Arc::new(m); }
                    Err(e) => tracing::error!("reload failed, the previous model keeps scoring: {e}"),
                }
                continue;
            }
            _ = std::future::ready(()) => {}
        }
        // A failing server (a cluster electing a new leader, a restart) is waited out: what was
        // pulled and not acknowledged comes back after the ack wait.
        let messages = consumer.fetch().max_messages(config.batch).expires(config.max_wait).messages().await;
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("fetch: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut batch = Vec::with_capacity(config.batch);
        while let Some(m) = messages.next().await {
            match m {
                Ok(m) => batch.push(m),
                Err(e) => tracing::warn!("fetch: {e}"),
            }
        }
        if batch.is_empty() {
            continue;
        }
        if let Err(e) = score_batch(&js, &config, &model, &batch, &mut progress).await {
            tracing::warn!("{e}; the batch is left unacknowledged (delivered again after the ack wait)");
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for m in &batch {
            if let Err(e) = m.ack().await {
                tracing::warn!("ack: {e} (the record comes again; its verdict is a duplicate, dropped)");
            }
        }
        progress.tick();
    }
    tracing::info!(
        records = progress.records,
        rejected = progress.rejected,
        "stopped (SIGTERM): every pulled record answered"
    );
    Ok(progress.records)
}

impl Progress {
    fn tick(&mut self) {
        let now = Instant::now();
        let last = *self.last.get_or_insert(now);
        if now.duration_since(last) >= Duration::from_secs(10) {
            let rate = (self.records - self.since) as f64 / now.duration_since(last).as_secs_f64();
            tracing::info!(records = self.records, rejected = self.rejected, per_second = rate as u64, "progress");
            self.last = Some(now);
            self.since = self.records;
        }
    }
}

/// A record's id: its `id` field, else the message's stream sequence (stable on redelivery).
fn record_id(id: Option<Value>, msg: &jetstream::Message) -> String {
    match id {
        Some(Value::String(s)) => s,
        Some(v) => v.to_string(),
        None => format!("seq-{}", msg.info().map(|i| i.stream_sequence).unwrap_or(0)),
    }
}

/// Score the records of `batch` (one message may hold one record or an array) and publish a
/// verdict per record; returns once JetStream acknowledged every verdict.
async fn score_batch(
    js: &jetstream::Context,
    config: &StreamConfig,
    model: &Loaded,
    batch: &[jetstream::Message],
    progress: &mut Progress,
) -> Result<()> {
    let pre = &model.bundle.preprocessor;
    let width = pre.width();
    let absent_is_missing = !pre.derive.is_empty();
    let limits = json_body::Limits { max_records: 100_000, max_fields: crate::data::limits::get().max_fields };
    let mut x: Vec<f64> = Vec::with_capacity(batch.len() * width);
    // Per record: its id, its sensor, and (for a refused record) why.
    let mut records: Vec<(String, String, Option<String>)> = Vec::with_capacity(batch.len());
    let mut unseen = Vec::new();
    for msg in batch {
        let sensor =
            msg.subject.as_str().strip_prefix(&format!("{}.", config.input_subject)).unwrap_or("unknown").to_owned();
        let read = json_body::read(&msg.payload, limits, &mut |i, rec| {
            let id = record_id(rec.get("id").and_then(Field::to_json), msg);
            let id = if i == 0 { id } else { format!("{id}#{i}") };
            let at = x.len();
            x.resize(at + width, 0.0);
            unseen.clear();
            let encoded = pre.encode_row(
                |_, input| super::json_api::feature(&rec, input, absent_is_missing),
                &mut x[at..],
                &mut unseen,
            );
            match encoded {
                Ok(()) => records.push((id, sensor.clone(), None)),
                Err((k, m)) => {
                    x.truncate(at);
                    records.push((id, sensor.clone(), Some(format!("feature `{}`: {m}", pre.inputs()[k].name))));
                }
            }
            Ok(())
        });
        if let Err(e) = read {
            let why = e.1["error"].as_str().unwrap_or("malformed record").to_owned();
            records.push((record_id(None, msg), sensor, Some(why)));
        }
    }
    let scored = records.iter().filter(|r| r.2.is_none()).count();
    let scores = if scored > 0 {
        let view = ArrayView2::from_shape((scored, width), x.as_slice()).expect("whole rows");
        model.bundle.model.predict_proba(view).to_vec()
    } else {
        Vec::new()
    };
    let mut next = scores.iter();
    let mut acks = Vec::with_capacity(records.len());
    for (id, sensor, refused) in &records {
        let body = match refused {
            None => {
                let s = *next.next().expect("one score per scored record");
                json!({ "id": id, "score": s, "label": label(s, model.bundle.threshold), "model_version": model.version })
            }
            Some(why) => {
                progress.rejected += 1;
                json!({ "id": id, "error": why, "model_version": model.version })
            }
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        let subject = format!("{}.{sensor}", config.output_subject);
        let ack = js
            .publish_with_headers(subject, headers, serde_json::to_vec(&body).expect("JSON").into())
            .await
            .map_err(|e| nats_error(&config.url, "publish", e))?;
        acks.push(ack);
    }
    for ack in acks {
        ack.await.map_err(|e| nats_error(&config.url, "verdict not stored", e))?;
    }
    progress.records += records.len() as u64;
    Ok(())
}
