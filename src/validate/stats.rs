//! Small numerical pieces the drift tests need: the Kolmogorov and chi-squared tail
//! probabilities, and the Benjamini-Hochberg adjustment. The chi-squared tail is statrs';
//! statrs has no Kolmogorov distribution, so its alternating series (a few lines) is here.

/// P(K > λ) for the Kolmogorov distribution, Q(λ) = 2 Σ (-1)^(k-1) exp(-2 k² λ²).
pub fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100u32 {
        let kf = f64::from(k);
        let term = (-2.0 * kf * kf * lambda * lambda).exp();
        sum += if k % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Asymptotic p-value of a two-sample KS statistic `d` with sample sizes `n` and `m`
/// (with the small-sample correction of Stephens).
pub fn ks_p_value(d: f64, n: f64, m: f64) -> f64 {
    let en = (n * m / (n + m)).sqrt();
    kolmogorov_q((en + 0.12 + 0.11 / en) * d)
}

/// P(χ² with `df` degrees of freedom > x) (statrs' regularized incomplete gamma).
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    match ChiSquared::new(df) {
        Ok(d) if x > 0.0 => d.sf(x),
        _ => 1.0,
    }
}

/// Benjamini-Hochberg adjusted p-values (same order as the input).
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len() as f64;
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; p.len()];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m / (rank as f64 + 1.0));
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn chi2_tail_matches_tables() {
        // Critical values at 5%: df 1 -> 3.841, df 5 -> 11.070, df 30 -> 43.773.
        assert!(close(chi2_sf(3.841, 1.0), 0.05, 1e-4));
        assert!(close(chi2_sf(11.070, 5.0), 0.05, 1e-4));
        assert!(close(chi2_sf(43.773, 30.0), 0.05, 1e-4));
        assert!(close(chi2_sf(2.0, 2.0), (-1.0f64).exp(), 1e-12));
        assert_eq!(chi2_sf(0.0, 3.0), 1.0);
    }

    #[test]
    fn kolmogorov_tail() {
        assert!(close(kolmogorov_q(1.358), 0.05, 1e-3));
        assert_eq!(kolmogorov_q(0.1), 1.0);
    }

    #[test]
    fn bh_adjustment() {
        let adj = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5]);
        // sorted: .01*4/1=.04, .03*4/2=.06, .04*4/3=.0533 -> monotone: .04, .0533, .0533, .5
        assert!(close(adj[0], 0.04, 1e-12));
        assert!(close(adj[2], 0.16 / 3.0, 1e-12));
        assert!(close(adj[1], 0.16 / 3.0, 1e-12));
        assert!(close(adj[3], 0.5, 1e-12));
    }
}
