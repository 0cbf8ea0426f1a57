//! Feature binning: each feature's values are mapped to at most `max_bins` ordered bins once
//! per fit, so split search scans small histograms instead of sorting rows at every node.
//! A feature with few distinct values (every phishing feature has 2 or 3) gets one bin per
//! value, so its splits are exact; others get quantile bins, as in LightGBM or sklearn's
//! HistGradientBoosting. Split thresholds are midpoints between neighbouring bins, stored as
//! raw values: a fitted tree predicts on raw features and needs no binning.

use ndarray::ArrayView2;

/// The transpose of a `rows` × `cols` table read by `at(r, c)`: `out[c * rows + r]`. Copied
/// in blocks of 64 rows, so that both the reads and the writes stay in cache.
fn transposed<T: Copy + Default>(rows: usize, cols: usize, at: impl Fn(usize, usize) -> T) -> Vec<T> {
    let mut out = vec![T::default(); rows * cols];
    for block in (0..rows).step_by(64) {
        let end = (block + 64).min(rows);
        for c in 0..cols {
            for r in block..end {
                out[c * rows + r] = at(r, c);
            }
        }
    }
    out
}

/// Cut values midway between neighbouring distinct values.
fn midpoints(distinct: &[f64]) -> Vec<f64> {
    distinct.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2.0).collect()
}

/// The cut values between a feature's bins: midpoints between neighbouring distinct values
/// when there are at most `max_bins` of them, else between quantiles.
fn cuts_of(col: &[f64], max_bins: usize) -> Vec<f64> {
    // Most features have few distinct values (one-hot columns two): found without sorting
    // the column, the same list the sort would give (values told apart by their bits, then
    // equal ones merged as `dedup` merges them; a column with NaN takes the sort).
    let mut distinct: Vec<f64> = Vec::new();
    let mut few = true;
    for &v in col {
        if v.is_nan() {
            few = false;
            break;
        }
        if let Err(at) = distinct.binary_search_by(|d| d.total_cmp(&v)) {
            if distinct.len() > max_bins {
                few = false;
                break;
            }
            distinct.insert(at, v);
        }
    }
    if few {
        distinct.dedup();
        if distinct.len() <= max_bins {
            return midpoints(&distinct);
        }
    }
    let mut sorted: Vec<f64> = col.to_vec();
    // Values equal by `total_cmp` have the same bits: the unstable sort gives the same list.
    sorted.sort_unstable_by(f64::total_cmp);
    let mut distinct = sorted.clone();
    distinct.dedup();
    if distinct.len() <= max_bins {
        return midpoints(&distinct);
    }
    // Quantile cut values, each moved to the midpoint towards the next distinct value.
    let mut cuts: Vec<f64> = (1..max_bins)
        .map(|q| sorted[q * sorted.len() / max_bins])
        .map(|v| {
            let next = distinct.partition_point(|&d| d <= v);
            if next < distinct.len() {
                v + (distinct[next] - v) / 2.0
            } else {
                f64::INFINITY
            }
        })
        .filter(|c| c.is_finite())
        .collect();
    cuts.dedup();
    cuts
}

/// Row-major bin codes of a training matrix, with the thresholds between bins.
#[derive(Debug, Clone)]
pub struct Binned {
    pub n_rows: usize,
    pub n_features: usize,
    /// `codes[row * n_features + feature]`.
    pub codes: Vec<u8>,
    /// The same codes column by column: `columns[feature * n_rows + row]`.
    pub columns: Vec<u8>,
    /// Per feature: `thresholds[f][b]` separates bin `b` (x <= threshold) from bin `b + 1`.
    pub thresholds: Vec<Vec<f64>>,
    /// Start of each feature's bins in a flat histogram.
    pub offsets: Vec<usize>,
    /// Features with few bins packed together (see [`Pack`]).
    pub packs: Vec<Pack>,
    /// `packed[row * packs.len() + p]`: the row's code in pack `p`.
    pub packed: Vec<u8>,
    /// Start of each pack's cells in a flat pack histogram.
    pub pack_offsets: Vec<usize>,
}

