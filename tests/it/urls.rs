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
    "length_url",
    "length_hostname",
    "nb_dots",
    "nb_hyphens",
    "nb_at",
    "nb_qm",
    "nb_and",
    "nb_or",
    "nb_eq",
    "nb_underscore",
    "nb_tilde",
    "nb_percent",
    "nb_slash",
    "nb_star",
    "nb_colon",
    "nb_comma",
    "nb_semicolumn",
    "nb_dollar",
    "nb_space",
    "nb_www",
    "nb_com",
    "nb_dslash",
    "http_in_path",
    "https_token",
    "ratio_digits_url",
    "ratio_digits_host",
    "punycode",
    "port",
    "tld_in_path",
    "tld_in_subdomain",
    "abnormal_subdomain",
    "nb_subdomains",
    "prefix_suffix",
    "shortening_service",
    "path_extension",
    "length_words_raw",
    "char_repeat",
    "shortest_words_raw",
    "shortest_word_host",
    "shortest_word_path",
    "longest_words_raw",
    "longest_word_host",
    "longest_word_path",
    "avg_words_raw",
    "avg_word_host",
    "avg_word_path",
    "phish_hints",
    "suspecious_tld",
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
        report.push_str(&format!(
            "{name:24} {:7.3}%  {:?}\n",
            share * 100.0,
            examples.get(name).unwrap_or(&Vec::new())
        ));
        if SAME_DEFINITION.contains(&name) && share < 0.99 {
            failing.push(name);
        }
    }
    eprintln!("{report}");
    assert!(failing.is_empty(), "below 99% agreement: {failing:?}\n{report}");
}

use crate::common::{Cmd, Project};
use crate::serve::{post, Server};

/// A URL dataset small enough for a test: synthetic phishing-like and benign URLs.
fn url_project() -> (Project, Vec<String>) {
    let p = Project::new();
    p.write(
        "schemas/links.yaml",
        "name: links\ndata:\n  source: data/links.csv\n  group: url\ntarget:\n  column: status\n  threat: [phishing]\n\
         columns:\n  - {name: url, type: url}\n  - {name: status, type: categorical, role: target}\n",
    );
    p.edit("params.yaml", "dataset: toy", "dataset: links");
    let mut state = 7u64;
    let mut next = move |m: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    let words = ["news", "shop", "mail", "docs", "cloud", "bank", "travel", "music", "photo", "sport"];
    let mut csv = String::from("url,status\n");
    let mut urls = Vec::new();
    for i in 0..400 {
        let w = words[next(10) as usize];
        let (url, status) = if i % 2 == 0 {
            (format!("https://www.{w}{}.com/{w}/page{}.html", next(50), next(100)), "legitimate")
        } else {
            match next(3) {
                0 => (
                    format!("http://{}.{}.{}.{}/paypal-login/secure", next(256), next(256), next(256), next(256)),
                    "phishing",
                ),
                1 => {
                    (format!("http://{w}-verify-account{}.xyz/signin.php?id={}", next(999), next(1 << 30)), "phishing")
                }
                _ => (format!("http://secure.{w}.com.update{}.tk/wp-admin/login", next(99)), "phishing"),
            }
        };
        csv.push_str(&format!("{url},{status}\n"));
        urls.push(url);
    }
    p.write("data/links.csv", csv);
    (p, urls)
}

/// A URL model scores URLs given one per line to `predict`, as JSON records and as a text body
/// to the server, and through the page's text box in a real browser.
#[test]
fn a_url_model_scores_urls_through_predict_the_server_and_the_page() {
    let (p, urls) = url_project();
    p.run_all();
    let model = p.path("models/production/links.json");
    let eval = p.metrics("metrics/eval.json");
    assert!(eval["roc_auc"].as_f64().unwrap() > 0.95, "{eval:?}");

    p.write("urls.txt", format!("url\n{}\n\nexample.com/login\n", urls[..20].join("\n")));
    Cmd::bin("predict")
        .dir(p.path(""))
        .args(["urls.txt", "out/v.csv", "--model", model.to_str().unwrap()])
        .run()
        .success();
    let out = p.read("out/v.csv");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("url,threat_score,prediction"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 21, "the header line and the blank line are not URLs: {out}");
    assert!(rows[20].starts_with("example.com/login,"), "{out}");

    let s = Server::start(&model, &[]);
    let (status, body) = post(
        &s.url("/v1/predict"),
        &[("Content-Type", "application/json")],
        serde_json::json!([{"url": urls[0]}, {"url": urls[1]}, {"url": "not a url at all"}]).to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let scores: Vec<f64> = v["predictions"].as_array().unwrap().iter().map(|p| p["score"].as_f64().unwrap()).collect();
    assert_eq!(scores.len(), 3);
    let by_predict: Vec<f64> = rows[..2].iter().map(|r| r.split(',').nth(1).unwrap().parse().unwrap()).collect();
    for (a, b) in scores.iter().zip(&by_predict) {
        assert!((a - b).abs() < 1e-6, "the server and predict agree: {a} vs {b}");
    }
    // The server derives exactly the features `transform` derived for the test part (the
    // scorers write a URL's numbers straight into the encoded row; transform goes through the
    // frame): every feature of every test URL, bit for bit.
    let pre: netsec::preprocess::Preprocessor = serde_json::from_str(&p.read("artifacts/preprocessor.json")).unwrap();
    let names = pre.feature_names();
    let (x, _) = netsec::stages::read_features(&p.path("artifacts/features/test.parquet"), &names).unwrap();
    let split = netsec::data::read_parquet(&p.path("artifacts/split/test.parquet")).unwrap();
    let column = split.column("url").unwrap().str().unwrap().clone();
    let test_urls: Vec<String> = (0..split.height()).map(|i| column.get(i).unwrap().to_owned()).collect();
    assert_eq!(test_urls.len(), x.nrows());
    let records: Vec<serde_json::Value> = test_urls.iter().map(|u| serde_json::json!({ "url": u })).collect();
    let (status, body) = post(
        &s.url("/v1/predict?features=true"),
        &[("Content-Type", "application/json")],
        serde_json::json!(records).to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), x.nrows());
    for (i, pred) in predictions.iter().enumerate() {
        for (j, name) in names.iter().enumerate() {
            let served = pred["features"][name].as_f64().unwrap();
            assert_eq!(served.to_bits(), x[[i, j]].to_bits(), "{}: feature `{name}`", test_urls[i]);
        }
    }
    let (status, csv) =
        post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/plain")], urls[..5].join("\n").as_bytes());
    assert_eq!(status, 200, "{csv}");
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.starts_with("url,threat_score,prediction\n"), "{csv}");

    // The page's text box, in a real browser.
    p.write("pasted.txt", urls[..7].join("\n"));
    let source = crate::serve::browser_paste(&s.url("/"), &urls[..7].join("\n"));
    assert!(source.contains("id=\"predictions\""), "no table:\n{source}");
    assert_eq!(source.matches("<tr class=").count(), 7, "{source}");
    assert!(source.contains(&urls[3]), "{source}");
    s.stop();
}

