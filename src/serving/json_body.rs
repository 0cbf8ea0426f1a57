//! The JSON body of `POST /v1/predict`, read as a stream of records: each record is handed
//! on as soon as it is read, and the limits (records per request, fields per record) stop
//! the parse when they are passed, not after the whole body has become a tree. Arrays and
//! objects inside a record are skipped, not built (a feature takes a scalar), so a body of
//! nested empty arrays costs no memory beyond the body itself. Duplicate keys are refused.

use std::collections::HashSet;
use std::fmt;

use axum::http::StatusCode;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::error::{too_many, ApiError};

/// A value of a record's field: scalars as sent; arrays and objects only noted.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Array,
    Object,
}

impl Field {
    /// The value to echo back (a record's `id`): scalars only.
    pub fn to_json(&self) -> Option<Value> {
        match self {
            Field::Null => Some(Value::Null),
            Field::Bool(b) => Some(Value::Bool(*b)),
            Field::Number(n) => serde_json::Number::from_f64(*n).map(Value::Number),
            Field::Text(s) => Some(Value::String(s.clone())),
            Field::Array | Field::Object => None,
        }
    }
}

/// One record: its fields in the order sent, each key once.
#[derive(Debug, Default)]
pub struct Record {
    fields: Vec<(String, Field)>,
    /// The keys, once there are many (a linear scan is faster below that).
    keys: Option<HashSet<String>>,
    /// Where the last lookup matched: clients send fields in the model's order, so the next
    /// lookup usually matches right after it.
    cursor: std::cell::Cell<usize>,
}

impl Record {
    pub fn get(&self, name: &str) -> Option<&Field> {
        let n = self.fields.len();
        let start = self.cursor.get();
        (0..n).map(|i| (start + i) % n).find(|&i| self.fields[i].0 == name).map(|i| {
            self.cursor.set(i + 1);
            &self.fields[i].1
        })
    }

    fn insert(&mut self, key: String, value: Field) -> Result<(), String> {
        const SCAN: usize = 32;
        let dup = match &mut self.keys {
            Some(keys) => !keys.insert(key.clone()),
            None => {
                let dup = self.fields.iter().any(|(k, _)| *k == key);
                if !dup && self.fields.len() == SCAN {
                    let mut keys: HashSet<String> = self.fields.iter().map(|(k, _)| k.clone()).collect();
                    keys.insert(key.clone());
                    self.keys = Some(keys);
                }
                dup
            }
        };
        if dup {
            return Err(format!("duplicate key `{key}`"));
        }
        self.fields.push((key, value));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Limits of one body.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_records: usize,
    pub max_fields: usize,
}

/// Read `body` as one record (an object), an array of records, or `{"records": [...]}`,
/// calling `each(index, record)` for each record in order. The number of records read.
pub fn read(
    body: &[u8],
    limits: Limits,
    each: &mut dyn FnMut(usize, Record) -> Result<(), ApiError>,
) -> Result<usize, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty body: send a record (a JSON object), an array of records, or {\"records\": [...]}",
        ));
    }
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body starts with a byte-order mark (BOM): send the JSON without one",
        ));
    }
    let mut ctx = Ctx { limits, each, failed: None, count: 0 };
    let mut de = serde_json::Deserializer::from_slice(body);
    let outcome = Top(&mut ctx).deserialize(&mut de).and_then(|()| de.end());
    if let Some(e) = ctx.failed.take() {
        return Err(e);
    }
    outcome.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}"))
            .with("line", e.line())
            .with("column", e.column())
    })?;
    if ctx.count == 0 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "no records"));
    }
    Ok(ctx.count)
}

/// The scalar `visit_*` methods of a visitor that takes only arrays or objects: each fails
/// with the error `$refuse` makes of the visitor.
macro_rules! refuse_scalars {
    (|$this:ident| $refuse:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            let $this = self;
            Err($refuse)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            let $this = self;
            Err($refuse)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            let $this = self;
            Err($refuse)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            let $this = self;
            Err($refuse)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            let $this = self;
            Err($refuse)
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            let $this = self;
            Err($refuse)
        }
    };
}

struct Ctx<'f> {
    limits: Limits,
    each: &'f mut dyn FnMut(usize, Record) -> Result<(), ApiError>,
    /// Why the parse was stopped (the serde error only carries "refused").
    failed: Option<ApiError>,
    count: usize,
}

impl Ctx<'_> {
    fn fail<E: de::Error>(&mut self, e: ApiError) -> E {
        self.failed = Some(e);
        E::custom("refused")
    }

    fn record<E: de::Error>(&mut self, rec: Record) -> Result<(), E> {
        let i = self.count;
        self.count += 1;
        (self.each)(i, rec).map_err(|e| self.fail(e))
    }

    fn records<'de, A: SeqAccess<'de>>(&mut self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(RecordSeed(self))?.is_some() {}
        Ok(())
    }
}

fn shape_error() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "expected a record (object), an array of records, or {\"records\": [...]}")
}

