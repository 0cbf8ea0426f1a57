//! The upload page: a plain HTML form (no JavaScript), and the page of a refused file. The
//! result table is the HTML output format (`output::html`).

use axum::response::Html;

use crate::output::html::STYLE;

pub async fn index() -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>netsec: score a file</title><style>{STYLE}</style></head><body>\
<h1>Score a CSV file or a Zeek log</h1>\
<p>Upload records with one column per feature (a header row with the feature names), or a Zeek <code>conn.log</code> (TSV or JSON, gzip or not) for a model trained on Zeek logs; the answer is a table with a threat score and a label per row (for a log: per connection, by its uid and addresses).</p>\
<form method=\"post\" action=\"/v1/predict/csv\" enctype=\"multipart/form-data\">\
<input type=\"file\" name=\"file\" accept=\".csv,text/csv,.log,.gz,.json,.jsonl,.labeled,.txt\" required> <button type=\"submit\" id=\"score\">Score</button></form>\
<h2>Or paste URLs</h2><p>For a URL model: one URL per line.</p>\
<form method=\"post\" action=\"/v1/predict/csv\" enctype=\"multipart/form-data\">\
<textarea name=\"urls\" id=\"urls\" rows=\"6\" cols=\"80\" required></textarea><br><button type=\"submit\" id=\"score-urls\">Score URLs</button></form>\
<p>API: <code>POST /v1/predict</code> (JSON), <code>POST /v1/predict/csv</code> (a CSV or a Zeek log; answers CSV, JSON or HTML by Accept), <code>GET /metrics</code>.</p>\
</body></html>"
    ))
}

pub fn error_page(message: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>netsec: error</title><style>{STYLE}</style></head><body>\
<h1>The file was refused</h1><p id=\"error\">{}</p><p><a href=\"/\">Back</a></p></body></html>",
        html_escape::encode_safe(message)
    )
}
