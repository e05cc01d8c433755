//! JSON Schemas (OpenAPI 3.1) of a collection's records, from its declared fields: what a
//! create or replace may send (types, required, bounds, lengths), what a merge patch may
//! send, and what the server answers. Each says exactly what the checks in `schema` accept,
//! so that a client (or a fuzzer) generating from them is never refused for valid data.

use serde_json::{Map, Value, json};

use crate::api::schema::{Collection, Field, FieldType};

/// Control characters (Rust's `char::is_control`, general category Cc), which no string
/// may hold.
const CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";
/// White space that trimming removes (Rust's `char::is_whitespace`, minus control
/// characters, which are listed in `TRIMMED_CONTROL`).
const SPACE: &str = " \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
/// Control characters that are also white space: trimmed away at either end.
const TRIMMED_CONTROL: &str = "\\t\\n\\u000b\\f\\r\\u0085";

/// The schema of a field's value as a create or replace sends it.
pub fn input(field: &Field) -> Value {
    let mut schema = match field.kind {
        FieldType::Integer => {
            json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})
        }
        FieldType::Number => json!({"type": "number"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::String | FieldType::Email | FieldType::Datetime => text(field),
    };
    let object = schema.as_object_mut().expect("an object");
    if let Some(min) = field.min {
        object.insert("minimum".into(), number(min));
    }
    if let Some(max) = field.max {
        object.insert("maximum".into(), number(max));
    }
    if field.kind == FieldType::Integer {
        // Bounds that are not whole numbers still bound an integer.
        for (key, round) in [
            ("minimum", f64::ceil as fn(f64) -> f64),
            ("maximum", f64::floor),
        ] {
            if let Some(n) = object.get(key).and_then(Value::as_f64)
                && object[key].is_f64()
            {
                object.insert(key.into(), json!(round(n) as i64));
            }
        }
    }
    schema
}

/// A string field: its format, and its length bounds. Where the server trims the value
/// before checking it, the bounds are on the trimmed value and the schema spells them as a
/// pattern (lengths are in the description).
fn text(field: &Field) -> Value {
    let mut schema = json!({"type": "string"});
    let object = schema.as_object_mut().expect("an object");
    match field.kind {
        FieldType::Email => {
            // Exactly the server's check (one @, a dotted domain, no white space or control
            // characters), and no
            // `format: email`: that would promise RFC 5322, which the server does not enforce,
            // and schemathesis rightly reports values it accepts outside that format.
            let no = format!("@{CONTROL}{SPACE}");
            object.insert(
                "pattern".into(),
                json!(format!("^[^{no}]+@[^{no}.][^{no}]*\\.[^{no}]*[^{no}.]$")),
            );
            return schema;
        }
        FieldType::Datetime => {
            object.insert("format".into(), json!("date-time"));
            return schema;
        }
        _ => {}
    }
    let (min, max) = (field.min_length.unwrap_or(0), field.max_length);
    if !field.trim {
        object.insert("pattern".into(), json!(format!("^[^{CONTROL}]*$")));
        if min > 0 {
            object.insert("minLength".into(), json!(min));
        }
        if let Some(max) = max {
            object.insert("maxLength".into(), json!(max));
        }
        return schema;
    }
    object.insert("pattern".into(), json!(trimmed_pattern(min, max)));
    let bounds = match (min, max) {
        (0, None) => None,
        (min, None) => Some(format!("at least {min} characters")),
        (0, Some(max)) => Some(format!("at most {max} characters")),
        (min, Some(max)) => Some(format!("{min} to {max} characters")),
    };
    if let Some(bounds) = bounds {
        object.insert(
            "description".into(),
            json!(format!("{bounds} once surrounding white space is trimmed")),
        );
    }
    schema
}

