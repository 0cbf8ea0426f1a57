//! `stream`: score records from NATS JetStream and publish the verdicts (see
//! `netsec::serving::stream` and README, "Scaling out").

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use netsec::serving::stream::{run, StreamConfig};

#[derive(Parser)]
#[command(
    version,
    about = "Score records from NATS JetStream (netsec.in.<sensor>) and publish verdicts (netsec.out.<sensor>).",
    long_about = "Score records from NATS JetStream and publish verdicts.\n\n\
Joins a durable pull consumer on the input stream: run several copies and JetStream spreads the records among them. \
Records are JSON (one per message, or an array), as POST /v1/predict takes them; a verdict {id, score, label, model_version} \
(or {id, error}) goes to <output-subject>.<sensor>, with the record's id as Nats-Msg-Id; records are acknowledged only \
after their verdicts are stored. SIGTERM stops after the batch in hand; SIGHUP reloads the model."
)]
struct Cli {
    /// The bundle to score with.
    #[arg(long, default_value = "models/production/phishing.json", env = "NETSEC_MODEL")]
    model: PathBuf,
    /// The NATS server (or a comma-separated list of a cluster's servers).
    #[arg(long, default_value = "nats://127.0.0.1:4222", env = "NATS_URL")]
    nats_url: String,
    #[arg(long, default_value = "NETSEC_IN")]
    input_stream: String,
    /// Records arrive on `<this>.<sensor>`.
    #[arg(long, default_value = "netsec.in")]
    input_subject: String,
    #[arg(long, default_value = "NETSEC_OUT")]
    output_stream: String,
    /// Verdicts go to `<this>.<sensor>`.
    #[arg(long, default_value = "netsec.out")]
    output_subject: String,
    /// The durable consumer every worker joins.
    #[arg(long, default_value = "netsec-scorers")]
    consumer: String,
    /// Records pulled and scored as one block.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// How long a pull waits for a full batch, ms.
    #[arg(long, default_value_t = 100)]
    max_wait_ms: u64,
    /// Records not acknowledged within this are delivered again (to any worker), s.
    #[arg(long, default_value_t = 30)]
    ack_wait_s: u64,
    /// The verdict stream drops a verdict whose id it stored within this window, s.
    #[arg(long, default_value_t = 600)]
    dedup_window_s: u64,
    /// Replicas of the streams created (3 on a three-node JetStream cluster).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    #[command(flatten)]
    common: netsec::cli::Common,
}

fn main() -> std::process::ExitCode {
    netsec::cli::main(|| {
        let cli = Cli::parse();
        cli.common.init_logging();
        let config = StreamConfig {
            model: cli.model,
            url: cli.nats_url,
            input_stream: cli.input_stream,
            input_subject: cli.input_subject,
            output_stream: cli.output_stream,
            output_subject: cli.output_subject,
            consumer: cli.consumer,
            batch: cli.batch.max(1),
            max_wait: Duration::from_millis(cli.max_wait_ms.max(1)),
            ack_wait: Duration::from_secs(cli.ack_wait_s.max(1)),
            dedup_window: Duration::from_secs(cli.dedup_window_s.max(1)),
            replicas: cli.replicas.max(1),
        };
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        rt.block_on(run(config)).context("stream")?;
        Ok(())
    })
}