/// Several low-cardinality features combined into one code below 256 (five ternary phishing
/// features make one code of 243 values). A histogram over pack codes costs one update per
/// pack instead of one per feature, and the per-feature histograms follow from it exactly.
#[derive(Debug, Clone)]
pub struct Pack {
    pub features: Vec<usize>,
    /// Code of a row = Σ bin(feature) × stride.
    pub strides: Vec<usize>,
    pub size: usize,
    /// `decode[code * features.len() + k]`: the bin of `features[k]` in `code`.
    pub decode: Vec<u8>,
}

impl Binned {
    pub fn new(x: ArrayView2<'_, f64>, max_bins: usize) -> Self {
        let max_bins = max_bins.clamp(2, 256);
        let (n_rows, n_features) = x.dim();
        // Column by column (one blocked transpose): the bins of a feature are found on its
        // own contiguous values, and its codes written contiguously.
        let values = transposed(n_rows, n_features, |r, f| x[[r, f]]);
        let mut columns = vec![0u8; n_rows * n_features];
        let mut thresholds = Vec::with_capacity(n_features);
        for f in 0..n_features {
            let col = &values[f * n_rows..(f + 1) * n_rows];
            let cuts = cuts_of(col, max_bins);
            for (code, &v) in columns[f * n_rows..(f + 1) * n_rows].iter_mut().zip(col) {
                *code = cuts.partition_point(|&t| t < v) as u8;
            }
            thresholds.push(cuts);
        }
        drop(values);
        // Row-major, the transpose of the columns (features × rows).
        let codes = transposed(n_features, n_rows, |f, r| columns[f * n_rows + r]);
        let mut offsets = Vec::with_capacity(n_features + 1);
        let mut at = 0;
        for t in &thresholds {
            offsets.push(at);
            at += t.len() + 1;
        }
        offsets.push(at);

        let mut packs: Vec<Pack> = Vec::new();
        for (f, t) in thresholds.iter().enumerate() {
            let nb = t.len() + 1;
            match packs.last_mut() {
                Some(p) if p.size * nb <= 256 => {
                    p.features.push(f);
                    p.strides.push(p.size);
                    p.size *= nb;
                }
                _ => packs.push(Pack { features: vec![f], strides: vec![1], size: nb, decode: Vec::new() }),
            }
        }
        for p in &mut packs {
            let mut decode = Vec::with_capacity(p.size * p.features.len());
            for code in 0..p.size {
                for (&f, &s) in p.features.iter().zip(&p.strides) {
                    decode.push(((code / s) % (thresholds[f].len() + 1)) as u8);
                }
            }
            p.decode = decode;
        }
        let mut packed = vec![0u8; n_rows * packs.len()];
        for r in 0..n_rows {
            let row = &codes[r * n_features..(r + 1) * n_features];
            for (p, pack) in packs.iter().enumerate() {
                let code: usize = pack.features.iter().zip(&pack.strides).map(|(&f, &s)| row[f] as usize * s).sum();
                packed[r * packs.len() + p] = code as u8;
            }
        }
        let mut pack_offsets = Vec::with_capacity(packs.len() + 1);
        let mut at = 0;
        for p in &packs {
            pack_offsets.push(at);
            at += p.size;
        }
        pack_offsets.push(at);
        Binned { n_rows, n_features, codes, columns, thresholds, offsets, packs, packed, pack_offsets }
    }

