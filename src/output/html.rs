//! HTML: a page with the table of rows, their label and score, every cell escaped.

use std::fmt::Write as _;

use html_escape::encode_safe as esc;

use super::{Format, Verdicts};

pub struct Html;

/// The style every page of the server shares.
pub const STYLE: &str =
    "body{font-family:sans-serif;margin:2em;max-width:90em}table{border-collapse:collapse;font-size:13px}\
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}tr.threat td{background:#fde2e2}th{background:#eee}";

impl Format<Verdicts<'_>> for Html {
    fn media_type(&self) -> &'static str {
        "text/html; charset=utf-8"
    }

    fn write(&self, v: &Verdicts<'_>, out: &mut Vec<u8>) {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>netsec: predictions</title><style>{STYLE}</style></head><body>\
<h1>Predictions</h1><p id=\"summary\">{} rows, {} threats (threshold {:.4}, model {}). <a href=\"/\">Score another file</a></p>\
<table id=\"predictions\"><thead><tr><th>row</th><th>label</th><th>threat score</th>",
            v.scores.len(),
            v.threats(),
            v.threshold,
            esc(v.model_version)
        );
        let explained = !v.reasons.is_empty();
        if explained {
            s.push_str("<th>top reasons</th>");
        }
        for c in v.columns {
            let _ = write!(s, "<th>{}</th>", esc(c));
        }
        s.push_str("</tr></thead><tbody>");
        for (i, &score) in v.scores.iter().enumerate() {
            let label = v.label(i);
            let _ = write!(s, "<tr class=\"{label}\"><td>{}</td><td>{label}</td><td>{score:.4}</td>", i + 1);
            if explained {
                let _ = write!(s, "<td class=\"reasons\">{}</td>", esc(v.reasons.get(i).map_or("", String::as_str)));
            }
            for cell in v.fields.get(i).into_iter().flatten() {
                let _ = write!(s, "<td>{}</td>", esc(cell));
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table></body></html>");
        out.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{render, sample};
    use super::*;

    #[test]
    fn snapshot() {
        sample(|v| {
            let page = render(&Html, v);
            let body = &page[page.find("<h1>").unwrap()..];
            assert_eq!(
                body,
                "<h1>Predictions</h1><p id=\"summary\">2 rows, 1 threats (threshold 0.5000, model v1-&lt;abc&gt;). \
<a href=\"/\">Score another file</a></p><table id=\"predictions\"><thead><tr><th>row</th><th>label</th>\
<th>threat score</th><th>a</th><th>note</th></tr></thead><tbody><tr class=\"threat\"><td>1</td><td>threat</td>\
<td>0.9100</td><td>1</td><td>x, &lt;b&gt;</td></tr><tr class=\"benign\"><td>2</td><td>benign</td><td>0.1250</td>\
<td>2</td><td>plain</td></tr></tbody></table></body></html>"
            );
        });
    }
}
