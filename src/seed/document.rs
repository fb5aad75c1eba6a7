//! A seed file as data with positions: YAML 1.2 (and so JSON) read into a
//! `serde_json::Value`, remembering where in the file every field and list
//! item starts, so that any later complaint about a field (a type error, an
//! ECR validation error from the API call it feeds) names the file's line
//! and column.
//!
//! Plain scalars take YAML's core schema (`true`, `null`, `12`, `1.5`);
//! quoted and block scalars stay strings, so an account id written as
//! `"000000000000"` keeps its zeros. Anchors and aliases are honoured, up
//! to [`MAX_ALIASED_VALUES`] values copied through aliases in all (a
//! "billion laughs" file of a few hundred bytes would otherwise expand to
//! gigabytes).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Yaml;

/// The most values (scalars, lists and mappings, counted through nesting)
/// that aliases may copy into one document. A real seed file aliases a few
/// tag sets or settings; this is far above that.
pub const MAX_ALIASED_VALUES: usize = 100_000;

/// A 1-based line and column in the seed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl From<Marker> for Position {
    fn from(m: Marker) -> Self {
        Position {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

/// The parsed file: its value, and where each path (`accounts[0].regions`)
/// starts.
#[derive(Debug)]
pub struct Document {
    pub value: Value,
    positions: HashMap<String, Position>,
}

/// A file that is not YAML.
#[derive(Debug)]
pub struct SyntaxError {
    pub position: Position,
    pub message: String,
}

impl Document {
    pub fn parse(text: &str) -> Result<Document, SyntaxError> {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut builder, false).map_err(|e| SyntaxError {
            position: (*e.marker()).into(),
            message: e.info().to_string(),
        })?;
        if let Some(error) = builder.error {
            return Err(error);
        }
        Ok(Document {
            value: builder.root.unwrap_or(Value::Null),
            positions: builder.positions,
        })
    }

    /// Where `path` starts, or where its nearest recorded ancestor does.
    pub fn position(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(p) = self.positions.get(path) {
                return Some(*p);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

enum Frame {
    Sequence {
        path: String,
        items: Vec<Value>,
        anchor: usize,
    },
    Mapping {
        path: String,
        map: Map<String, Value>,
        key: Option<String>,
        anchor: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    positions: HashMap<String, Position>,
    /// Each anchored value with the number of values in it.
    anchors: HashMap<usize, (Value, usize)>,
    /// Values copied through aliases so far.
    aliased: usize,
    error: Option<SyntaxError>,
}

/// The number of values in `value`, itself included (without recursion, so
/// a deep value cannot overflow the stack).
fn count_values(value: &Value) -> usize {
    let mut count = 0;
    let mut todo = vec![value];
    while let Some(v) = todo.pop() {
        count += 1;
        match v {
            Value::Array(items) => todo.extend(items),
            Value::Object(map) => todo.extend(map.values()),
            _ => {}
        }
    }
    count
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn scalar(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match Yaml::from_str(&text) {
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Null => Value::Null,
        _ => Value::String(text),
    }
}

fn key_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Builder {
    /// The path the next node gets, and records where it starts. Returns
    /// None when the next scalar is a mapping key.
    fn next_path(&mut self, mark: Marker) -> Option<String> {
        let path = match self.stack.last() {
            None => String::new(),
            Some(Frame::Sequence { path, items, .. }) => format!("{path}[{}]", items.len()),
            Some(Frame::Mapping { path, key, .. }) => match key {
                Some(key) => child_path(path, key),
                None => return None,
            },
        };
        self.positions.entry(path.clone()).or_insert(mark.into());
        Some(path)
    }

    fn finish(&mut self, value: Value, anchor: usize) {
        if anchor > 0 {
            let count = count_values(&value);
            self.anchors.insert(anchor, (value.clone(), count));
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Sequence { items, .. }) => items.push(value),
            Some(Frame::Mapping { map, key, .. }) => {
                if let Some(key) = key.take() {
                    map.insert(key, value);
                }
            }
        }
    }

    /// A node that is a mapping key: only scalars are.
    fn take_key(&mut self, value: &Value, mark: Marker) -> bool {
        let Some(Frame::Mapping { path, map, key, .. }) = self.stack.last_mut() else {
            return false;
        };
        if key.is_some() {
            return false;
        }
        let text = key_text(value);
        if map.contains_key(&text) && self.error.is_none() {
            self.error = Some(SyntaxError {
                position: mark.into(),
                message: format!("the key '{text}' is given twice"),
            });
        }
        let at: Position = mark.into();
        if map.is_empty() {
            // A block mapping's start event is marked at its first ':', not
            // where the mapping begins on the line: its first key is.
            if let Some(start) = self.positions.get_mut(path.as_str()) {
                if (at.line, at.column) < (start.line, start.column) {
                    *start = at;
                }
            }
        }
        let full = child_path(path, &text);
        self.positions.insert(full, at);
        *key = Some(text);
        true
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, style, anchor, _) => {
                let value = scalar(text, style);
                if self.take_key(&value, mark) {
                    return;
                }
                self.next_path(mark);
                self.finish(value, anchor);
            }
            Event::Alias(id) => {
                let value = match self.anchors.get(&id) {
                    Some((value, count))
                        if self.aliased.saturating_add(*count) <= MAX_ALIASED_VALUES =>
                    {
                        self.aliased += count;
                        value.clone()
                    }
                    Some(_) => {
                        if self.error.is_none() {
                            self.error = Some(SyntaxError {
                                position: mark.into(),
                                message: format!(
                                    "aliases copy more than {MAX_ALIASED_VALUES} values into this file"
                                ),
                            });
                        }
                        Value::Null
                    }
                    None => Value::Null,
                };
                if self.take_key(&value, mark) {
                    return;
                }
                self.next_path(mark);
                self.finish(value, 0);
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.complex_node_path(mark);
                self.stack.push(Frame::Sequence {
                    path,
                    items: Vec::new(),
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                let path = self.complex_node_path(mark);
                self.stack.push(Frame::Mapping {
                    path,
                    map: Map::new(),
                    key: None,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Sequence { items, anchor, .. }) => {
                    self.finish(Value::Array(items), anchor)
                }
                Some(Frame::Mapping { map, anchor, .. }) => self.finish(Value::Object(map), anchor),
                None => {}
            },
            _ => {}
        }
    }
}

impl Builder {
    fn complex_node_path(&mut self, mark: Marker) -> String {
        match self.next_path(mark) {
            Some(path) => path,
            None => {
                if self.error.is_none() {
                    self.error = Some(SyntaxError {
                        position: mark.into(),
                        message: "a mapping key must be a plain value, not a list or mapping"
                            .into(),
                    });
                }
                // Go on with a throwaway key so the stack stays balanced.
                if let Some(Frame::Mapping { key, path, .. }) = self.stack.last_mut() {
                    *key = Some(String::from("?"));
                    return child_path(path, "?");
                }
                String::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_positions() {
        let doc = Document::parse(
            "accounts:\n  - account: \"000000000000\"\n    regions:\n      - region: us-east-1\n        n: 12\n        b: true\n",
        )
        .unwrap();
        assert_eq!(doc.value["accounts"][0]["account"], "000000000000");
        assert_eq!(doc.value["accounts"][0]["regions"][0]["n"], 12);
        assert_eq!(doc.value["accounts"][0]["regions"][0]["b"], true);
        let p = doc.position("accounts[0].regions[0].region").unwrap();
        assert_eq!((p.line, p.column), (4, 9));
        let p = doc.position("accounts[0].regions[0].missing").unwrap();
        assert_eq!((p.line, p.column), (4, 9));
    }

    #[test]
    fn aliases_cannot_expand_without_bound() {
        // Ten lists of ten aliases to the one before: 10^9 values.
        let mut text = String::from("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 1..9 {
            let items = vec![format!("*a{}", i - 1); 10].join(",");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let e = Document::parse(&text).unwrap_err();
        assert!(
            e.message.contains("aliases copy more than"),
            "{}",
            e.message
        );
        assert_eq!(e.position.line, 5);
        // Ordinary aliasing still works.
        let doc = Document::parse("t: &t {team: a}\nrepos:\n  - tags: *t\n  - tags: *t\n").unwrap();
        assert_eq!(doc.value["repos"][1]["tags"]["team"], "a");
    }

    #[test]
    fn json_is_read_too() {
        let doc = Document::parse("{\"accounts\": [{\"account\": \"1\"}]}").unwrap();
        assert_eq!(doc.value["accounts"][0]["account"], "1");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = Document::parse("a: [1, 2\nb: 3").unwrap_err();
        assert!(e.position.line >= 1);
        let e = Document::parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.position.line, 2);
    }
}
