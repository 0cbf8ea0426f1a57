//! The upload page: a plain HTML form (no JavaScript) and the result table.

use axum::response::Html;

const STYLE: &str =
    "body{font-family:sans-serif;margin:2em;max-width:90em}table{border-collapse:collapse;font-size:13px}\
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}tr.threat td{background:#fde2e2}th{background:#eee}";

pub async fn index() -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>netsec: score a CSV</title><style>{STYLE}</style></head><body>\
<h1>Score a CSV file</h1>\
<p>Upload records with one column per feature (a header row with the feature names); the answer is the same table with a threat score and a label per row.</p>\
<form method=\"post\" action=\"/v1/predict/csv\" enctype=\"multipart/form-data\">\
<input type=\"file\" name=\"file\" accept=\".csv,text/csv\" required> <button type=\"submit\" id=\"score\">Score</button></form>\
<p>API: <code>POST /v1/predict</code> (JSON), <code>POST /v1/predict/csv</code> (CSV; answers CSV, JSON or HTML by Accept), <code>GET /metrics</code>.</p>\
</body></html>"
    ))
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn result_table(
    header: &[String],
    rows: &[csv::StringRecord],
    scores: &[f64],
    threshold: f64,
    version: &str,
) -> String {
    let threats = scores.iter().filter(|&&s| s >= threshold).count();
    let mut s = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>netsec: predictions</title><style>{STYLE}</style></head><body>\
<h1>Predictions</h1><p id=\"summary\">{} rows, {threats} threats (threshold {threshold:.4}, model {}). <a href=\"/\">Score another file</a></p>\
<table id=\"predictions\"><thead><tr><th>row</th><th>label</th><th>threat score</th>",
        rows.len(),
        escape(version)
    );
    for h in header {
        s.push_str(&format!("<th>{}</th>", escape(h)));
    }
    s.push_str("</tr></thead><tbody>");
    for (i, (r, &score)) in rows.iter().zip(scores).enumerate() {
        let label = if score >= threshold { "threat" } else { "benign" };
        s.push_str(&format!("<tr class=\"{label}\"><td>{}</td><td>{label}</td><td>{score:.4}</td>", i + 1));
        for cell in r.iter() {
            s.push_str(&format!("<td>{}</td>", escape(cell)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></body></html>");
    s
}

pub fn error_page(message: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>netsec: error</title><style>{STYLE}</style></head><body>\
<h1>The file was refused</h1><p id=\"error\">{}</p><p><a href=\"/\">Back</a></p></body></html>",
        escape(message)
    )
}
