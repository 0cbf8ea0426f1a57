//! Distribution drift between two samples of a feature.

use serde::{Deserialize, Serialize};

/// Two-sample Kolmogorov-Smirnov statistic D and its asymptotic p-value.
///
/// Ties are handled by stepping both empirical CDFs past each distinct value together, which
/// matters here: most security features are discrete.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (0.0, 1.0);
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let en = (n * m / (n + m)).sqrt();
    (d, kolmogorov_q((en + 0.12 + 0.11 / en) * d))
}

/// Survival function of the Kolmogorov distribution, Q(λ) = 2 Σ (-1)^(k-1) exp(-2 k² λ²).
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = (-2.0 * k * k * lambda * lambda).exp();
        sum += if k as u64 % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// One row of the drift report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub column: String,
    pub test: String,
    pub statistic: f64,
    pub p_value: f64,
    pub drifted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_do_not_drift() {
        let a: Vec<f64> = (0..500).map(|i| (i % 7) as f64).collect();
        let (d, p) = ks_2samp(&a, &a);
        assert_eq!(d, 0.0);
        assert_eq!(p, 1.0);
    }

    #[test]
    fn shifted_sample_drifts() {
        let a: Vec<f64> = (0..1000).map(|i| (i % 100) as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 30.0).collect();
        let (d, p) = ks_2samp(&a, &b);
        assert!((d - 0.3).abs() < 1e-9, "d = {d}");
        assert!(p < 1e-10, "p = {p}");
    }

    #[test]
    fn p_value_matches_known_value() {
        // D = 0.1 with n = m = 200: lambda = (10 + 0.12 + 0.011) * 0.1 = 1.0131, Q ≈ 0.2564.
        let a: Vec<f64> = (0..200).map(f64::from).collect();
        let b: Vec<f64> = (20..220).map(f64::from).collect();
        let (d, p) = ks_2samp(&a, &b);
        assert!((d - 0.1).abs() < 1e-12);
        assert!((p - 0.2564).abs() < 2e-3, "p = {p}");
    }
}
