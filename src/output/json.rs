//! JSON: the model version, the threshold, and per row its line (and uid for a Zeek log),
//! score and label.

use serde_json::json;

use super::{Format, Verdicts};

pub struct Json;

impl Format<Verdicts<'_>> for Json {
    fn media_type(&self) -> &'static str {
        "application/json"
    }

    fn write(&self, v: &Verdicts<'_>, out: &mut Vec<u8>) {
        // A connection's uid (Zeek logs) names it better than its line.
        let uid = v.columns.iter().position(|c| c == "uid");
        let predictions: Vec<serde_json::Value> = (0..v.scores.len())
            .map(|i| {
                let mut p = json!({ "row": v.lines[i], "score": v.scores[i], "label": v.label(i) });
                if let Some(cell) = uid.and_then(|u| v.fields.get(i)?.get(u)) {
                    p["uid"] = json!(cell);
                }
                p
            })
            .collect();
        let doc = json!({
            "model_version": v.model_version,
            "threshold": v.threshold,
            "rows": v.scores.len(),
            "predictions": predictions,
        });
        serde_json::to_writer(out, &doc).expect("JSON values serialize");
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{render, sample};
    use super::*;

    #[test]
    fn snapshot() {
        sample(|v| {
            assert_eq!(
                render(&Json, v),
                r#"{"model_version":"v1-<abc>","predictions":[{"label":"threat","row":2,"score":0.91},{"label":"benign","row":3,"score":0.125}],"rows":2,"threshold":0.5}"#
            )
        });
    }
}
