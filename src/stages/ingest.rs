//! ingest: read the configured raw source, count duplicates, split with a seed (or keep the
//! publisher's split of a pre-split dataset), write Parquet.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use polars_core::prelude::*;
use serde::Serialize;

use crate::artifact::round;
use crate::data::dataset::Sources;
use crate::data::split::{split, Split};
use crate::data::split::{IngestParams, SplitStrategy};
use crate::data::{read_table, row_hashes, write_parquet, Layout, ROW};
use crate::error::{Error, Result};
use crate::params::ParamsFile;
use crate::schema::Schema;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Training part (Parquet).
    #[arg(long, default_value = "artifacts/split/train.parquet")]
    pub train_out: PathBuf,
    /// Test part (Parquet).
    #[arg(long, default_value = "artifacts/split/test.parquet")]
    pub test_out: PathBuf,
    /// Headline metrics (flat JSON, a few numbers: the columns of `dvc exp show`).
    #[arg(long, default_value = "metrics/ingest.json")]
    pub metrics: PathBuf,
    /// Every figure of the stage (flat JSON), the headline ones included.
    #[arg(long, default_value = "reports/ingest.json")]
    pub details: PathBuf,
}

/// Flat metrics of the stage.
#[derive(Debug, Clone, Serialize)]
pub struct IngestMetrics {
    /// Which entry of `datasets` these figures belong to.
    pub dataset: String,
    /// 1 when the publisher's own train/test split was kept, 0 when `ingest` split one file.
    pub official_split: u8,
    /// Rows kept (labeled threat or benign).
    pub rows: usize,
    /// Rows left out because their target is in `target.ignore` (not labeled): in no part,
    /// in no metric, never counted as benign.
    pub ignored_rows: usize,
    /// Rows identical to an earlier row (all columns).
    pub duplicate_rows: usize,
    /// Rows whose feature vector appeared in an earlier row.
    pub duplicate_feature_vectors: usize,
    /// Distinct feature vectors seen with both a threat and a benign label: no model can get
    /// all of their rows right.
    pub conflicting_feature_vectors: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    pub threat_share: f64,
    pub test_threat_share: f64,
    /// Test rows whose feature vector also appears in the training part: their scores are
    /// closer to memorisation than to generalisation.
    pub test_rows_with_train_twin: usize,
    pub test_twin_share: f64,
    /// The same figure for a plain random split of all rows with the same seed, for comparison.
    pub random_split_test_twin_share: f64,
    /// Test rows whose group (the key of the dataset's `group` column, such as a URL's
    /// registrable domain; else the feature vector) also occurs in the training part: 0 with
    /// `split: stratified_grouped`.
    pub test_rows_sharing_a_group: usize,
    /// A SQL source's snapshot: rows read, SHA-256 of the rows as sent, SHA-256 of the query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_rows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_sha256: Option<String>,
}

/// A group id per row of all parts: the key of `column` (for a `url` column, the URL's
/// registrable domain).
fn group_ids(frames: &[(DataFrame, PathBuf)], schema: &Schema, column: &str) -> Result<Vec<usize>> {
    let is_url = schema.column(column).is_some_and(|c| c.kind == crate::schema::ColumnType::Url);
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (df, path) in frames {
        let col = df.column(column).map_err(|_| Error::file(path, format!("`group: {column}`: no such column")))?;
        for key in crate::data::column_keys(col) {
            let key = key.unwrap_or_default();
            let key = if is_url { crate::features::url::site(&key) } else { key };
            let n = ids.len();
            out.push(*ids.entry(key).or_insert(n));
        }
    }
    Ok(out)
}

/// The frame without its rows whose target the schema ignores, and how many those were.
fn drop_ignored(df: DataFrame, schema: &Schema, path: &Path) -> Result<(DataFrame, usize)> {
    if schema.target.ignore.is_none() {
        return Ok((df, 0));
    }
    let target = &schema.target.column;
    let Ok(col) = df.column(target) else { return Ok((df, 0)) };
    let keep: Vec<bool> =
        crate::data::column_keys(col).iter().map(|k| !k.as_deref().is_some_and(|k| schema.is_ignored(k))).collect();
    let dropped = keep.iter().filter(|&&k| !k).count();
    if dropped == 0 {
        return Ok((df, 0));
    }
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    let kept = df.filter(&mask).map_err(|e| Error::polars(path, e))?;
    Ok((kept, dropped))
}

