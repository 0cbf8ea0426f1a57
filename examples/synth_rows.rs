//! Synthetic rows for `make bench-scale`: N rows drawn from a labeled CSV's per-class
//! distributions. A row's class is drawn with the classes' shares in the file; then each
//! column's value is drawn from that column's values in rows of that class (its empirical
//! marginal per class; columns independent within a class). An id column is renumbered.
//!
//!   cargo run --release --example synth_rows -- data/unsw-nb15/UNSW_NB15_training-set.csv.gz \
//!       --target label --rows 1000000 --seed 42 --id id > rows.csv

use anyhow::{bail, Context};
use clap::Parser;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
#[command(about = "Draw N synthetic rows from a labeled CSV's per-class column distributions")]
struct Cli {
    /// The labeled CSV (gzip or not), with a header.
    input: std::path::PathBuf,
    /// The class column.
    #[arg(long)]
    target: String,
    /// Rows to write.
    #[arg(long)]
    rows: usize,
    /// Seed of every draw (make bench-scale passes params.yaml's train.seed).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// A column renumbered 0, 1, 2, ... instead of drawn.
    #[arg(long)]
    id: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = std::fs::File::open(&cli.input).with_context(|| format!("opening {}", cli.input.display()))?;
    let reader: Box<dyn std::io::Read> = if cli.input.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut csv = csv::Reader::from_reader(std::io::BufReader::new(reader));
    let header = csv.headers()?.clone();
    let Some(target) = header.iter().position(|h| h == cli.target) else {
        bail!("{}: no column `{}`", cli.input.display(), cli.target)
    };
    let id = cli.id.as_ref().and_then(|c| header.iter().position(|h| h == c));
    // Per class: its rows, column by column.
    let mut classes: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for (row, record) in csv.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", cli.input.display(), row + 2))?;
        let class = &record[target];
        let at = match classes.iter().position(|(c, _)| c == class) {
            Some(at) => at,
            None => {
                classes.push((class.to_owned(), vec![Vec::new(); header.len()]));
                classes.len() - 1
            }
        };
        for (col, cell) in record.iter().enumerate() {
            classes[at].1[col].push(cell.to_owned());
        }
    }
    let total: usize = classes.iter().map(|(_, cols)| cols[0].len()).sum();
    if total == 0 {
        bail!("{}: no rows", cli.input.display());
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cli.seed);
    let out = std::io::stdout().lock();
    let mut out = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, out));
    out.write_record(&header)?;
    for n in 0..cli.rows {
        let mut pick = rng.gen_range(0..total);
        let (class, cols) = classes
            .iter()
            .find(|(_, cols)| {
                let here = pick < cols[0].len();
                if !here {
                    pick -= cols[0].len();
                }
                here
            })
            .expect("pick < total");
        for (col, values) in cols.iter().enumerate() {
            if col == target {
                out.write_field(class)?;
            } else if Some(col) == id {
                out.write_field(n.to_string())?;
            } else {
                out.write_field(&values[rng.gen_range(0..values.len())])?;
            }
        }
        out.write_record(std::iter::empty::<&[u8]>())?;
    }
    out.flush()?;
    Ok(())
}
