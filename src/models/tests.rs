//! Properties every family must have: probabilities, importances, determinism from the seed,
//! and a saved form that round-trips to identical predictions.

use ndarray::Array2;

use super::*;

/// A small problem with interactions and ties: label = (x0 XOR x1) mostly, x2 noise.
fn data(n: usize, seed: u64) -> (Array2<f64>, Vec<bool>) {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move |m: u64| {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 33) % m
    };
    let mut x = Array2::zeros((n, 4));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let a = next(3) as f64 - 1.0;
        let b = next(3) as f64 - 1.0;
        x[[i, 0]] = a;
        x[[i, 1]] = b;
        x[[i, 2]] = next(1000) as f64 / 100.0;
        x[[i, 3]] = next(2) as f64;
        let flip = next(20) == 0;
        y.push(((a > 0.0) != (b > 0.0)) != flip);
    }
    (x, y)
}

fn all_families() -> Vec<ModelSpec> {
    FAMILIES
        .iter()
        .map(|f| {
            let params = match *f {
                "random_forest" | "gbm" | "adaboost" => serde_json::json!({ "n_estimators": 30 }),
                _ => serde_json::json!({}),
            };
            ModelSpec::from_json(f, params).unwrap()
        })
        .collect()
}

#[test]
fn every_family_round_trips_through_json_with_identical_predictions() {
    let (x, y) = data(600, 1);
    let (xt, _) = data(200, 2);
    for spec in all_families() {
        let model = spec.fit(x.view(), &y, 42).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        let back: Model = serde_json::from_str(&json).unwrap();
        let (p, q) = (model.predict_proba(xt.view()), back.predict_proba(xt.view()));
        assert!(p.iter().zip(&q).all(|(a, b)| a.to_bits() == b.to_bits()), "{}: predictions changed", spec.name());
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)), "{}: not probabilities", spec.name());
        let imp = model.feature_importance();
        assert_eq!(imp.len(), 4, "{}", spec.name());
        assert!(imp.iter().all(|v| *v >= 0.0), "{}", spec.name());
    }
}

#[test]
fn every_family_is_deterministic_from_its_seed_whatever_the_threads() {
    let (x, y) = data(500, 3);
    for spec in all_families() {
        let fit = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            serde_json::to_vec(&pool.install(|| spec.fit(x.view(), &y, 7)).unwrap()).unwrap()
        };
        assert_eq!(fit(1), fit(2), "{}: differs with the thread count", spec.name());
        assert_eq!(fit(2), fit(2), "{}: differs between runs", spec.name());
    }
}

#[test]
fn trees_learn_an_interaction_that_needs_depth() {
    // XOR of two ternary features: no single split helps, so a learner that stops early
    // (as linfa-trees 0.8.1 does on tied features) stays at chance.
    let (x, y) = data(2000, 5);
    let (xt, yt) = data(1000, 6);
    for spec in all_families()
        .into_iter()
        .filter(|s| matches!(s, ModelSpec::DecisionTree(_) | ModelSpec::RandomForest(_) | ModelSpec::Gbm(_)))
    {
        let model = spec.fit(x.view(), &y, 1).unwrap();
        let p = model.predict_proba(xt.view());
        let acc = p.iter().zip(&yt).filter(|(p, &y)| (**p >= 0.5) == y).count() as f64 / yt.len() as f64;
        assert!(acc > 0.9, "{}: accuracy {acc}", spec.name());
    }
}

#[test]
fn ensembles_of_different_sizes_are_prefixes_of_each_other() {
    // What the search relies on to score n_estimators = 8, 16, ... from one fit.
    let (x, y) = data(400, 8);
    let (xt, _) = data(100, 9);
    for family in ["random_forest", "gbm", "adaboost"] {
        let big = ModelSpec::from_json(family, serde_json::json!({ "n_estimators": 24 })).unwrap();
        let sizes: Vec<usize> = (1..=24).collect();
        let staged = big.fit(x.view(), &y, 3).unwrap().staged_proba(xt.view(), &sizes);
        // Every size, bit for bit: the search ranks candidates by these scores.
        for (&k, staged) in sizes.iter().zip(&staged) {
            let direct = big.with_stages(k).fit(x.view(), &y, 3).unwrap().predict_proba(xt.view());
            for (a, b) in staged.iter().zip(&direct) {
                assert_eq!(a.to_bits(), b.to_bits(), "{family}, {k} members: staged {a} vs separate fit {b}");
            }
        }
    }
}

