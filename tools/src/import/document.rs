//! Reading the text: the size cap, JSON or YAML into a bounded [`Value`] (a YAML alias
//! bomb is stopped while it expands, not after), the version check, and [`Refs`], the
//! resolver of local `$ref`s with its depth, cycle and expansion limits.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::{ImportError, MAX_DOCUMENT_BYTES, MAX_INLINED_VALUES, MAX_REF_DEPTH};

/// A document that passed the size, syntax and version checks.
#[derive(Debug)]
pub struct Document {
    pub root: Value,
    /// The `openapi` field.
    pub version: String,
    /// The keys of `paths` as the text writes them (`root` sorts them): tools and the
    /// review list operations in document order.
    path_order: Vec<String>,
}

impl Document {
    pub fn is_3_1(&self) -> bool {
        self.version.starts_with("3.1")
    }

    /// The entries of `paths`, in document order.
    pub fn ordered_paths<'a>(
        &'a self,
        paths: &'a Map<String, Value>,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> {
        let mut seen = std::collections::HashSet::new();
        self.path_order
            .iter()
            .chain(paths.keys())
            .filter(move |key| seen.insert(key.as_str()))
            .filter_map(|key| paths.get_key_value(key))
    }
}

/// Reads JSON or YAML text into a [`Document`].
pub fn read(text: &str) -> Result<Document, ImportError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(ImportError::DocumentTooLarge {
            size: format!("{} bytes", text.len()),
        });
    }
    let (root, path_order) = parse_bounded(text)?;
    let Some(object) = root.as_object() else {
        return Err(ImportError::InvalidDocument(
            "/: the document is not an object".into(),
        ));
    };
    if object.contains_key("swagger") {
        return Err(ImportError::Swagger2NotSupported);
    }
    let version = match object.get("openapi") {
        Some(Value::String(version)) => version.clone(),
        // YAML reads `openapi: 3.0` as a number.
        Some(Value::Number(number)) => number.to_string(),
        Some(_) => {
            return Err(ImportError::InvalidDocument(
                "/openapi: the version is not a string".into(),
            ));
        }
        None => {
            return Err(ImportError::InvalidDocument(
                "/openapi: missing; not an OpenAPI document".into(),
            ));
        }
    };
    if !(version.starts_with("3.0.") || version.starts_with("3.1.")) {
        return Err(ImportError::UnsupportedVersion(version));
    }
    Ok(Document {
        root,
        version,
        path_order,
    })
}

/// JSON (when the text starts with `{`) or YAML, with every value and string byte counted
/// against a budget proportional to the text: without aliases a document cannot hold
/// more values than its text has bytes, so only repeated aliases exceed it. Also returns
/// the keys of `paths` in the text's order.
fn parse_bounded(text: &str) -> Result<(Value, Vec<String>), ImportError> {
    let budget = Budget {
        left: Cell::new(2 * text.len() + 1024),
        exceeded: Cell::new(false),
        path_order: RefCell::new(Vec::new()),
    };
    let seed = Bounded {
        budget: &budget,
        place: Place::Root,
    };
    let result = if text.trim_start().starts_with('{') {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        seed.deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(|e| format!("not JSON: {e}"))
    } else {
        serde_yaml_ng::Deserializer::from_str(text)
            .next()
            .ok_or_else(|| "the text is empty".to_owned())
            .and_then(|document| {
                seed.deserialize(document)
                    .map_err(|e| format!("not YAML: {e}"))
            })
    };
    if budget.exceeded.get() {
        return Err(ImportError::YamlAliasBomb);
    }
    let root = result.map_err(ImportError::InvalidDocument)?;
    Ok((root, budget.path_order.into_inner()))
}

struct Budget {
    left: Cell<usize>,
    exceeded: Cell<bool>,
    /// The keys of the root's `paths`, as they come.
    path_order: RefCell<Vec<String>>,
}

/// Where a value is: the root, the root's `paths`, or elsewhere.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    Paths,
    Other,
}

/// Builds a [`Value`] while spending the budget.
#[derive(Clone, Copy)]
struct Bounded<'a> {
    budget: &'a Budget,
    place: Place,
}