/// Test rows whose feature vector (group) also occurs in the training part.
fn twins(groups: &[usize], parts: &Split) -> usize {
    let train: HashSet<usize> = parts.train.iter().map(|&i| groups[i]).collect();
    parts.test.iter().filter(|&&i| train.contains(&groups[i])).count()
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<IngestMetrics> {
    let dataset = crate::data::dataset::Dataset::selected(params)?;
    let p: IngestParams = params.section("ingest")?;
    crate::data::limits::set(p.limits);
    let schema = Schema::load(&dataset.params.schema)?;
    let opts = Layout::from_schema(&schema);
    let mut ignored = 0;
    // A part: its files read, their unlabeled rows left out, as one table.
    let mut read = |paths: &[PathBuf]| -> Result<(DataFrame, PathBuf)> {
        let mut frames = Vec::with_capacity(paths.len());
        for path in paths {
            tracing::info!(dataset = %dataset.name, source = %path.display(), "reading");
            let df = read_table(path, dataset.params.format, &opts)?;
            let (df, dropped) = drop_ignored(df, &schema, path)?;
            ignored += dropped;
            frames.push(df);
        }
        Ok((crate::data::concat(frames, &paths[0])?, paths[0].clone()))
    };
    // One frame per part; row i of the dataset is row i of their concatenation.
    let mut snapshot = None;
    let frames: Vec<(DataFrame, PathBuf)> = match dataset.params.sources() {
        Sources::One(source) => vec![read(source)?],
        Sources::PreSplit { train, test } => vec![read(train)?, read(test)?],
        Sources::Sql(query) => {
            let origin = query.origin(&dataset.name);
            tracing::info!(dataset = %dataset.name, url_env = %query.url_env, "running the query");
            let mut client = query.connect(&dataset.name)?;
            let (df, snap) = query.read(&mut client, &schema, &dataset.name)?;
            tracing::info!(rows = snap.rows, sha256 = %snap.content_sha256, "query read");
            let (df, dropped) = drop_ignored(df, &schema, &origin)?;
            ignored += dropped;
            snapshot = Some(snap);
            vec![(df, origin)]
        }
    };
    if ignored > 0 {
        tracing::info!(rows = ignored, values = ?schema.target.ignore, "left out: not labeled (target.ignore)");
    }
    let mut labels = Vec::new();
    let mut by_row = Vec::new();
    let mut by_features = Vec::new();
    for (df, path) in &frames {
        let path = path.as_path();
        labels.extend(super::labels(df, &schema, path)?);
        let all: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).filter(|n| n != ROW).collect();
        // Twins are judged on what a model sees: the features, derived ones included.
        let derive = schema.derivations();
        let seen = crate::preprocess::with_derived(&derive, df, &path.display().to_string())?;
        let mut features: Vec<String> = schema.features().map(|c| c.name.clone()).filter(|n| all.contains(n)).collect();
        features.extend(derive.iter().flat_map(|d| d.get().outputs()).map(|(n, _)| n));
        by_row.extend(row_hashes(df, &all).map_err(|e| Error::polars(path, e))?);
        by_features.extend(row_hashes(&seen, &features).map_err(|e| Error::polars(path, e))?);
    }
    let rows = labels.len();
    let distinct: HashSet<u128> = by_row.iter().copied().collect();
    let duplicate_rows = rows - distinct.len();
    drop((distinct, by_row));

    // Group id per row = its feature vector; and which vectors carry both labels.
    let mut ids: HashMap<u128, usize> = HashMap::new();
    let groups: Vec<usize> = by_features
        .iter()
        .map(|k| {
            let n = ids.len();
            *ids.entry(*k).or_insert(n)
        })
        .collect();
    let distinct_vectors = ids.len();
    drop((ids, by_features));
    let mut seen_label = vec![[false; 2]; distinct_vectors];
    for (&g, &y) in groups.iter().zip(&labels) {
        seen_label[g][y as usize] = true;
    }
    let conflicting = seen_label.iter().filter(|s| s[0] && s[1]).count();

    // What a grouped split keeps on one side: the `group` column's value (a URL's
    // registrable domain), else the feature vector.
    let split_groups = match &dataset.params.group {
        Some(column) => group_ids(&frames, &schema, column)?,
        None => groups.clone(),
    };
    let official = frames.len() == 2;
    let parts = if official {
        let n_train = frames[0].0.height();
        Split { train: (0..n_train).collect(), test: (n_train..rows).collect() }
    } else {
        split(&labels, &split_groups, p.split, p.test_size, p.seed)
    };
    let same_group = twins(&split_groups, &parts);
    let twins_here = twins(&groups, &parts);
    let random = split(&labels, &groups, SplitStrategy::Random, p.test_size, p.seed);
    let share = |t: usize, n: usize| round(t as f64 / n.max(1) as f64, 4);

    if official {
        for ((df, _), out) in frames.into_iter().zip([&args.train_out, &args.test_out]) {
            let mut df = df;
            write_parquet(&mut df, out)?;
        }
    } else {
        let df = &frames[0].0;
        for (idx, path) in [(&parts.train, &args.train_out), (&parts.test, &args.test_out)] {
            let take = IdxCa::from_vec("idx".into(), idx.iter().map(|&i| i as IdxSize).collect());
            let mut part = df.take(&take).map_err(|e| Error::polars(path, e))?;
            write_parquet(&mut part, path)?;
        }
    }

    let metrics = IngestMetrics {
        dataset: dataset.name.clone(),
        official_split: u8::from(official),
        rows,
        ignored_rows: ignored,
        duplicate_rows,
        duplicate_feature_vectors: rows - distinct_vectors,
        conflicting_feature_vectors: conflicting,
        train_rows: parts.train.len(),
        test_rows: parts.test.len(),
        threat_share: share(labels.iter().filter(|&&t| t).count(), labels.len()),
        test_threat_share: share(parts.test.iter().filter(|&&i| labels[i]).count(), parts.test.len()),
        test_rows_with_train_twin: twins_here,
        snapshot_rows: snapshot.as_ref().map(|s| s.rows),
        snapshot_sha256: snapshot.as_ref().map(|s| s.content_sha256.clone()),
        query_sha256: snapshot.as_ref().map(|s| s.query_sha256.clone()),
        test_twin_share: share(twins_here, parts.test.len()),
        random_split_test_twin_share: share(twins(&groups, &random), random.test.len()),
        test_rows_sharing_a_group: same_group,
    };
    // A SQL source's snapshot is a headline: `dvc metrics diff` shows when the rows changed.
    let headline = ["test_twin_share", "ignored_rows", "snapshot_rows", "snapshot_sha256", "query_sha256"];
    super::write_metrics(&args.metrics, &args.details, &metrics, &headline)?;
    tracing::info!(
        rows = metrics.rows,
        duplicates = metrics.duplicate_rows,
        train = metrics.train_rows,
        test = metrics.test_rows,
        official_split = official,
        test_twins = twins_here,
        "split written"
    );
    Ok(metrics)
}
