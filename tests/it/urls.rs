//! URLs in, verdicts out: our URL features against the values Hannousse & Yahiouche published
//! for the same 11,430 URLs, and URL scoring through `predict` and the server.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use netsec::features::url::UrlFeatures;
use netsec::features::Derive;

/// The published features whose definition ours follows (the rest are listed in the README's
/// URL table with how ours differs), and the share of rows that must agree.
const SAME_DEFINITION: &[&str] = &[
    "length_url", "length_hostname", "nb_dots", "nb_hyphens", "nb_at", "nb_qm", "nb_and", "nb_or", "nb_eq",
    "nb_underscore", "nb_tilde", "nb_percent", "nb_slash", "nb_star", "nb_colon", "nb_comma", "nb_semicolumn",
    "nb_dollar", "nb_space", "nb_www", "nb_com", "nb_dslash", "http_in_path", "https_token", "ratio_digits_url",
    "ratio_digits_host", "punycode", "port", "tld_in_path", "tld_in_subdomain", "abnormal_subdomain",
    "nb_subdomains", "prefix_suffix", "shortening_service", "path_extension", "length_words_raw", "char_repeat",
    "shortest_words_raw", "shortest_word_host", "shortest_word_path", "longest_words_raw", "longest_word_host",
    "longest_word_path", "avg_words_raw", "avg_word_host", "avg_word_path", "phish_hints", "suspecious_tld",
];

/// Features we compute under a published name but define differently.
const DIFFERENT: &[&str] = &["ip"];

fn dataset() -> Option<csv::Reader<Box<dyn Read>>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/urls-hannousse/dataset_phishing.csv.gz");
    let file = std::fs::File::open(&path).ok()?;
    Some(csv::Reader::from_reader(Box::new(flate2::read::GzDecoder::new(file))))
}

/// Agreement per feature with the published values, over every URL of the dataset.
#[test]
fn our_url_features_agree_with_the_published_ones() {
    let mut reader = dataset().expect("data/urls-hannousse: run `dvc pull data.dvc` (make test does)");
    let headers = reader.headers().unwrap().clone();
    let d = UrlFeatures { column: "url".into() };
    let names: Vec<String> = d.outputs().into_iter().map(|(n, _)| n).collect();
    let mut agree: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rows = 0;
    let mut examples: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let url = &record[0];
        let ours = d.features(url);
        for &name in SAME_DEFINITION.iter().chain(DIFFERENT) {
            let theirs: f64 = record[headers.iter().position(|h| h == name).unwrap()].parse().unwrap();
            let mine = ours[names.iter().position(|n| n == name).unwrap()];
            if (mine - theirs).abs() <= 1e-6 * theirs.abs().max(1.0) {
                *agree.entry(name).or_default() += 1;
            } else {
                let e = examples.entry(name).or_default();
                if e.len() < 3 {
                    e.push(format!("{url}: ours {mine}, theirs {theirs}"));
                }
            }
        }
        rows += 1;
    }
    assert_eq!(rows, 11_430);
    let mut report = String::new();
    let mut failing = Vec::new();
    for &name in SAME_DEFINITION.iter().chain(DIFFERENT) {
        let share = *agree.get(name).unwrap_or(&0) as f64 / rows as f64;
        report.push_str(&format!("{name:24} {:7.3}%  {:?}\n", share * 100.0, examples.get(name).unwrap_or(&Vec::new())));
        if SAME_DEFINITION.contains(&name) && share < 0.99 {
            failing.push(name);
        }
    }
    eprintln!("{report}");
    assert!(failing.is_empty(), "below 99% agreement: {failing:?}\n{report}");
}
