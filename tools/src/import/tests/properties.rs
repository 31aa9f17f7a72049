//! Property tests of [`import`]: whatever text it is given — any characters, a shipped
//! document with its text cut, repeated or spliced with YAML and `$ref` syntax, or with
//! values anywhere in its tree replaced — it answers with the operations or one of the
//! named errors of `docs/openapi-import.md`, never a panic, and within a few seconds; and
//! the same document reads the same as JSON and as YAML. `PROPTEST_CASES` runs more cases
//! than the few dozen `make test` runs.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// Longest one import may take on a busy machine in a debug build. The largest documents
/// the limits let through import in well under a second (docs/benchmarks.md).
const BOUND: Duration = Duration::from_secs(10);

const FIXTURES: [&str; 5] = [SHOP, PETSTORE, BILLING, WEBHOOKS, DESK];

/// Imports `text` and checks the answer is the operations or a named error, in time.
fn named_answer(text: &str) -> Result<Result<Imported, ImportError>, TestCaseError> {
    let started = Instant::now();
    let answer = import(text, &agents());
    let took = started.elapsed();
    prop_assert!(took < BOUND, "the import took {took:?}");
    if let Err(error) = &answer {
        prop_assert!(ImportError::CODES.contains(&error.code()), "{error:?}");
        prop_assert!(!error.to_string().is_empty());
    }
    Ok(answer)
}

/// Pieces of YAML, JSON and OpenAPI syntax that change what a document means.
const SPLICES: &[&str] = &[
    "$ref: '#/components/schemas/Id'",
    "{ $ref: '#/' }",
    "$ref: '#/paths'",
    "$ref: 'https://example.com/x.yaml#/A'",
    "\"$ref\": \"#/components\"",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "? ",
    "{",
    "}",
    "[",
    "]",
    ": ",
    ",",
    "\n",
    "\n  ",
    "\n- ",
    "'",
    "\"",
    "#",
    "~1",
    "\\u0000",
    "\\ud800",
    "\0",
    "\u{202e}",
    "openapi: 3.1.0\n",
    "swagger: '2.0'\n",
    "paths: {}\n",
    "operationId: getOrder\n",
    "parameters: [{ name: id, in: path }]",
    "1e999",
    "-0",
    "null",
    "~",
];

fn splice() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(SPLICES).prop_map(str::to_owned),
        1 => prop::collection::vec(any::<char>(), 1..4).prop_map(String::from_iter),
    ]
}

/// One edit of a document's text, at a character position.
#[derive(Debug, Clone)]
enum Edit {
    Cut {
        at: prop::sample::Index,
        len: usize,
    },
    Repeat {
        at: prop::sample::Index,
        len: usize,
    },
    Insert {
        at: prop::sample::Index,
        text: String,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1..200usize).prop_map(|(at, len)| Edit::Cut { at, len }),
        (any::<prop::sample::Index>(), 1..400usize).prop_map(|(at, len)| Edit::Repeat { at, len }),
        (any::<prop::sample::Index>(), splice()).prop_map(|(at, text)| Edit::Insert { at, text }),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        match edit {
            Edit::Cut { at, len } => {
                let at = at.index(chars.len() + 1);
                let end = (at + len).min(chars.len());
                chars.drain(at..end);
            }
            Edit::Repeat { at, len } => {
                let at = at.index(chars.len() + 1);
                let end = (at + len).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, copy);
            }
            Edit::Insert { at, text } => {
                let at = at.index(chars.len() + 1);
                chars.splice(at..at, text.chars());
            }
        }
    }
    String::from_iter(chars)
}

/// Any JSON value, a few levels deep, with `$ref`s among the objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Quarters: floats that both writers print exactly (the last digit of a float like
        // 1.1484749968891349e39 can differ between the JSON and the YAML text).
        (-4000..4000i32).prop_map(|n| Value::from(f64::from(n) / 4.0)),
        "[a-zA-Z0-9 /{}._#~-]{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["3.0.3", "3.1.0", "get", "path", "query", "object"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z$]{1,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// JSON pointers of every value in `value`, the root first.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            out.push(at.clone());
            for (key, child) in object {
                pointers(child, format!("{at}/{}", document::escape(key)), out);
            }
        }
        Value::Array(items) => {
            out.push(at.clone());
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

/// What to do at a node of a parsed document.
#[derive(Debug, Clone)]
enum Change {
    /// Replace the value with another.
    Replace(Value),
    /// Replace the value with a `$ref` to the node at another index (a cycle, perhaps).
    RefTo(prop::sample::Index),
    /// Remove it from its object or array.
    Remove,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        2 => json_value().prop_map(Change::Replace),
        2 => any::<prop::sample::Index>().prop_map(Change::RefTo),
        1 => Just(Change::Remove),
    ]
}

fn change_tree(root: &mut Value, changes: &[(prop::sample::Index, Change)]) {
    for (at, change) in changes {
        let mut all = Vec::new();
        pointers(root, String::new(), &mut all);
        let pointer = all[at.index(all.len())].clone();
        let replacement = match change {
            Change::Replace(value) => value.clone(),
            Change::RefTo(target) => {
                let mut object = Map::new();
                let target = format!("#{}", all[target.index(all.len())]);
                object.insert("$ref".into(), Value::String(target));
                Value::Object(object)
            }
            Change::Remove => {
                let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", ""));
                if let Some(parent) = root.pointer_mut(parent) {
                    let key = last.replace("~1", "/").replace("~0", "~");
                    match parent {
                        Value::Object(object) => {
                            object.remove(&key);
                        }
                        Value::Array(items) => {
                            if let Ok(i) = key.parse::<usize>()
                                && i < items.len()
                            {
                                items.remove(i);
                            }
                        }
                        _ => {}
                    }
                }
                continue;
            }
        };
        if let Some(slot) = root.pointer_mut(&pointer) {
            *slot = replacement;
        }
    }
}

fn fixture() -> impl Strategy<Value = &'static str> {
    prop::sample::select(FIXTURES.to_vec())
}

/// A fixture read into its JSON tree.
fn tree(text: &str) -> Value {
    document::read(text).expect("the fixtures are valid").root
}

proptest! {
    #![proptest_config(testkit::proptest_config(48))]

    #[test]
    fn any_text_is_imported_or_refused_by_name(
        text in prop_oneof![
            prop::collection::vec(splice(), 0..24).prop_map(|parts| parts.concat()),
            any::<String>(),
        ],
    ) {
        let _ = named_answer(&text)?;
    }

    #[test]
    fn an_edited_document_is_imported_or_refused_by_name(
        text in fixture(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let _ = named_answer(&apply(text, &edits))?;
    }

    #[test]
    fn a_document_with_changed_values_reads_the_same_as_json_and_as_yaml(
        text in fixture(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), change()), 1..5),
    ) {
        let mut root = tree(text);
        change_tree(&mut root, &changes);
        let json = serde_json::to_string_pretty(&root).unwrap();
        let yaml = serde_yaml_ng::to_string(&root).unwrap();
        let from_json = named_answer(&json)?;
        let from_yaml = named_answer(&yaml)?;
        match (from_json, from_yaml) {
            (Ok(json), Ok(yaml)) => prop_assert_eq!(json, yaml),
            (Err(json), Err(yaml)) => prop_assert_eq!(json.code(), yaml.code()),
            (json, yaml) => prop_assert!(false, "JSON: {:?}\nYAML: {:?}", json, yaml),
        }
    }
}