impl Bounded<'_> {
    fn spend<E: de::Error>(&self, weight: usize) -> Result<(), E> {
        let left = self.budget.left.get();
        if weight > left {
            self.budget.exceeded.set(true);
            return Err(E::custom("the document expands beyond its size"));
        }
        self.budget.left.set(left - weight);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-compatible value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend(1 + v.len())?;
        // An escaped NUL (`\u0000`, YAML's `"\0"`): the review stores the document's strings
        // in PostgreSQL, which cannot hold it.
        if v.contains('\0') {
            return Err(E::custom("a string contains the NUL character (U+0000)"));
        }
        Ok(Value::String(v.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend(1)?;
        let mut items = Vec::new();
        let item = Bounded {
            place: Place::Other,
            ..self
        };
        while let Some(item) = seq.next_element_seed(item)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend(1)?;
        let mut object = Map::new();
        let inner = Bounded {
            place: Place::Other,
            ..self
        };
        while let Some(key) = map.next_key_seed(Key(inner))? {
            if self.place == Place::Paths {
                self.budget.path_order.borrow_mut().push(key.clone());
            }
            let place = match self.place {
                Place::Root if key == "paths" => Place::Paths,
                _ => Place::Other,
            };
            let value = map.next_value_seed(Bounded { place, ..self })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A map key: YAML allows numbers and booleans (`200:` in `responses`); they become strings.
struct Key<'a>(Bounded<'a>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        match self.0.deserialize(d)? {
            Value::String(s) => Ok(s),
            Value::Null => Ok("null".into()),
            other @ (Value::Bool(_) | Value::Number(_)) => Ok(other.to_string()),
            Value::Array(_) | Value::Object(_) => {
                Err(de::Error::custom("a map key is not a scalar"))
            }
        }
    }
}

/// Local `$ref`s of one document.
pub struct Refs<'a> {
    root: &'a Value,
    /// Values the inlined copies have produced so far.
    produced: Cell<usize>,
}

/// How a referenced value was reached: the target and the last reference followed.
pub struct Followed<'a> {
    pub value: &'a Value,
    pub reference: Option<String>,
}

impl<'a> Refs<'a> {
    pub fn new(root: &'a Value) -> Refs<'a> {
        Refs {
            root,
            produced: Cell::new(0),
        }
    }

    /// `value` itself, or what its chain of `$ref`s leads to (`at` is `value`'s JSON pointer,
    /// for messages).
    pub fn follow(&self, value: &'a Value, at: &str) -> Result<Followed<'a>, ImportError> {
        let mut current = value;
        let mut chain: Vec<&str> = Vec::new();
        while let Some(reference) = current.get("$ref") {
            let Some(reference) = reference.as_str() else {
                return Err(ImportError::InvalidDocument(format!(
                    "{at}: `$ref` is not a string"
                )));
            };
            if chain.contains(&reference) {
                return Err(ImportError::RefCycle {
                    at: at.to_owned(),
                    reference: reference.to_owned(),
                });
            }
            if chain.len() >= MAX_REF_DEPTH {
                return Err(ImportError::RefTooDeep { at: at.to_owned() });
            }
            chain.push(reference);
            current = self.target(reference, at)?;
        }
        Ok(Followed {
            value: current,
            reference: chain.last().map(|r| (*r).to_owned()),
        })
    }

    fn target(&self, reference: &str, at: &str) -> Result<&'a Value, ImportError> {
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(ImportError::ExternalRefNotSupported {
                at: at.to_owned(),
                reference: reference.to_owned(),
            });
        };
        self.root
            .pointer(pointer)
            .ok_or_else(|| ImportError::RefNotFound {
                at: at.to_owned(),
                reference: reference.to_owned(),
            })
    }

    /// A copy of `value` with every `$ref` replaced by its target. A schema that contains
    /// itself (a tree node with children of its own type) is legitimate: the inner
    /// occurrence stays a `$ref` with a note, instead of expanding forever.
    pub fn inline(&self, value: &Value, at: &str) -> Result<Value, ImportError> {
        self.inline_in(value, at, &mut Vec::new())
    }

    fn inline_in(
        &self,
        value: &Value,
        at: &str,
        open: &mut Vec<String>,
    ) -> Result<Value, ImportError> {
        let produced = self.produced.get() + 1;
        if produced > MAX_INLINED_VALUES {
            return Err(ImportError::RefExpansionLimit);
        }
        self.produced.set(produced);
        match value {
            Value::Object(object) if object.contains_key("$ref") => {
                let followed = self.follow(value, at)?;
                let reference = followed.reference.unwrap_or_default();
                if open.contains(&reference) {
                    return Ok(serde_json::json!({
                        "$ref": reference,
                        "description": "recursive: the same schema again (not expanded)",
                    }));
                }
                if open.len() >= MAX_REF_DEPTH {
                    return Err(ImportError::RefTooDeep { at: at.to_owned() });
                }
                open.push(reference);
                let inlined = self.inline_in(followed.value, at, open);
                open.pop();
                let mut inlined = inlined?;
                // 3.1 allows `description` (and `summary`) beside `$ref`: they win.
                if let Some(target) = inlined.as_object_mut() {
                    for key in ["description", "summary"] {
                        if let Some(v) = object.get(key) {
                            target.insert(key.to_owned(), v.clone());
                        }
                    }
                }
                Ok(inlined)
            }
            Value::Object(object) => {
                let mut copy = Map::new();
                for (key, item) in object {
                    copy.insert(key.clone(), self.inline_in(item, at, open)?);
                }
                Ok(Value::Object(copy))
            }
            Value::Array(items) => items
                .iter()
                .map(|item| self.inline_in(item, at, open))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            scalar => Ok(scalar.clone()),
        }
    }
}

/// A JSON pointer segment (`/` → `~1`, `~` → `~0`).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}
