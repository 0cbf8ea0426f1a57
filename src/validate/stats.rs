//! Small numerical pieces the drift tests need: the Kolmogorov and chi-squared tail
//! probabilities, and the Benjamini-Hochberg adjustment.

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

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1-x) = π / sin(πx).
        return std::f64::consts::PI.ln() - (std::f64::consts::PI * x).sin().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = C[1..].iter().enumerate().fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// Regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let log_prefix = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        // Series for P(a, x), then Q = 1 - P.
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * log_prefix.exp()).clamp(0.0, 1.0)
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (log_prefix.exp() * h).clamp(0.0, 1.0)
    }
}

/// P(χ² with `df` degrees of freedom > x).
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if df <= 0.0 {
        return 1.0;
    }
    gamma_q(df / 2.0, x / 2.0)
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