/// The whole body.
struct Top<'c, 'f>(&'c mut Ctx<'f>);

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record, an array of records, or {\"records\": [...]}")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.records(seq)
    }

    /// A record, or a wrapper with a `records` array (other keys of a wrapper are ignored).
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let mut rec = Record::default();
        let mut wrapped = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "records" {
                if wrapped {
                    return Err(ctx.fail(
                        ApiError::new(StatusCode::BAD_REQUEST, "duplicate key `records`").with("field", "records"),
                    ));
                }
                wrapped = true;
                map.next_value_seed(RecordsSeed(ctx))?;
            } else if wrapped {
                map.next_value::<IgnoredAny>()?;
            } else {
                let value = map.next_value_seed(FieldSeed)?;
                if rec.len() == ctx.limits.max_fields {
                    return Err(ctx.fail(too_many_fields(0, ctx.limits.max_fields)));
                }
                rec.insert(key.clone(), value).map_err(|m| {
                    ctx.fail(
                        ApiError::new(StatusCode::BAD_REQUEST, format!("record 0: {m}"))
                            .with("record", 0)
                            .with("field", key.as_str()),
                    )
                })?;
            }
        }
        if !wrapped {
            ctx.record(rec)?;
        }
        Ok(())
    }

    refuse_scalars!(|this| this.0.fail(shape_error()));
}

fn too_many_fields(record: usize, limit: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("record {record} has more than {limit} fields"))
        .with("record", record)
        .with("limit", limit)
}

/// The value of `records`: an array of records.
struct RecordsSeed<'c, 'f>(&'c mut Ctx<'f>);

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.records(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.0.fail(not_an_array()))
    }
    refuse_scalars!(|this| this.0.fail(not_an_array()));
}

fn not_an_array() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "`records` must be an array of objects").with("field", "records")
}

/// One element of a records array: refused before it is read when it is one too many.
struct RecordSeed<'c, 'f>(&'c mut Ctx<'f>);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let ctx = self.0;
        if ctx.count == ctx.limits.max_records {
            let n = ctx.count + 1;
            return Err(ctx.fail(too_many(n, ctx.limits.max_records, "records or more")));
        }
        d.deserialize_any(RecordVisitor(ctx))
    }
}

struct RecordVisitor<'c, 'f>(&'c mut Ctx<'f>);

impl RecordVisitor<'_, '_> {
    fn not_an_object<E: de::Error>(self) -> E {
        let i = self.0.count;
        self.0.fail(ApiError::new(StatusCode::BAD_REQUEST, format!("record {i}: expected an object")).with("record", i))
    }
}

impl<'de> Visitor<'de> for RecordVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let i = ctx.count;
        let mut rec = Record::default();
        while let Some(key) = map.next_key::<String>()? {
            if rec.len() == ctx.limits.max_fields {
                return Err(ctx.fail(too_many_fields(i, ctx.limits.max_fields)));
            }
            let value = map.next_value_seed(FieldSeed)?;
            rec.insert(key.clone(), value).map_err(|m| {
                ctx.fail(
                    ApiError::new(StatusCode::BAD_REQUEST, format!("record {i}: {m}"))
                        .with("record", i)
                        .with("field", key.as_str()),
                )
            })?;
        }
        ctx.record(rec)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_an_object())
    }
    refuse_scalars!(|this| this.not_an_object());
}

/// A field's value: scalars kept, arrays and objects skipped without being built.
struct FieldSeed;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(Field::Null)
    }
    fn visit_none<E>(self) -> Result<Field, E> {
        Ok(Field::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Field, E> {
        Ok(Field::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Field, E> {
        Ok(Field::Number(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Field, E> {
        Ok(Field::Number(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Field, E> {
        Ok(Field::Number(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Field, E> {
        Ok(Field::Text(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Field, E> {
        Ok(Field::Text(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &str) -> Result<Vec<Record>, (StatusCode, Value)> {
        let mut out = Vec::new();
        read(body.as_bytes(), Limits { max_records: 3, max_fields: 4 }, &mut |_, r| {
            out.push(r);
            Ok(())
        })
        .map_err(|e| (e.0, e.1))?;
        Ok(out)
    }

    #[test]
    fn the_three_shapes_and_their_errors() {
        assert_eq!(all(r#"{"a": 1, "b": "x"}"#).unwrap().len(), 1);
        assert_eq!(all(r#"[{"a": 1}, {"a": 2}]"#).unwrap().len(), 2);
        let recs = all(r#"{"model": "m", "records": [{"a": [1, [2]], "b": {"c": 1}, "d": null}]}"#).unwrap();
        assert_eq!(recs[0].get("a"), Some(&Field::Array));
        assert_eq!(recs[0].get("b"), Some(&Field::Object));
        assert_eq!(recs[0].get("d"), Some(&Field::Null));
        let err = |b: &str| all(b).unwrap_err();
        assert_eq!(err("[{},{},{},{}]").0, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err(r#"{"a":1,"b":1,"c":1,"d":1,"e":1}"#).0, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err(r#"[{"a":1,"a":2}]"#).1["error"].as_str().unwrap().contains("duplicate key `a`"));
        assert!(err("[[]]").1["error"].as_str().unwrap().contains("record 0: expected an object"));
        assert!(err(r#"{"records": 3}"#).1["error"].as_str().unwrap().contains("must be an array"));
        assert!(err("").1["error"].as_str().unwrap().contains("empty body"));
        assert!(err("\u{feff}{}").1["error"].as_str().unwrap().contains("byte-order mark"));
        assert!(err("[]").1["error"].as_str().unwrap().contains("no records"));
        assert_eq!(err("[{\"a\": 1}").1["line"], 1);
        assert!(err("[{}] x").1["error"].as_str().unwrap().contains("malformed JSON"));
        assert!(err("7").1["error"].as_str().unwrap().contains("expected a record"));
    }
}
