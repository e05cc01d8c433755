//! Whether a change is one a subscriber asked for: equality filters on declared fields,
//! already typed as the field (see `api::events`), checked against the record.

use serde_json::{Map, Value};

use super::Change;

/// True when `change` is one the filters ask for. The record's fields are read once per
/// change (`fields` caches them across subscribers); a change sent without its record (over
/// the size limit) cannot be judged, and is sent.
pub fn matches(
    filters: &[(String, Value)],
    change: &Change,
    fields: &mut Option<Option<Map<String, Value>>>,
) -> bool {
    if filters.is_empty() {
        return true;
    }
    let parsed = fields.get_or_insert_with(|| {
        let data = change.data.as_deref()?;
        match serde_json::from_str(data) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    });
    let Some(record) = parsed else {
        return true;
    };
    filters
        .iter()
        .all(|(name, want)| record.get(name).is_some_and(|have| same(have, want)))
}

/// Equal as the field's type: numbers by value (`3` and `3.0` are one number).
fn same(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => have == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::live::Kind;
    use serde_json::json;

    #[test]
    fn filters_pick_changes_by_their_record() {
        let change = |data: Option<&str>| Change {
            number: 1,
            collection: "things".into(),
            kind: Kind::Deleted,
            id: 1,
            version: 1,
            data: data.map(str::to_owned),
        };
        let red = vec![("team".to_owned(), json!("red"))];
        let three = vec![("count".to_owned(), json!(3))];
        let table = [
            (vec![], change(None), true),
            (red.clone(), change(Some(r#"{"id":1,"team":"red"}"#)), true),
            (
                red.clone(),
                change(Some(r#"{"id":1,"team":"blue"}"#)),
                false,
            ),
            (red.clone(), change(Some(r#"{"id":1}"#)), false),
            (red, change(None), true),
            (three.clone(), change(Some(r#"{"count":3.0}"#)), true),
            (three, change(Some(r#"{"count":"3"}"#)), false),
        ];
        for (filters, change, want) in table {
            assert_eq!(matches(&filters, &change, &mut None), want, "{change:?}");
        }
    }
}
