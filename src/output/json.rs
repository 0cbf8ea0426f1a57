//! JSON: the model version, the threshold, and per row its line, score and label.

use serde_json::json;

use super::{Format, Verdicts};

pub struct Json;

impl Format<Verdicts<'_>> for Json {
    fn media_type(&self) -> &'static str {
        "application/json"
    }

    fn write(&self, v: &Verdicts<'_>, out: &mut Vec<u8>) {
        let predictions: Vec<serde_json::Value> = (0..v.scores.len())
            .map(|i| json!({ "row": v.lines[i], "score": v.scores[i], "label": v.label(i) }))
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
