//! Classification metrics for the threat class (label `true`).

use serde::{Deserialize, Serialize};

/// The one place a score becomes a verdict: threat at or above the model's threshold
/// (metrics, the server, `predict` and every output format use it).
pub fn is_threat(score: f64, threshold: f64) -> bool {
    score >= threshold
}

/// The label written for a score.
pub fn label(score: f64, threshold: f64) -> &'static str {
    if is_threat(score, threshold) {
        "threat"
    } else {
        "benign"
    }
}

/// How the decision threshold is chosen, on out-of-fold scores of the training part.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum ThresholdPolicy {
    /// The threshold with the best F1 for the threat class.
    MaxF1,
    /// The highest threshold that still catches `recall` of the threats.
    TargetRecall { recall: f64 },
    /// A fixed threshold.
    Fixed { value: f64 },
}

/// Mean and standard deviation of a score over cross-validation folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
}

impl Confusion {
    pub fn at(scores: &[f64], labels: &[bool], threshold: f64) -> Self {
        let mut c = Confusion::default();
        for (&s, &y) in scores.iter().zip(labels) {
            match (is_threat(s, threshold), y) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// Matthews correlation coefficient (0 when undefined).
    pub fn mcc(&self) -> f64 {
        let (tp, fp, tn, fn_) = (self.tp as f64, self.fp as f64, self.tn as f64, self.fn_ as f64);
        let den = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
        if den == 0.0 {
            0.0
        } else {
            (tp * tn - fp * fn_) / den
        }
    }

    /// Mean of the recall of each class.
    pub fn balanced_accuracy(&self) -> f64 {
        (self.recall() + ratio(self.tn, self.tn + self.fp)) / 2.0
    }
}

/// Average precision (area under the precision-recall curve, step-wise as scikit-learn):
/// Σ (Rₙ − Rₙ₋₁) Pₙ over decreasing thresholds.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let pos = labels.iter().filter(|&&y| y).count() as f64;
    if pos == 0.0 {
        return f64::NAN;
    }
    let (mut ap, mut last_recall) = (0.0, 0.0);
    for (_, tp, fp) in sweep(scores, labels) {
        let recall = tp / pos;
        ap += (recall - last_recall) * tp / (tp + fp);
        last_recall = recall;
    }
    ap
}

/// 0 when the denominator is 0 (as scikit-learn's `zero_division=0`).
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Walk the distinct scores from the highest down: at each, everything scored at or above it
/// is called a threat. Yields (score, true positives, false positives) so far.
fn sweep(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut i) = (0.0, 0.0, 0);
    let mut out = Vec::new();
    while i < order.len() {
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            if labels[order[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        out.push((s, tp, fp));
    }
    out
}

/// Mean binary cross-entropy, with scores clipped to [1e-15, 1 - 1e-15] (as scikit-learn).
pub fn log_loss(scores: &[f64], labels: &[bool]) -> f64 {
    let sum: f64 = scores
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    sum / scores.len().max(1) as f64
}

/// The decision threshold a policy picks on (out-of-fold) scores of the training part.
pub fn choose_threshold(scores: &[f64], labels: &[bool], policy: ThresholdPolicy) -> f64 {
    if let ThresholdPolicy::Fixed { value } = policy {
        return value;
    }
    let pos = labels.iter().filter(|&&y| y).count() as f64;
    let points = sweep(scores, labels);
    let at = match policy {
        ThresholdPolicy::TargetRecall { recall } => {
            points.iter().position(|&(_, tp, _)| pos > 0.0 && tp / pos >= recall).unwrap_or(points.len() - 1)
        }
        _ => {
            let (mut best, mut best_f1) = (0, -1.0);
            for (i, &(_, tp, fp)) in points.iter().enumerate() {
                let f1 = 2.0 * tp / (tp + fp + pos);
                if f1 > best_f1 {
                    (best, best_f1) = (i, f1);
                }
            }
            best
        }
    };
    // Every threshold between the chosen score and the next lower one gives the same
    // training-part figures; take the midpoint rather than the edge (as a tree split does),
    // so the threshold does not sit on a training score.
    match (points.get(at), points.get(at + 1)) {
        (Some(&(s, _, _)), Some(&(next, _, _))) => (s + next) / 2.0,
        (Some(&(s, _, _)), None) => s,
        _ => 0.5,
    }
}

/// Area under the ROC curve: the probability that a random threat scores above a random
/// benign row, ties counting one half (Mann-Whitney U with mid-ranks).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            j += 1;
        }
        let mid_rank = (i + j + 1) as f64 / 2.0; // ranks are 1-based
        rank_sum += mid_rank * order[i..j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j;
    }
    let pos = labels.iter().filter(|&&y| y).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub fpr: f64,
    pub tpr: f64,
}