/// 100,000 random and adversarial strings: the extractor never panics and gives finite
/// values; `predict` scores every one; the server answers every one with a verdict (or, for
/// a body that is not JSON, a 4xx naming where).
#[test]
fn random_and_adversarial_strings_never_break_url_scoring() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    };
    let fixed = [
        String::new(),
        " \t ".into(),
        "javascript:alert(document.cookie)".into(),
        "data:text/html;base64,PHNjcmlwdD4=".into(),
        "http://%zz%G0/%".into(),
        "http://xn--zz--.com/".into(),
        "http://a..b/".into(),
        "http://-a-.com/".into(),
        "http://[::1".into(),
        "http://999.999.999.999/".into(),
        "http://bücher.de/ü?q=ü#ü".into(),
        "\u{0}\u{1}\u{1b}[31m".into(),
        format!("http://example.com/{}", "a".repeat(100_000)),
        format!("http://{}.com/", "b".repeat(70_000)),
        "\u{202e}moc.elgoog//:ptth".into(),
    ];
    let alphabet: Vec<char> = "abcxyz019.-_~:/?#[]@!$&'()*+,;=% \t\u{7f}\u{0}éß水😀\u{200b}\\\"<>".chars().collect();
    let mut cases: Vec<String> = fixed.to_vec();
    while cases.len() < 100_000 {
        let len = next(80) as usize;
        let mut s: String = (0..len).map(|_| alphabet[next(alphabet.len() as u64) as usize]).collect();
        if next(3) == 0 {
            s = format!("{}{s}", ["http://", "https://", "ftp://", "//", "http:/", "HTTP://WWW."][next(6) as usize]);
        }
        cases.push(s);
    }
    let d = UrlFeatures { column: "url".into() };
    for c in &cases {
        let f = d.features(c);
        assert!(f.iter().all(|v| v.is_finite()), "{c:?}: {f:?}");
    }

    let (p, _) = url_project();
    p.run_all();
    let model = p.path("models/production/links.json");
    // predict: one string per line (a string's own line breaks make it several URLs).
    let text: String = cases.iter().map(|c| format!("{c}\n")).collect();
    p.write("random.txt", &text);
    let expected =
        text.lines().enumerate().filter(|(i, l)| !(l.trim().is_empty() || (*i == 0 && l.trim() == "url"))).count();
    let run =
        Cmd::bin("predict").dir(p.path("")).args(["random.txt", "out/r.csv", "--model", model.to_str().unwrap()]).run();
    run.success();
    let scored = csv::Reader::from_path(p.path("out/r.csv")).unwrap().records().count();
    assert_eq!(scored, expected);

    // The server: every string as a JSON record, in requests of 2,000.
    let s = Server::start(&model, &[]);
    let mut answered = 0;
    for batch in cases.chunks(2_000) {
        let records: Vec<serde_json::Value> = batch.iter().map(|u| serde_json::json!({ "url": u })).collect();
        let (status, body) = post(
            &s.url("/v1/predict"),
            &[("Content-Type", "application/json")],
            serde_json::json!({ "records": records }).to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{}", &body[..body.len().min(300)]);
        answered += serde_json::from_str::<serde_json::Value>(&body).unwrap()["predictions"].as_array().unwrap().len();
    }
    assert_eq!(answered, cases.len());
    // A lone surrogate escaped in JSON is not JSON text: a 400 naming the line and column.
    let (status, body) = post(&s.url("/v1/predict"), &[("Content-Type", "application/json")], br#"{"url": "\ud800"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("column"), "{body}");
    s.stop();
}
