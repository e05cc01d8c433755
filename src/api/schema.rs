//! A collection's declared shape, and the checks a record must pass: only declared fields,
//! each of its type (string, integer, number, boolean, datetime, email) and within its
//! bounds; required fields present. Also JSON merge patch (RFC 7396) for PATCH.

use std::time::Duration;

use serde_json::{Map, Value};

/// The type of a declared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    /// An RFC 3339 timestamp, kept as written (normalised to UTC).
    Datetime,
    /// An address with one '@', a local part and a domain with a dot.
    Email,
}

impl FieldType {
    pub const NAMES: [&'static str; 6] = [
        "string", "integer", "number", "boolean", "datetime", "email",
    ];

    pub fn from_name(name: &str) -> Option<FieldType> {
        Some(match name {
            "string" => FieldType::String,
            "integer" => FieldType::Integer,
            "number" => FieldType::Number,
            "boolean" => FieldType::Boolean,
            "datetime" => FieldType::Datetime,
            "email" => FieldType::Email,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Datetime => "datetime",
            FieldType::Email => "email",
        }
    }

    /// String-like: length bounds apply.
    pub fn textual(self) -> bool {
        matches!(
            self,
            FieldType::String | FieldType::Email | FieldType::Datetime
        )
    }
}

/// A declared field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub kind: FieldType,
    pub required: bool,
    /// Trim surrounding white space from strings before checking them.
    pub trim: bool,
    /// Length bounds for strings, in characters.
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    /// Value bounds for numbers.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Kept in an index, so that filters and sorts on it need not read every record (at the
    /// cost of a little more work per write).
    pub index: bool,
    /// Searched by `q` (full text): strings and emails only.
    pub search: bool,
}

/// A declared collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub name: String,
    /// The URL path of the collection; records are at `path/{id}`.
    pub path: String,
    pub fields: Vec<Field>,
    /// Where a browser's form submission is sent after a create (303): `{id}` is replaced.
    pub form_redirect: Option<String>,
    /// PUT, PATCH and DELETE must carry `If-Match` (428 without).
    pub require_if_match: bool,
    /// A page ends before the record that would take its records past this many bytes.
    pub max_page_bytes: usize,
    /// Most records one `POST` of a JSON array creates.
    pub max_batch: usize,
    /// Where it was declared (`routes.toml:42`), for messages about it.
    pub origin: Option<String>,
    /// Live updates (server-sent events) and the change log behind them.
    pub live: LiveSettings,
}

/// What a collection's live updates are, as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSettings {
    /// The path of the event stream (`None`: no events, and no change log).
    pub events: Option<String>,
    /// A record longer than this (as JSON) is sent as its id and version only.
    pub max_event_bytes: usize,
    /// Changes kept in the log for resuming, at most...
    pub keep: usize,
    /// ... and for at most this long.
    pub keep_for: Duration,
    /// A comment is sent on a stream quiet for this long, so that proxies keep it open.
    pub heartbeat: Duration,
}

/// Live-update defaults: the event size limit, what the log keeps, the heartbeat.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;
pub const DEFAULT_KEEP: usize = 10_000;
pub const DEFAULT_KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

impl Default for LiveSettings {
    /// No events (what a collection built in code gets; routes.toml turns them on).
    fn default() -> Self {
        LiveSettings {
            events: None,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            keep: DEFAULT_KEEP,
            keep_for: DEFAULT_KEEP_FOR,
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

/// Bytes of records on one page unless a collection says otherwise.
pub const DEFAULT_MAX_PAGE_BYTES: usize = 1 << 20;

/// Records one batch create may hold unless a collection says otherwise.
pub const DEFAULT_MAX_BATCH: usize = 1000;

/// Why a record is refused: 400 for what is not a JSON object, 422 for content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// 400: not a JSON object.
    Malformed(String),
    /// 422: a field is undeclared, missing, of the wrong type or out of bounds.
    Content(String),
}

impl Invalid {
    pub fn message(&self) -> &str {
        match self {
            Invalid::Malformed(m) | Invalid::Content(m) => m,
        }
    }
}

impl Collection {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The fields `q` searches.
    pub fn searched(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.search)
    }

    /// The refusal of a field the collection does not declare.
    pub fn undeclared(&self, name: &str) -> Invalid {
        Invalid::Content(format!("\"{name}\" is not a field of {}", self.name))
    }

    /// Checks what a merge patch sets: declared fields only, each valid (`null` removes a
    /// field that is not required; the whole record is checked again once applied).
    pub fn check_patch(&self, patch: &Map<String, Value>) -> Result<(), Invalid> {
        for (name, value) in patch {
            let field = self.field(name).ok_or_else(|| self.undeclared(name))?;
            if !value.is_null() {
                field.check(value.clone())?;
            } else if field.required {
                return Err(Invalid::Content(format!(
                    "\"{name}\" is required: a patch cannot remove it"
                )));
            }
        }
        Ok(())
    }

    /// Checks (and normalises: trimmed strings, UTC datetimes) a whole record: only declared
    /// fields, every required one present, each valid.
    pub fn check(&self, mut record: Map<String, Value>) -> Result<Map<String, Value>, Invalid> {
        if let Some(name) = record.keys().find(|name| self.field(name).is_none()) {
            return Err(self.undeclared(name));
        }
        for field in &self.fields {
            match record.remove(&field.name) {
                None | Some(Value::Null) if field.required => {
                    return Err(Invalid::Content(format!("missing \"{}\"", field.name)));
                }
                None | Some(Value::Null) => {}
                Some(value) => {
                    let value = field.check(value)?;
                    record.insert(field.name.clone(), value);
                }
            }
        }
        Ok(record)
    }
}

impl Field {
    /// The refusal of a value of the wrong type.
    pub fn wrong_type(&self) -> Invalid {
        Invalid::Content(format!("\"{}\" must be {}", self.name, self.kind.article()))
    }