/// A pattern for a string whose trimmed value is `min` to `max` characters, none of them
/// control characters: white space, then the value (starting and ending with a character
/// that is not white space), then white space.
fn trimmed_pattern(min: usize, max: Option<usize>) -> String {
    let edge = format!("[{TRIMMED_CONTROL}{SPACE}]*");
    let solid = format!("[^{CONTROL}{SPACE}]");
    let inner = format!("[^{CONTROL}]");
    let repeat = |low: usize, high: Option<usize>| match high {
        Some(high) => format!("{{{low},{high}}}"),
        None => format!("{{{low},}}"),
    };
    let core = match (min, max) {
        (_, Some(0)) => String::new(),
        (0 | 1, Some(1)) => solid.clone(),
        (0 | 1, max) => format!(
            "{solid}(?:{inner}{}{solid})?",
            repeat(0, max.map(|m| m - 2))
        ),
        (min, max) => format!(
            "{solid}{inner}{}{solid}",
            repeat(min - 2, max.map(|m| m - 2))
        ),
    };
    match (min, core.is_empty()) {
        (_, true) => format!("^{edge}$"),
        (0, false) => format!("^{edge}(?:{core})?{edge}$"),
        _ => format!("^{edge}{core}{edge}$"),
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// `T` or null: a field that is not required may be sent as null (it is then left out).
fn or_null(mut schema: Value) -> Value {
    if let Some(kind) = schema.get("type").cloned() {
        schema["type"] = json!([kind, "null"]);
    }
    schema
}

/// What a create or a replace sends: only declared fields, the required ones present.
pub fn record_input(collection: &Collection) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in &collection.fields {
        let schema = input(field);
        if field.required {
            required.push(json!(field.name));
            properties.insert(field.name.clone(), schema);
        } else {
            properties.insert(field.name.clone(), or_null(schema));
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// What a merge patch sends: declared fields, null removing one that is not required.
pub fn record_patch(collection: &Collection) -> Value {
    let mut properties = Map::new();
    for field in &collection.fields {
        let schema = input(field);
        let schema = if field.required {
            schema
        } else {
            or_null(schema)
        };
        properties.insert(field.name.clone(), schema);
    }
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// A record as answered: the fields by type (stored values may predate today's bounds),
/// and what the server keeps. `whole`: every kept field is there (not a projection).
pub fn record_output(collection: &Collection, whole: bool) -> Value {
    let mut properties = Map::new();
    properties.insert("id".into(), json!({"type": "integer", "minimum": 1}));
    for field in &collection.fields {
        let kind = match field.kind {
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            _ => "string",
        };
        properties.insert(field.name.clone(), json!({"type": kind}));
    }
    properties.insert(
        "created".into(),
        json!({"type": "string", "format": "date-time"}),
    );
    properties.insert(
        "updated".into(),
        json!({"type": "string", "format": "date-time"}),
    );
    let mut schema = json!({"type": "object", "properties": properties});
    if whole {
        schema["required"] = json!(["id", "created"]);
    }
    schema
}

/// A filter's value in the query string (`field=value`, `field[op]=value`).
pub fn filter(field: &Field) -> Value {
    match field.kind {
        FieldType::Integer => json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
        FieldType::Number => json!({"type": "number"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Datetime => json!({"type": "string", "format": "date-time"}),
        FieldType::String | FieldType::Email => json!({"type": "string"}),
    }
}

/// An `in` list: values of the field's type, separated by commas.
pub fn filter_list(field: &Field) -> Value {
    let item = match field.kind {
        FieldType::Integer => "-?(?:0|[1-9][0-9]{0,17})",
        FieldType::Number => "-?(?:0|[1-9][0-9]{0,17})(?:\\.[0-9]{1,15})?",
        FieldType::Datetime => {
            // (Days past the 28th left out: every month has those.)
            "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
        }
        _ => "[^,]*",
    };
    json!({"type": "string", "pattern": format!("^{item}(?:,{item}){{0,99}}$")})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_lengths_become_patterns() {
        let edge = format!("[{TRIMMED_CONTROL}{SPACE}]*");
        let solid = format!("[^{CONTROL}{SPACE}]");
        let inner = format!("[^{CONTROL}]");
        let cases = [
            (
                (1, Some(100)),
                format!("^{edge}{solid}(?:{inner}{{0,98}}{solid})?{edge}$"),
            ),
            (
                (0, None),
                format!("^{edge}(?:{solid}(?:{inner}{{0,}}{solid})?)?{edge}$"),
            ),
            (
                (3, Some(5)),
                format!("^{edge}{solid}{inner}{{1,3}}{solid}{edge}$"),
            ),
            ((1, Some(1)), format!("^{edge}{solid}{edge}$")),
            ((0, Some(0)), format!("^{edge}$")),
        ];
        for ((min, max), want) in cases {
            assert_eq!(trimmed_pattern(min, max), want, "{min} {max:?}");
        }
    }

    #[test]
    fn integer_bounds_are_whole_and_optional_fields_take_null() {
        let c = crate::api::schema::tests::collection();
        let mut count = c.field("count").unwrap().clone();
        count.min = Some(0.5);
        count.max = Some(10.0);
        assert_eq!(input(&count)["minimum"], 1);
        assert_eq!(input(&count)["maximum"], 10);
        let create = record_input(&c);
        assert_eq!(create["required"], json!(["name"]));
        assert_eq!(
            create["properties"]["count"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(create["properties"]["name"]["type"], "string");
        assert_eq!(record_patch(&c)["properties"]["name"]["type"], "string");
    }
}
