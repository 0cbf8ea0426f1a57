//! Live drift monitoring: the records a model scored lately, against its training reference
//! (`validate::reference`, carried in the bundle).
//!
//! Every scored record is sorted into its reference bins, one small code per monitored input
//! plus one for its score; the window keeps the codes of the last `--monitor-window` records
//! no older than `--monitor-period`, and running counts per bin. A request costs one lock,
//! whatever its records; PSI, missing and unseen rates are computed from the counts when
//! `/metrics` or `/v1/monitor` asks.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::features::Raw;
use crate::preprocess::Input;
use crate::validate::reference::{psi, Binner, Reference};

/// How much the window holds.
#[derive(Debug, Clone, Copy)]
pub struct WindowConfig {
    /// Records at most (0: monitoring off).
    pub records: usize,
    /// Records older than this leave the window.
    pub period: Duration,
}

struct Watched {
    column: String,
    binner: Binner,
    expected: Vec<f64>,
}

/// One served model's drift monitor.
pub struct Monitor {
    watched: Vec<Watched>,
    /// Preprocessor input k → its watched column, if monitored.
    by_input: Vec<Option<usize>>,
    score: Binner,
    score_expected: Vec<f64>,
    config: WindowConfig,
    window: Mutex<Window>,
}

/// A ring of the last records' codes: slot `(oldest + i) % capacity` holds the i-th oldest.
struct Window {
    /// `stride` codes per slot.
    codes: Vec<u16>,
    /// When each slot's record was added (batches share one time).
    times: Vec<Instant>,
    oldest: usize,
    len: usize,
    /// Per watched column, then the score: records per code.
    counts: Vec<Vec<u64>>,
}

/// What the window shows, per column and for the scores.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub records: usize,
    pub window_records: usize,
    pub window_seconds: f64,
    pub score_psi: f64,
    pub features: Vec<FeatureSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureSnapshot {
    pub feature: String,
    pub psi: f64,
    pub missing_rate: f64,
    /// Share of the window's values never seen in training (categorical columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen_rate: Option<f64>,
    pub training_missing_rate: f64,
}

impl Monitor {
    /// A monitor of `inputs` against `reference`, or `None` when the window is off.
    pub fn new(reference: &Reference, inputs: &[Input], config: WindowConfig) -> Option<Monitor> {
        if config.records == 0 {
            return None;
        }
        let mut watched = Vec::new();
        let by_input = inputs
            .iter()
            .map(|input| {
                let f = reference.features.iter().find(|f| f.column == input.name)?;
                // A column profiled as numbers but read as a category (or the reverse) is not
                // comparable: leave it out rather than report nonsense.
                let categorical = matches!(f.bins, crate::validate::reference::Bins::Categorical { .. });
                if categorical != input.is_categorical() {
                    return None;
                }
                let binner = Binner::new(&f.bins);
                let expected = binner.expected(f.missing);
                watched.push(Watched { column: f.column.clone(), binner, expected });
                Some(watched.len() - 1)
            })
            .collect();
        let score = Binner::new(&reference.score);
        let score_expected = score.expected(0.0);
        let mut counts: Vec<Vec<u64>> = watched.iter().map(|w| vec![0; w.binner.codes()]).collect();
        counts.push(vec![0; score.codes()]);
        let stride = watched.len() + 1;
        let window = Window {
            codes: vec![0; stride * config.records],
            times: vec![Instant::now(); config.records],
            oldest: 0,
            len: 0,
            counts,
        };
        Some(Monitor { watched, by_input, score, score_expected, config, window: Mutex::new(window) })
    }

    /// Codes per record: one per watched column, then the score's.
    pub fn stride(&self) -> usize {
        self.watched.len() + 1
    }

    /// Start a record in `codes` (every column missing until observed).
    pub fn begin(&self, codes: &mut Vec<u16>) {
        codes.extend(self.watched.iter().map(|w| w.binner.missing()));
        codes.push(0);
    }

    /// Note raw input `k` of the record begun last.
    pub fn observe(&self, codes: &mut [u16], k: usize, raw: &Raw<'_>) {
        if let Some(Some(w)) = self.by_input.get(k) {
            let at = codes.len() - self.stride() + w;
            codes[at] = self.watched[*w].binner.code(raw);
        }
    }

    /// Drop the record begun last (it was refused).
    pub fn abandon(&self, codes: &mut Vec<u16>) {
        codes.truncate(codes.len().saturating_sub(self.stride()));
    }

