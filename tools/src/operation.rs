//! The operation as a tool: what [`import`](crate::import) reads from a document (an
//! [`ImportedOperation`]) is the one operation model. [`spec`] gives the [`ToolSpec`] an
//! engine sees (a JSON-schema object of the arguments); [`Argument`]s say which argument
//! goes in the path or the query, and [`ImportedOperation::json_body`] whether the
//! argument `body` is sent, for [`crate::http::prepare`].

use serde_json::{Map, Value, json};

use crate::ToolSpec;
use crate::import::{ImportedOperation, Parameter, RequestBody};

/// Where an argument goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

/// The JSON type a path or query argument must have, when its schema names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primitive {
    String,
    Integer,
    Number,
    Boolean,
    Array,
}

impl Primitive {
    /// The schema's `type`: a name (3.0), or a list with one name besides `"null"` (3.1).
    fn from_schema(schema: &Value) -> Option<Primitive> {
        let name = match schema.get("type")? {
            Value::String(name) => name.as_str(),
            Value::Array(names) => {
                match names.iter().filter(|n| *n != "null").collect::<Vec<_>>()[..] {
                    [Value::String(name)] => name.as_str(),
                    _ => return None,
                }
            }
            _ => return None,
        };
        match name {
            "string" => Some(Primitive::String),
            "integer" => Some(Primitive::Integer),
            "number" => Some(Primitive::Number),
            "boolean" => Some(Primitive::Boolean),
            "array" => Some(Primitive::Array),
            _ => None,
        }
    }

    /// Whether `value` has this type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            Primitive::String => value.is_string(),
            Primitive::Integer => value.is_i64() || value.is_u64(),
            Primitive::Number => value.is_number(),
            Primitive::Boolean => value.is_boolean(),
            Primitive::Array => value.is_array(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Primitive::String => "a string",
            Primitive::Integer => "an integer",
            Primitive::Number => "a number",
            Primitive::Boolean => "a boolean",
            Primitive::Array => "an array",
        }
    }
}

/// A path or query parameter: an argument of the tool.
#[derive(Debug, Clone, Copy)]
pub struct Argument<'a> {
    pub parameter: &'a Parameter,
    pub location: Location,
    pub kind: Option<Primitive>,
}

impl ImportedOperation {
    /// The path and query parameters. Headers and cookies are the caller's business
    /// (auth, tracing), not the model's: they are not arguments.
    pub fn arguments(&self) -> impl Iterator<Item = Argument<'_>> {
        self.parameters.iter().filter_map(|parameter| {
            let location = match parameter.location.as_str() {
                "path" => Location::Path,
                "query" => Location::Query,
                _ => return None,
            };
            Some(Argument {
                parameter,
                location,
                kind: Primitive::from_schema(&parameter.schema),
            })
        })
    }

    /// The request body when it is JSON (the argument `body`); a body of another media
    /// type is not an argument and is not sent.
    pub fn json_body(&self) -> Option<&RequestBody> {
        self.request_body
            .as_ref()
            .filter(|body| is_json(&body.content_type))
    }
}

/// Whether a media type is JSON (`application/json`, `…+json`, with or without parameters).
pub fn is_json(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
}

/// The tool an engine sees: the arguments as properties of one object schema (each with
/// its parameter's description), the required ones listed. Refuses an operation whose
/// arguments cannot be told apart or placed.
pub fn spec(op: &ImportedOperation) -> Result<ToolSpec, String> {
    let name = &op.operation_id;
    let refuse = |why: String| format!("operation `{name}`: {why}");
    let mut properties = Map::new();
    let mut required = Vec::new();
    for argument in op.arguments() {
        let parameter = argument.parameter;
        if properties.contains_key(&parameter.name) {
            return Err(refuse(format!(
                "parameter `{}` appears twice",
                parameter.name
            )));
        }
        if argument.location == Location::Path
            && !op.path.contains(&format!("{{{}}}", parameter.name))
        {
            return Err(refuse(format!(
                "path parameter `{}` is not in the path",
                parameter.name
            )));
        }
        if parameter.required {
            required.push(Value::String(parameter.name.clone()));
        }
        let mut schema = parameter.schema.clone();
        if let (Some(description), Some(object)) = (&parameter.description, schema.as_object_mut())
        {
            object.insert("description".into(), Value::String(description.clone()));
        }
        properties.insert(parameter.name.clone(), schema);
    }
    if let Some(body) = op.json_body() {
        if properties.contains_key("body") {
            return Err(refuse(
                "a parameter named `body` clashes with the request body".into(),
            ));
        }
        if body.required {
            required.push(Value::String("body".into()));
        }
        properties.insert("body".into(), body.schema.clone());
    }
    let mut parameters = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        parameters["required"] = Value::Array(required);
    }
    Ok(ToolSpec {
        name: name.clone(),
        description: op
            .summary
            .clone()
            .or_else(|| op.description.clone())
            .unwrap_or_else(|| format!("{} {}", op.method, op.path)),
        method: op.method.clone(),
        path: op.path.clone(),
        parameters,
    })
}
