//! Scoring Zeek log records: the raw fields of each connection, as [`ZeekParser`] reads them,
//! through the model's preprocessing (its derived features included), with the connection's
//! identity ([`CONN_ID`]) kept beside each verdict. Used by `predict` (a file, or a log Zeek
//! is still writing) and by the server's log upload.

use ndarray::Array2;

use super::block::{Block, Kept};
use super::Loaded;
use crate::data::records::RecordError;
use crate::data::zeek::{ZeekParser, CONN_ID};
use crate::preprocess::Raw;

/// Records encoded so far, waiting to be scored as one block.
pub struct ZeekBatch<'m> {
    /// Per model input: its position among the log's fields (`None`: not in the log).
    index: Vec<Option<usize>>,
    /// Positions of the identity fields present in the log.
    ids: Vec<usize>,
    /// The log's field names the index was worked out for, and their generation.
    fields: Vec<String>,
    generation: Option<u64>,
    /// The encoded records and their lines.
    pub block: Block<'m>,
    /// Per record: its identity cells.
    kept: Kept,
}

impl<'m> ZeekBatch<'m> {
    pub fn new(model: &'m Loaded) -> Self {
        ZeekBatch {
            index: Vec::new(),
            ids: Vec::new(),
            fields: Vec::new(),
            generation: None,
            block: Block::new(model),
            kept: Kept::default(),
        }
    }

    /// The identity columns kept beside each verdict (those the log has).
    pub fn id_columns(&self) -> Vec<String> {
        CONN_ID.iter().filter(|c| self.fields.iter().any(|f| f == *c)).map(|c| c.to_string()).collect()
    }

    pub fn len(&self) -> usize {
        self.block.len()
    }

    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }

    /// Encode the parser's current record (read from `line`).
    pub fn push(&mut self, parser: &ZeekParser, line: u64) -> Result<(), RecordError> {
        let model = self.block.model;
        let pre = &model.bundle.preprocessor;
        if self.generation != Some(parser.generation()) {
            self.generation = Some(parser.generation());
            self.fields = parser.fields().to_vec();
            self.index = pre.inputs().iter().map(|i| parser.position(&i.name)).collect();
            // A TSV header must name every input; Zeek's JSON leaves unset fields out.
            if parser.zeek_type(0).is_some() {
                if let Some(k) = self.index.iter().position(Option::is_none) {
                    let name = &pre.inputs()[k].name;
                    return Err(RecordError::at(
                        line,
                        Some(name.clone()),
                        format!("the log's `#fields` has no `{name}` (an input of the model)"),
                    ));
                }
            }
            self.ids = CONN_ID.iter().filter_map(|c| parser.position(c)).collect();
        }
        let index = &self.index;
        self.block
            .push(
                |k, _| {
                    Ok(match index[k] {
                        // A numeric field was parsed once, when the line was checked.
                        Some(i) => match parser.number(i) {
                            Some(v) => Raw::Number(v),
                            None => parser.get(i).map_or(Raw::Missing, Raw::Text),
                        },
                        None => Raw::Missing,
                    })
                },
                line,
            )
            .map_err(|(k, m)| RecordError::at(line, Some(pre.inputs()[k].name.clone()), m))?;
        self.kept.set_width(self.ids.len());
        for &i in &self.ids {
            self.kept.push(parser.get(i).unwrap_or("-"));
        }
        Ok(())
    }

    /// Score what was pushed and start afresh: the scores, the identity cells, the lines.
    pub fn score(&mut self) -> (Vec<f64>, Kept, Vec<u64>) {
        let (x, kept, lines) = self.take();
        let scores = if lines.is_empty() { Vec::new() } else { self.block.model.score(&x) };
        self.block.model.watch(&mut self.block.take_codes(), &scores);
        self.block.recycle(x);
        (scores, kept, lines)
    }

    /// What was pushed, unscored, and start afresh: the feature matrix, the identity cells,
    /// the lines.
    pub fn take(&mut self) -> (Array2<f64>, Kept, Vec<u64>) {
        let (x, lines) = self.block.take();
        (x, std::mem::take(&mut self.kept), lines)
    }
}