    /// Add scored records (their codes, begun and observed, and their scores in order) to the
    /// window.
    pub fn record(&self, codes: &mut [u16], scores: &[f64]) {
        if codes.is_empty() {
            return;
        }
        let stride = self.stride();
        debug_assert_eq!(codes.len(), stride * scores.len());
        for (row, &s) in codes.chunks_exact_mut(stride).zip(scores) {
            row[stride - 1] = self.score.code(&Raw::Number(s));
        }
        let now = Instant::now();
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let w = &mut *w;
        let cap = self.config.records;
        for row in codes.chunks_exact(stride) {
            let slot = if w.len == cap {
                let slot = w.oldest;
                for (c, &code) in w.codes[slot * stride..(slot + 1) * stride].iter().enumerate() {
                    w.counts[c][code as usize] -= 1;
                }
                w.oldest = (w.oldest + 1) % cap;
                slot
            } else {
                w.len += 1;
                (w.oldest + w.len - 1) % cap
            };
            for (c, &code) in row.iter().enumerate() {
                w.counts[c][code as usize] += 1;
            }
            w.codes[slot * stride..(slot + 1) * stride].copy_from_slice(row);
            w.times[slot] = now;
        }
    }

    /// PSI and rates of the records now in the window.
    pub fn snapshot(&self) -> Snapshot {
        let stride = self.stride();
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while w.len > 0 && now.duration_since(w.times[w.oldest]) > self.config.period {
            w.evict_oldest(stride);
        }
        let n = w.len;
        let rate = |c: u64| if n == 0 { 0.0 } else { c as f64 / n as f64 };
        let features = self
            .watched
            .iter()
            .zip(&w.counts)
            .map(|(watched, counts)| FeatureSnapshot {
                feature: watched.column.clone(),
                psi: psi(&watched.expected, counts),
                missing_rate: rate(counts[watched.binner.missing() as usize]),
                unseen_rate: watched.binner.other().map(|o| rate(counts[o as usize])),
                training_missing_rate: *watched.expected.last().unwrap_or(&0.0),
            })
            .collect();
        Snapshot {
            records: n,
            window_records: self.config.records,
            window_seconds: self.config.period.as_secs_f64(),
            score_psi: psi(&self.score_expected, &w.counts[stride - 1]),
            features,
        }
    }
}

impl Window {
    fn evict_oldest(&mut self, stride: usize) {
        let slot = self.oldest;
        for (c, &code) in self.codes[slot * stride..(slot + 1) * stride].iter().enumerate() {
            self.counts[c][code as usize] -= 1;
        }
        self.oldest = (self.oldest + 1) % self.times.len();
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Kind;
    use crate::validate::reference::{Bins, FeatureReference};

    fn reference() -> Reference {
        Reference {
            rows: 100,
            features: vec![FeatureReference {
                column: "a".into(),
                missing: 0.0,
                bins: Bins::Numeric { edges: vec![0.0], shares: vec![0.5, 0.5] },
            }],
            score: Bins::Numeric { edges: vec![0.5], shares: vec![0.5, 0.5] },
        }
    }

    #[test]
    fn the_window_keeps_the_last_records_only() {
        let inputs = [Input { name: "a".into(), kind: Kind::Numeric }];
        let m =
            Monitor::new(&reference(), &inputs, WindowConfig { records: 4, period: Duration::from_secs(60) }).unwrap();
        let mut codes = Vec::new();
        for x in [-1.0, 1.0, -1.0, 1.0] {
            m.begin(&mut codes);
            m.observe(&mut codes, 0, &Raw::Number(x));
        }
        m.record(&mut codes, &[0.1, 0.9, 0.1, 0.9]);
        assert!(m.snapshot().features[0].psi < 1e-12);
        // Four shifted records push the balanced ones out: all in one bin now.
        let mut codes = Vec::new();
        for _ in 0..4 {
            m.begin(&mut codes);
            m.observe(&mut codes, 0, &Raw::Number(5.0));
        }
        m.record(&mut codes, &[0.9; 4]);
        let s = m.snapshot();
        assert_eq!(s.records, 4);
        assert!(s.features[0].psi > 1.0 && s.score_psi > 1.0, "{s:?}");
        // A missing value is counted as such.
        let mut codes = Vec::new();
        m.begin(&mut codes);
        m.observe(&mut codes, 0, &Raw::Missing);
        m.record(&mut codes, &[0.9]);
        assert_eq!(m.snapshot().features[0].missing_rate, 0.25);
        // Records older than the period leave the window.
        let brief =
            Monitor::new(&reference(), &inputs, WindowConfig { records: 4, period: Duration::from_millis(300) })
                .unwrap();
        let mut codes = Vec::new();
        brief.begin(&mut codes);
        brief.record(&mut codes, &[0.5]);
        assert_eq!(brief.snapshot().records, 1);
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(brief.snapshot().records, 0);
    }
}