/// The families are linfa citizens: unchecked params go through `ParamGuard`, checked params
/// (with their seed) are a linfa `Fit`, and fitted models a `PredictInplace`, so linfa's own
/// cross-validation drives them.
#[test]
fn every_family_cross_validates_through_linfa() {
    let (x, y) = data(600, 3);
    let mut dataset = linfa::Dataset::new(x, ndarray::Array1::from(y));
    let mut seeded: Vec<checked::Seeded<ModelSpec>> = Vec::new();
    for spec in all_families() {
        seeded.push(checked::Seeded { params: spec, seed: 42 });
    }
    let acc = dataset
        .cross_validate_single(3, &seeded, |pred: &ndarray::Array1<bool>, truth: &ndarray::ArrayView1<bool>| {
            Ok(pred.iter().zip(truth.iter()).filter(|(p, t)| p == t).count() as f64 / truth.len() as f64)
        })
        .unwrap();
    assert_eq!(acc.len(), FAMILIES.len());
    for (spec, a) in all_families().iter().zip(acc.iter()) {
        // XOR of two features with 5% label noise (majority class 56%): trees learn it, 30
        // boosted stumps partly, a linear model not at all.
        let bar = match spec.name() {
            "logistic" => 0.4,
            "adaboost" => 0.65,
            _ => 0.85,
        };
        assert!(*a > bar, "{}: linfa CV accuracy {a}", spec.name());
    }
}

#[test]
fn bagging_is_linfa_ensembles_learner_over_our_tree() {
    use linfa::prelude::*;
    use linfa::ParamGuard;
    let (x, y) = data(600, 4);
    let (xt, yt) = data(300, 5);
    // An unchecked spec cannot be fitted; checking refuses a bad one with the key named.
    let bad = bagging::BaggingParams { max_samples: 1.5, ..Default::default() };
    assert!(bad.check().unwrap_err().to_string().contains("max_samples"));
    let bad_tree = bagging::BaggingParams {
        tree: decision_tree::DecisionTreeParams {
            max_features: decision_tree::MaxFeatures::Fraction(2.0),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(bad_tree.check().unwrap_err().to_string().contains("tree: max_features"));

    let params = bagging::BaggingParams { n_estimators: 25, max_samples: 0.8, ..Default::default() }.check().unwrap();
    let fit = |seed| {
        checked::Seeded { params: params.clone(), seed }
            .fit(&linfa::Dataset::new(x.clone(), ndarray::Array1::from(y.clone())))
    };
    let model = fit(7).unwrap();
    assert_eq!(model.trees.len(), 25);
    assert_eq!(model.features.len(), 25);
    // linfa's Predict gives the majority vote; our score is the vote share.
    let labels: ndarray::Array1<bool> = model.predict(&xt);
    let share = model.predict_proba(xt.view());
    assert!(labels.iter().zip(share.iter()).all(|(l, s)| *l == (*s >= 0.5)));
    assert!(share.iter().all(|s| (0.0..=1.0).contains(s) && (s * 25.0 - (s * 25.0).round()).abs() < 1e-9));
    let acc = labels.iter().zip(&yt).filter(|(p, t)| *p == *t).count() as f64 / yt.len() as f64;
    assert!(acc > 0.85, "bagging test accuracy {acc}");
    // Every random choice comes from the seed.
    assert_eq!(model, fit(7).unwrap());
    assert_ne!(model, fit(8).unwrap());
}

/// Explanations add up: for every family and 1,000 rows, base value plus contributions equal
/// the model's margin (log-odds, averaged leaf, vote) within 1e-9, and the margin gives the
/// model's score through the family's link.
#[test]
fn every_family_explains_each_row_exactly() {
    let (x, y) = data(800, 11);
    let (xt, _) = data(1000, 12);
    for spec in all_families() {
        let model = spec.fit(x.view(), &y, 42).unwrap();
        let scores = model.predict_proba(xt.view());
        for (r, row) in xt.rows().into_iter().enumerate() {
            let row = row.to_vec();
            let e = model.explain(&row).unwrap_or_else(|m| panic!("{}: {m}", spec.name()));
            assert_eq!(e.contributions.len(), 4);
            let margin = e.margin();
            let walked = model.margin(&row);
            assert!((margin - walked).abs() < 1e-9, "{} row {r}: {margin} vs the margin {walked}", spec.name());
            let score = match e.kind {
                explain::MarginKind::LogOdds => 1.0 / (1.0 + (-margin).exp()),
                explain::MarginKind::HalfLogOdds => 1.0 / (1.0 + (-2.0 * margin).exp()),
                explain::MarginKind::Probability => margin,
            };
            assert!((score - scores[r]).abs() < 1e-9, "{} row {r}: {score} vs {}", spec.name(), scores[r]);
        }
    }
}