    /// Checks one value against the field's type and bounds.
    pub fn check(&self, value: Value) -> Result<Value, Invalid> {
        let name = &self.name;
        let wrong = || self.wrong_type();
        match self.kind {
            FieldType::String | FieldType::Email | FieldType::Datetime => {
                let Value::String(text) = value else {
                    return Err(wrong());
                };
                let text = if self.trim {
                    text.trim().to_owned()
                } else {
                    text
                };
                if text.chars().any(char::is_control) {
                    return Err(Invalid::Content(format!(
                        "\"{name}\" contains control characters"
                    )));
                }
                let chars = text.chars().count();
                if self.min_length.is_some_and(|m| chars < m) {
                    return Err(Invalid::Content(if chars == 0 {
                        format!("\"{name}\" is empty")
                    } else {
                        format!(
                            "\"{name}\" is shorter than {} characters",
                            self.min_length.unwrap_or(0)
                        )
                    }));
                }
                if let Some(max) = self.max_length.filter(|m| chars > *m) {
                    return Err(Invalid::Content(format!(
                        "\"{name}\" is longer than {max} characters"
                    )));
                }
                match self.kind {
                    FieldType::Email if !is_email(&text) => Err(wrong()),
                    FieldType::Datetime => crate::time::parse_rfc3339(&text)
                        .map(|t| Value::String(crate::time::rfc3339(t)))
                        .ok_or_else(wrong),
                    _ => Ok(Value::String(text)),
                }
            }
            FieldType::Integer => {
                // JSON Schema's integer: any number without a fraction (`3.0` too).
                let whole = value
                    .as_f64()
                    .filter(|n| n.fract() == 0.0 && n.abs() < 9.2e18)
                    .map(|n| n as i64);
                let n = value.as_i64().or(whole).ok_or_else(wrong)?;
                self.bounds(n as f64)?;
                Ok(Value::from(n))
            }
            FieldType::Number => {
                let n = value.as_f64().ok_or_else(wrong)?;
                self.bounds(n)?;
                Ok(value)
            }
            FieldType::Boolean => match value {
                Value::Bool(_) => Ok(value),
                _ => Err(wrong()),
            },
        }
    }

    fn bounds(&self, n: f64) -> Result<(), Invalid> {
        let name = &self.name;
        if let Some(min) = self.min.filter(|m| n < *m) {
            return Err(Invalid::Content(format!(
                "\"{name}\" must be at least {min}"
            )));
        }
        if let Some(max) = self.max.filter(|m| n > *m) {
            return Err(Invalid::Content(format!(
                "\"{name}\" must be at most {max}"
            )));
        }
        Ok(())
    }
}

impl FieldType {
    /// "a string", "an integer"...: what a value of this type is called in messages.
    pub fn article(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::Integer => "an integer",
            FieldType::Number => "a number",
            FieldType::Boolean => "true or false",
            FieldType::Datetime => "an RFC 3339 date and time such as \"2026-11-25T14:30:33Z\"",
            FieldType::Email => "an email address",
        }
    }
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.contains(char::is_whitespace)
}

/// Refuses a field's new type while `holding` records hold a value of its old one (an
/// integer may become a number: every integer is one).
pub fn type_change(
    collection: &Collection,
    field: &str,
    old: FieldType,
    new: FieldType,
    holding: i64,
) -> anyhow::Result<()> {
    if old == new || (old == FieldType::Integer && new == FieldType::Number) || holding == 0 {
        return Ok(());
    }
    let at = collection
        .origin
        .as_ref()
        .map_or_else(String::new, |o| format!("{o}: "));
    anyhow::bail!(
        "{at}collection {}: field \"{field}\" cannot change from {} to {} while {holding} records hold a value for it (keep the type, or declare a new field)",
        collection.name,
        old.name(),
        new.name()
    )
}

