//! A candidate model beside the production one (`serve --shadow PATH`).
//!
//! - **Shadow**: records answered by the production model are scored again by the candidate on
//!   a thread of its own, after the answer is built, so the response path only copies the raw
//!   values into a bounded queue (full: the records are dropped from the comparison and
//!   counted). The comparison is exported by the pair of versions: records compared, records
//!   whose labels agree (each model with its own threshold), and the |score difference|.
//! - **Canary** (`--canary-percent N`): N% of records are answered by the candidate instead,
//!   chosen by a hash of the record's `id` (of its raw inputs when it has none), so the same
//!   record always meets the same model, run after run.
//!
//! The candidate is re-read from its path on every reload, with the production model.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;

use super::metrics::ShadowMetrics;
use super::queue::{Batched, WhenFull};
use super::Loaded;
use crate::features::Raw;
use crate::metrics::is_threat;
use crate::models::Classifier;

/// Records waiting for the candidate, at most; past it they are left out (counted).
const QUEUE: usize = 64 * 1024;
/// The shadow thread drains its queue this often (or sooner, past `EARLY` records).
const TICK: Duration = Duration::from_millis(10);
const EARLY: usize = 4096;

/// A raw value kept past its request.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    Missing,
    Number(f64),
    Text(Box<str>),
}

impl Owned {
    pub fn of(raw: &Raw<'_>) -> Owned {
        match raw {
            Raw::Missing => Owned::Missing,
            Raw::Number(x) => Owned::Number(*x),
            Raw::Text(t) => Owned::Text((*t).into()),
        }
    }

    pub fn as_raw(&self) -> Raw<'_> {
        match self {
            Owned::Missing => Raw::Missing,
            Owned::Number(x) => Raw::Number(*x),
            Owned::Text(t) => Raw::Text(t),
        }
    }
}

/// Records the production model answered, for the candidate to score.
pub struct Job {
    pub primary: Arc<Loaded>,
    /// The raw inputs of each record, `primary`'s inputs in order, record after record.
    pub raws: Vec<Owned>,
    /// What `primary` answered, one score per record.
    pub scores: Vec<f64>,
}

/// The queue to the shadow thread.
pub struct Shadow {
    queue: Arc<Batched<Job>>,
    metrics: ShadowMetrics,
}

impl Shadow {
    /// Start the thread that scores jobs with whatever `candidate` holds when they arrive.
    pub fn start(candidate: Arc<ArcSwapOption<Loaded>>, metrics: ShadowMetrics) -> Shadow {
        let queue = Arc::new(Batched::new(QUEUE, EARLY));
        let (q, m) = (queue.clone(), metrics.clone());
        std::thread::Builder::new()
            .name("shadow".into())
            .spawn(move || run(&q, &candidate, &m))
            .expect("spawn the shadow thread");
        Shadow { queue, metrics }
    }

    /// Queue a job; never waits (a full queue leaves it out, counted).
    pub fn send(&self, job: Job) {
        let n = job.scores.len();
        if self.queue.push(job, n, WhenFull::GiveBack).is_err() {
            self.metrics.dropped(n as u64);
        }
    }
}

fn run(queue: &Batched<Job>, candidate: &ArcSwapOption<Loaded>, metrics: &ShadowMetrics) {
    let mut x: Vec<f64> = Vec::new();
    let mut unseen = Vec::new();
    loop {
        let (jobs, closed) = queue.drain(TICK);
        if let Some(cand) = candidate.load_full() {
            for job in &jobs {
                compare(job, &cand, metrics, &mut x, &mut unseen);
            }
        }
        if closed {
            return;
        }
    }
}

/// Score `job`'s records with `cand` and count how they compare with the answers.
pub fn compare(job: &Job, cand: &Loaded, metrics: &ShadowMetrics, x: &mut Vec<f64>, unseen: &mut Vec<usize>) {
    let prim = &job.primary.bundle.preprocessor;
    let pre = &cand.bundle.preprocessor;
    let n_in = prim.inputs().len();
    // The candidate's inputs by name in the production model's (a reload refuses any other
    // inputs, unless --allow-schema-change: then what cannot be matched is not compared).
    let Some(at): Option<Vec<usize>> =
        pre.inputs().iter().map(|i| prim.inputs().iter().position(|p| p.name == i.name)).collect()
    else {
        metrics.dropped(job.scores.len() as u64);
        return;
    };
    let width = pre.width();
    x.clear();
    let mut answered = Vec::with_capacity(job.scores.len());
    for (r, &s) in job.scores.iter().enumerate() {
        let raws = &job.raws[r * n_in..(r + 1) * n_in];
        let start = x.len();
        x.resize(start + width, 0.0);
        unseen.clear();
        if pre.encode_row(|k, _| Ok(raws[at[k]].as_raw()), &mut x[start..], unseen).is_ok() {
            answered.push(s);
        } else {
            x.truncate(start);
            metrics.dropped(1);
        }
    }
    if answered.is_empty() {
        return;
    }
    let view = ndarray::ArrayView2::from_shape((answered.len(), width), x.as_slice()).expect("whole rows");
    let theirs = cand.bundle.model.predict_proba(view);
    let (t1, t2) = (job.primary.bundle.threshold, cand.bundle.threshold);
    let agree = answered.iter().zip(theirs.iter()).filter(|(&a, &b)| is_threat(a, t1) == is_threat(b, t2)).count();
    let diffs = answered.iter().zip(theirs.iter()).map(|(a, b)| (a - b).abs());
    metrics.compared(&job.primary.version, &cand.version, answered.len() as u64, agree as u64, diffs);
}

/// Whether a record goes to the candidate: its key's hash, in 1/10,000ths, under the share.
pub fn in_canary(key: u64, percent: f64) -> bool {
    ((key % 10_000) as f64) < percent * 100.0
}

/// FNV-1a, 64 bits: a stable hash (the same in every build and run), for canary keys.
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn bytes(mut self, b: &[u8]) -> Self {
        for &x in b {
            self.0 ^= x as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// The key of a raw value (for records without an id).
    pub fn raw(self, r: &Raw<'_>) -> Self {
        match r {
            Raw::Missing => self.bytes(&[0]),
            Raw::Number(x) => self.bytes(&[1]).bytes(&x.to_bits().to_le_bytes()),
            Raw::Text(t) => self.bytes(&[2]).bytes(t.as_bytes()).bytes(&[0xff]),
        }
    }

    pub fn finish(self) -> u64 {
        // One more mix, so that near keys ("r1", "r2") spread over the whole range.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_shares_are_close_to_the_percent_and_stable() {
        let hits =
            (0..20_000).filter(|i| in_canary(Fnv::default().bytes(format!("r{i}").as_bytes()).finish(), 10.0)).count();
        assert!((1_600..=2_400).contains(&hits), "{hits}");
        assert_eq!(Fnv::default().bytes(b"abc").finish(), Fnv::default().bytes(b"abc").finish());
        assert!(!in_canary(12345, 0.0) && in_canary(12345, 100.0));
    }
}