    /// Rows with identical bins in every feature form a group: no split can separate them,
    /// so the learners work on one representative per group with summed statistics.
    /// Returns the group of every row and the representative (first) row of each group,
    /// in ascending row order.
    pub fn groups(&self) -> (Vec<u32>, Vec<u32>) {
        let mut index: std::collections::HashMap<&[u8], u32> = std::collections::HashMap::with_capacity(self.n_rows);
        let mut reps = Vec::new();
        let group_of = (0..self.n_rows)
            .map(|r| {
                *index.entry(self.packed_row(r)).or_insert_with(|| {
                    reps.push(r as u32);
                    (reps.len() - 1) as u32
                })
            })
            .collect();
        (group_of, reps)
    }

    pub fn column(&self, f: usize) -> &[u8] {
        &self.columns[f * self.n_rows..(f + 1) * self.n_rows]
    }

    #[inline]
    pub fn packed_row(&self, r: usize) -> &[u8] {
        &self.packed[r * self.packs.len()..(r + 1) * self.packs.len()]
    }

    pub fn n_bins(&self, f: usize) -> usize {
        self.thresholds[f].len() + 1
    }

    pub fn total_bins(&self) -> usize {
        self.offsets[self.n_features]
    }

    #[inline]
    pub fn row(&self, r: usize) -> &[u8] {
        &self.codes[r * self.n_features..(r + 1) * self.n_features]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn few_values_get_exact_bins() {
        let x = array![[-1.0, 5.0], [0.0, 5.0], [1.0, 7.0], [1.0, 5.0]];
        let b = Binned::new(x.view(), 256);
        assert_eq!(b.thresholds[0], vec![-0.5, 0.5]);
        assert_eq!(b.thresholds[1], vec![6.0]);
        assert_eq!(b.row(2), &[2, 1]);
        assert_eq!(b.total_bins(), 5);
        // 3 x 2 bins fit one pack; row 2 = bin 2 + 3 * bin 1.
        assert_eq!(b.packs.len(), 1);
        assert_eq!(b.packed_row(2), &[5]);
    }

    #[test]
    fn many_values_get_quantile_bins() {
        let x = ndarray::Array2::from_shape_fn((1000, 1), |(i, _)| i as f64);
        let b = Binned::new(x.view(), 16);
        assert!(b.n_bins(0) <= 16 && b.n_bins(0) >= 15);
        let counts = (0..16).map(|k| b.codes.iter().filter(|&&c| c == k).count()).collect::<Vec<_>>();
        assert!(counts.iter().take(15).all(|&c| (50..=80).contains(&c)), "{counts:?}");
    }

    /// The cuts as the sorting path finds them (the only path before the few-values one).
    fn cuts_by_sorting(col: &[f64], max_bins: usize) -> Vec<f64> {
        let mut sorted = col.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut distinct = sorted.clone();
        distinct.dedup();
        if distinct.len() <= max_bins {
            return super::midpoints(&distinct);
        }
        super::cuts_of(&sorted, max_bins)
    }

    #[test]
    fn few_valued_columns_get_the_cuts_sorting_gives_bit_for_bit() {
        let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
        let columns: Vec<Vec<f64>> = vec![
            vec![1.0, 0.0, 1.0, 0.0, 0.0],
            vec![0.0, -0.0, 1.0, -0.0, 2.5, 0.0],
            vec![3.0, f64::NAN, 1.0, f64::NAN, 2.0],
            vec![f64::INFINITY, -1.0, f64::NEG_INFINITY, 7.0],
            (0..300).map(|i| (i % 255) as f64 * 0.5).collect(),
            (0..300).map(|i| (i % 256) as f64 * 0.5).collect(),
            (0..300).map(|i| (i % 257) as f64 * 0.5).chain([-0.0, 0.0]).collect(),
            (0..1000).map(|i| ((i * 7919) % 1000) as f64 / 3.0).collect(),
        ];
        for col in columns {
            for max_bins in [2, 16, 255, 256] {
                assert_eq!(
                    bits(super::cuts_of(&col, max_bins)),
                    bits(cuts_by_sorting(&col, max_bins)),
                    "{max_bins}: {col:?}"
                );
            }
        }
    }
}
