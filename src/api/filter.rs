//! One filter of a page query: `field=value` (equality) or `field[op]=value`, its value typed
//! by the field's declared type. Operators: `eq`, `ne`, `lt`, `lte`, `gt`, `gte`, `in` (a
//! comma-separated list), and for strings and emails `prefix` and `contains`. The other
//! spelling some servers use (`field.op=value`) is refused with the right one.

use serde_json::Value;

use super::schema::{Collection, Field, FieldType};
use super::store::{Condition, Op};

/// Operators by name; `None` is equality.
pub const OPERATORS: [(&str, Option<Op>); 10] = [
    ("eq", None),
    ("ne", Some(Op::Ne)),
    ("lt", Some(Op::Lt)),
    ("lte", Some(Op::Lte)),
    ("gt", Some(Op::Gt)),
    ("gte", Some(Op::Gte)),
    ("in", Some(Op::In)),
    ("prefix", Some(Op::Prefix)),
    ("contains", Some(Op::Contains)),
    ("like", Some(Op::Contains)),
];

/// Most values in one `in` list.
pub const MAX_IN: usize = 100;

/// A parsed filter: equality, or another comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Equal(String, Value),
    Other(Condition),
}

/// The operators a field of this type takes (by name).
pub fn operators(kind: FieldType) -> &'static [&'static str] {
    match kind {
        FieldType::String | FieldType::Email => &[
            "eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix", "contains", "like",
        ],
        FieldType::Integer | FieldType::Number | FieldType::Datetime => {
            &["eq", "ne", "lt", "lte", "gt", "gte", "in"]
        }
        FieldType::Boolean => &["eq", "ne"],
    }
}

/// Reads the query parameter `name=value` as a filter of `collection`; `Ok(None)` when
/// `name` names no field (nor a field with an operator). `Err` says what is wrong.
pub fn parse(collection: &Collection, name: &str, value: &str) -> Result<Option<Filter>, String> {
    let (field_name, op_name) = match name.split_once('[') {
        Some((field, rest)) => match rest.strip_suffix(']') {
            Some(op) if !op.contains(['[', ']']) => (field, Some(op)),
            _ => {
                return Err(format!(
                    "\"{name}\": write an operator as field[op]=value, as in {field}[gte]=1"
                ));
            }
        },
        None => (name, None),
    };
    let Some(field) = collection.field(field_name) else {
        if op_name.is_some() {
            return Err(format!(
                "\"{name}\": \"{field_name}\" is not a field of {}",
                collection.name
            ));
        }
        if let Some((field, op)) = name.split_once('.')
            && collection.field(field).is_some()
            && OPERATORS.iter().any(|(o, _)| *o == op)
        {
            return Err(format!(
                "\"{name}\": write operators in brackets, as in {field}[{op}]={value}"
            ));
        }
        return Ok(None);
    };
    let op_name = op_name.unwrap_or("eq");
    let Some((_, op)) = OPERATORS.iter().find(|(o, _)| *o == op_name) else {
        let known: Vec<&str> = OPERATORS.iter().map(|(o, _)| *o).collect();
        return Err(format!(
            "\"{name}\": unknown operator \"{op_name}\" (use one of {})",
            known.join(", ")
        ));
    };
    if !operators(field.kind).contains(&op_name) {
        return Err(format!(
            "\"{name}\": {op_name} does not apply to {} field \"{field_name}\" (use one of {})",
            field.kind.name(),
            operators(field.kind).join(", ")
        ));
    }
    let typed = |text: &str| {
        typed_value(field, text)
            .ok_or_else(|| format!("\"{name}\": \"{text}\" is not {}", field.kind.article()))
    };
    Ok(Some(match op {
        None => Filter::Equal(field.name.clone(), typed(value)?),
        Some(Op::In) => {
            let items: Vec<&str> = value.split(',').collect();
            if items.len() > MAX_IN {
                return Err(format!("\"{name}\": at most {MAX_IN} values"));
            }
            let values = items.into_iter().map(typed).collect::<Result<_, _>>()?;
            Filter::Other(Condition {
                field: field.name.clone(),
                op: Op::In,
                value: Value::Array(values),
            })
        }
        Some(op) => Filter::Other(Condition {
            field: field.name.clone(),
            op: *op,
            value: typed(value)?,
        }),
    }))
}