/// Applies a JSON merge patch (RFC 7396) to a record's fields: `null` removes a field.
pub fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(inner) => {
                let slot = target
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(map) = slot {
                    merge_patch(map, inner);
                }
            }
            other => {
                target.insert(key, other);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn collection() -> Collection {
        let field = |name: &str, kind, required| Field {
            name: name.to_owned(),
            kind,
            required,
            trim: kind == FieldType::String,
            min_length: None,
            max_length: None,
            min: None,
            max: None,
            index: name == "count",
            search: name == "name",
        };
        Collection {
            name: "things".into(),
            path: "/things".into(),
            fields: vec![
                Field {
                    min_length: Some(1),
                    max_length: Some(5),
                    ..field("name", FieldType::String, true)
                },
                Field {
                    min: Some(0.0),
                    max: Some(10.0),
                    ..field("count", FieldType::Integer, false)
                },
                field("ratio", FieldType::Number, false),
                field("done", FieldType::Boolean, false),
                field("due", FieldType::Datetime, false),
                field("mail", FieldType::Email, false),
            ],
            form_redirect: None,
            require_if_match: false,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            max_batch: 3,
            origin: None,
            live: Default::default(),
        }
    }

    #[test]
    fn numbers_in_a_body_keep_their_exact_value() {
        // serde_json's default float parsing may be one unit in the last place off: a whole
        // number written with ".0" could then read as a fraction (refused), or as its neighbour.
        let mut c = collection();
        let count = c.fields.iter_mut().find(|f| f.name == "count").unwrap();
        (count.min, count.max) = (None, None);
        for (text, whole) in [
            ("2251799813685247.0", 2251799813685247_i64),
            ("9007199254740991.0", 9007199254740991),
            ("-181599.0", -181599),
        ] {
            let body = format!(r#"{{"name": "a", "count": {text}, "ratio": {text}}}"#);
            let Value::Object(fields) = serde_json::from_str(&body).unwrap() else {
                panic!("an object")
            };
            let checked = c.check(fields).unwrap();
            assert_eq!(checked["count"], json!(whole), "{text}");
            assert_eq!(checked["ratio"].as_f64(), Some(whole as f64), "{text}");
        }
    }

    #[test]
    fn each_type_and_bound_is_checked() {
        let c = collection();
        let check = |v: Value| {
            c.check(v.as_object().unwrap().clone())
                .map(Value::Object)
                .map_err(|e| e.message().to_owned())
        };
        assert_eq!(check(json!({"name": " ab "})), Ok(json!({"name": "ab"})));
        let ok = json!({"name": "a", "count": 3, "ratio": 0.5, "done": true,
                        "due": "2026-11-25T15:30:33+01:00", "mail": "a@b.example"});
        let checked = check(ok).unwrap();
        assert_eq!(checked["due"], "2026-11-25T14:30:33Z");
        assert_eq!(
            check(json!({"name": "a", "count": 3.0})).unwrap()["count"],
            json!(3)
        );
        let cases: &[(Value, &str)] = &[
            (json!({}), "missing \"name\""),
            (json!({"name": null}), "missing \"name\""),
            (json!({"name": ""}), "\"name\" is empty"),
            (json!({"name": "abcdef"}), "longer than 5"),
            (json!({"name": "a\nb"}), "control characters"),
            (json!({"name": 5}), "must be a string"),
            (
                json!({"name": "a", "extra": 1}),
                "\"extra\" is not a field of things",
            ),
            (json!({"name": "a", "count": 1.5}), "must be an integer"),
            (json!({"name": "a", "count": 1e19}), "must be an integer"),
            (json!({"name": "a", "count": 11}), "at most 10"),
            (json!({"name": "a", "count": -1}), "at least 0"),
            (json!({"name": "a", "ratio": "x"}), "must be a number"),
            (json!({"name": "a", "done": 1}), "true or false"),
            (json!({"name": "a", "due": "tomorrow"}), "RFC 3339"),
            (
                json!({"name": "a", "mail": "not-an-address"}),
                "email address",
            ),
        ];
        for (value, want) in cases {
            let err = check(value.clone()).unwrap_err();
            assert!(err.contains(want), "{value}: {err}");
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}})
            .as_object()
            .unwrap()
            .clone();
        merge_patch(
            &mut target,
            json!({"a": "z", "c": {"f": null}, "n": 1})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            Value::Object(target),
            json!({"a": "z", "c": {"d": "e"}, "n": 1})
        );
    }
}
