//! Markdown: pipe tables, for the leaderboard of a search and for verdicts in reports.

use std::fmt::Write as _;

use super::{Format, Ranking, Verdicts};

pub struct Markdown;

/// A cell's text with the characters that would break a pipe table escaped.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl Format<Ranking<'_>> for Markdown {
    fn media_type(&self) -> &'static str {
        "text/markdown; charset=utf-8"
    }

    fn write(&self, r: &Ranking<'_>, out: &mut Vec<u8>) {
        let mut s = format!(
            "# Leaderboard\n\n{} candidates, {}-fold stratified CV on the training part, ranked by `{}` (mean ± std). \
Fit seconds are wall time over all folds; `shared` marks ensembles scored from a larger ensemble's fit.\n\n\
| rank | family | hyperparameters |",
            r.rows.len(),
            r.folds,
            r.metric
        );
        for m in r.metrics {
            let _ = write!(s, " {m} |");
        }
        s.push_str(" fit s |\n|---|---|---|");
        s.push_str(&"---|".repeat(r.metrics.len() + 1));
        s.push('\n');
        for (i, c) in r.rows.iter().enumerate() {
            let _ = write!(s, "| {} | {} | {} |", i + 1, cell(c.family), cell(&c.params));
            for v in &c.scores {
                let _ = write!(s, " {:.4} ± {:.4} |", v.mean, v.std);
            }
            let _ = writeln!(s, " {:.3}{} |", c.fit_seconds, if c.shared_fit { " (shared)" } else { "" });
        }
        out.extend_from_slice(s.as_bytes());
    }
}

impl Format<Verdicts<'_>> for Markdown {
    fn media_type(&self) -> &'static str {
        "text/markdown; charset=utf-8"
    }

    fn write(&self, v: &Verdicts<'_>, out: &mut Vec<u8>) {
        let mut s = String::from("| row | label | threat score |");
        for c in v.columns {
            let _ = write!(s, " {} |", cell(c));
        }
        s.push_str("\n|---|---|---|");
        s.push_str(&"---|".repeat(v.columns.len()));
        s.push('\n');
        for (i, score) in v.scores.iter().enumerate() {
            let _ = write!(s, "| {} | {} | {score:.4} |", v.lines[i], v.label(i));
            for f in v.fields.get(i).into_iter().flatten() {
                let _ = write!(s, " {} |", cell(f));
            }
            s.push('\n');
        }
        out.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{render, sample};
    use super::super::Ranked;
    use super::*;
    use crate::metrics::MeanStd;

    #[test]
    fn verdicts_snapshot() {
        sample(|v| {
            assert_eq!(
                render(&Markdown, v),
                "| row | label | threat score | a | note |\n|---|---|---|---|---|\n\
| 2 | threat | 0.9100 | 1 | x, <b> |\n| 3 | benign | 0.1250 | 2 | plain |\n"
            )
        });
    }

    #[test]
    fn ranking_snapshot() {
        let (f1, auc) = (MeanStd { mean: 0.9, std: 0.01 }, MeanStd { mean: 0.95, std: 0.002 });
        let ranking = Ranking {
            metric: "f1",
            folds: 3,
            metrics: &["f1", "roc_auc"],
            rows: vec![
                Ranked {
                    family: "gbm",
                    params: "max_depth=6, n_estimators=100".into(),
                    scores: vec![&f1, &auc],
                    fit_seconds: 1.25,
                    shared_fit: true,
                },
                Ranked {
                    family: "a|b",
                    params: String::new(),
                    scores: vec![&auc, &f1],
                    fit_seconds: 0.5,
                    shared_fit: false,
                },
            ],
        };
        assert_eq!(
            render(&Markdown, &ranking),
            "# Leaderboard\n\n2 candidates, 3-fold stratified CV on the training part, ranked by `f1` (mean ± std). \
Fit seconds are wall time over all folds; `shared` marks ensembles scored from a larger ensemble's fit.\n\n\
| rank | family | hyperparameters | f1 | roc_auc | fit s |\n|---|---|---|---|---|---|\n\
| 1 | gbm | max_depth=6, n_estimators=100 | 0.9000 ± 0.0100 | 0.9500 ± 0.0020 | 1.250 (shared) |\n\
| 2 | a\\|b |  | 0.9500 ± 0.0020 | 0.9000 ± 0.0100 | 0.500 |\n"
        );
    }
}