/// A filter's text as a value of the field's type, as records store it.
pub(crate) fn typed_value(field: &Field, text: &str) -> Option<Value> {
    match field.kind {
        FieldType::String | FieldType::Email => Some(Value::String(text.to_owned())),
        FieldType::Datetime => {
            crate::time::parse_rfc3339(text).map(|t| Value::String(crate::time::rfc3339(t)))
        }
        FieldType::Integer => text.parse::<i64>().ok().map(Value::from),
        FieldType::Number => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number)),
        FieldType::Boolean => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schema::tests::collection;
    use serde_json::json;

    fn other(field: &str, op: Op, value: Value) -> Option<Filter> {
        Some(Filter::Other(Condition {
            field: field.to_owned(),
            op,
            value,
        }))
    }

    #[test]
    fn each_operator_reads_a_value_of_its_field_type() {
        let c = collection();
        let eq = |f: &str, v: Value| Some(Filter::Equal(f.to_owned(), v));
        let cases: Vec<(&str, &str, Option<Filter>)> = vec![
            ("name", "An", eq("name", json!("An"))),
            ("name[eq]", "An", eq("name", json!("An"))),
            ("name[ne]", "An", other("name", Op::Ne, json!("An"))),
            ("name[prefix]", "An", other("name", Op::Prefix, json!("An"))),
            (
                "name[contains]",
                "n",
                other("name", Op::Contains, json!("n")),
            ),
            ("name[like]", "n", other("name", Op::Contains, json!("n"))),
            ("name[in]", "a,b", other("name", Op::In, json!(["a", "b"]))),
            ("name[lt]", "m", other("name", Op::Lt, json!("m"))),
            ("count[gte]", "18", other("count", Op::Gte, json!(18))),
            ("count[lt]", "65", other("count", Op::Lt, json!(65))),
            ("count[lte]", "-1", other("count", Op::Lte, json!(-1))),
            ("count[gt]", "0", other("count", Op::Gt, json!(0))),
            (
                "count[in]",
                "1,2,3",
                other("count", Op::In, json!([1, 2, 3])),
            ),
            ("ratio[gt]", "0.5", other("ratio", Op::Gt, json!(0.5))),
            ("done[ne]", "true", other("done", Op::Ne, json!(true))),
            ("done", "false", eq("done", json!(false))),
            (
                "due[gte]",
                "2026-11-25T15:30:33+01:00",
                other("due", Op::Gte, json!("2026-11-25T14:30:33Z")),
            ),
            ("mail[prefix]", "a@", other("mail", Op::Prefix, json!("a@"))),
            ("limitless", "1", None),
        ];
        for (name, value, want) in cases {
            assert_eq!(parse(&c, name, value), Ok(want), "{name}={value}");
        }
    }

    #[test]
    fn bad_filters_name_the_field_the_operator_and_the_right_form() {
        let c = collection();
        let cases = [
            ("count[gte]", "x", "\"count[gte]\": \"x\" is not an integer"),
            ("count[in]", "1,x", "\"x\" is not an integer"),
            ("ratio[lt]", "NaN", "is not a number"),
            ("done[eq]", "yes", "is not true or false"),
            ("due[lt]", "tomorrow", "RFC 3339"),
            (
                "count[prefix]",
                "1",
                "prefix does not apply to integer field \"count\"",
            ),
            (
                "done[lt]",
                "true",
                "lt does not apply to boolean field \"done\"",
            ),
            (
                "due[contains]",
                "2026",
                "contains does not apply to datetime",
            ),
            ("count[between]", "1", "unknown operator \"between\""),
            ("nope[gte]", "1", "\"nope\" is not a field of things"),
            (
                "count.gte",
                "1",
                "write operators in brackets, as in count[gte]=1",
            ),
            ("count[gte", "1", "write an operator as field[op]=value"),
            ("count[gte]]", "1", "write an operator as field[op]=value"),
            ("count[[gte]", "1", "write an operator as field[op]=value"),
        ];
        for (name, value, want) in cases {
            let err = parse(&c, name, value).unwrap_err();
            assert!(err.contains(want), "{name}={value}: {err}");
        }
        let many = vec!["1"; MAX_IN + 1].join(",");
        assert!(
            parse(&c, "count[in]", &many)
                .unwrap_err()
                .contains("at most")
        );
    }
}