/// ROC curve with one point per distinct score, from (0, 0) to (1, 1).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Vec<RocPoint> {
    let pos = labels.iter().filter(|&&y| y).count().max(1) as f64;
    let neg = (labels.len() - labels.iter().filter(|&&y| y).count()).max(1) as f64;
    let mut points = vec![RocPoint { threshold: f64::INFINITY, fpr: 0.0, tpr: 0.0 }];
    points.extend(sweep(scores, labels).into_iter().map(|(s, tp, fp)| RocPoint {
        threshold: s,
        fpr: fp / neg,
        tpr: tp / pos,
    }));
    points
}

/// Fewer points for plotting: drop points closer than `step` (in FPR + TPR) to the last kept
/// one; the first and last points always stay.
pub fn thin_curve(points: Vec<RocPoint>, step: f64) -> Vec<RocPoint> {
    let n = points.len();
    let mut kept: Vec<RocPoint> = Vec::new();
    for (i, pt) in points.into_iter().enumerate() {
        let far = kept.last().is_none_or(|k| (pt.fpr - k.fpr).abs() + (pt.tpr - k.tpr).abs() >= step);
        if far || i + 1 == n {
            kept.push(pt);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_and_rates() {
        let scores = [0.9, 0.8, 0.3, 0.6, 0.1];
        let labels = [true, false, true, false, false];
        let c = Confusion::at(&scores, &labels, 0.5);
        assert_eq!((c.tp, c.fp, c.tn, c.fn_), (1, 2, 1, 1));
        assert_eq!(c.precision(), 1.0 / 3.0);
        assert_eq!(c.recall(), 0.5);
        assert!((c.f1() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(roc_auc(&[0.1, 0.9], &[false, true]), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.1], &[false, true]), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5], &[false, true]), 0.5);
        // 2 threats, 2 benign: pairs (t>b) = 3 of 4.
        assert_eq!(roc_auc(&[0.8, 0.4, 0.6, 0.2], &[true, true, false, false]), 0.75);
    }

    #[test]
    fn threshold_policies() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2];
        let labels = [true, true, false, true, false, true, false];
        // F1 at >= 0.6: tp 3, fp 1, pos 4 -> 6/8; at >= 0.3: tp 4, fp 2 -> 8/10 (best). Any
        // threshold in (0.2, 0.3] gives that; the midpoint is taken.
        let mid = |a: f64, b: f64| (a + b) / 2.0;
        assert_eq!(choose_threshold(&scores, &labels, ThresholdPolicy::MaxF1), mid(0.3, 0.2));
        assert_eq!(choose_threshold(&scores, &labels, ThresholdPolicy::TargetRecall { recall: 0.5 }), mid(0.8, 0.7));
        assert_eq!(choose_threshold(&scores, &labels, ThresholdPolicy::TargetRecall { recall: 0.75 }), mid(0.6, 0.4));
        // The lowest score has no lower neighbour: it is the threshold itself.
        assert_eq!(choose_threshold(&[0.9, 0.1], &[true, true], ThresholdPolicy::TargetRecall { recall: 1.0 }), 0.1);
        assert_eq!(choose_threshold(&scores, &labels, ThresholdPolicy::Fixed { value: 0.42 }), 0.42);
    }

    #[test]
    fn mcc_and_log_loss() {
        let c = Confusion { tp: 5, fp: 0, tn: 5, fn_: 0 };
        assert_eq!(c.mcc(), 1.0);
        assert_eq!(Confusion { tp: 0, fp: 0, tn: 5, fn_: 5 }.mcc(), 0.0);
        assert!((log_loss(&[0.5, 0.5], &[true, false]) - std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn average_precision_matches_sklearn() {
        // sklearn.metrics.average_precision_score([1,1,0,0], [0.8,0.4,0.6,0.2]) = 0.8333...
        let ap = average_precision(&[0.8, 0.4, 0.6, 0.2], &[true, true, false, false]);
        assert!((ap - 5.0 / 6.0).abs() < 1e-12, "{ap}");
        assert_eq!(average_precision(&[0.9, 0.1], &[true, false]), 1.0);
    }

    #[test]
    fn roc_curve_ends_at_one_one() {
        let pts = roc_curve(&[0.8, 0.4, 0.6, 0.2], &[true, true, false, false]);
        let last = pts.last().unwrap();
        assert_eq!((pts[0].fpr, pts[0].tpr), (0.0, 0.0));
        assert_eq!((last.fpr, last.tpr), (1.0, 1.0));
        assert_eq!(pts.len(), 5);
    }
}
