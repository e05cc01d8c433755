//! The OpenAPI 3.1 document of the declared collections (`/openapi.json`), built from the
//! loaded routes (so a hot reload rebuilds it): every collection route's paths and methods,
//! the list's query parameters (filters and their operators, `sort`, `limit`, `after`,
//! `fields`, `count`, `q`), request and response schemas from the declared fields, the
//! shared error schema, entity tag headers, and HTTP Basic security for auth realms.

mod schemas;

use serde_json::{Map, Value, json};

use super::Endpoint;
use super::filter::operators;
use super::query::MAX_LIMIT;
use super::schema::Collection;
use crate::http::Method;
use crate::routes::{Route, Target};

/// The document for these routes, as JSON text.
pub fn document(routes: &[Route]) -> Vec<u8> {
    let mut paths = Map::new();
    let mut schemes = Map::new();
    let mut components = Map::new();
    for route in routes {
        let Target::Collection(endpoint) = &route.target else {
            continue;
        };
        // The old user actions (fields they do not know are ignored) are not described, nor a
        // second route on one path (for another host).
        if endpoint.lenient || paths.contains_key(&route.path) {
            continue;
        }
        let security = route.auth.as_ref().map(|realm| {
            let name = scheme_name(&realm.name);
            schemes.insert(
                name.clone(),
                json!({"type": "http", "scheme": "basic", "description": format!("Realm \"{}\"", realm.name)}),
            );
            json!([{ name: [] }])
        });
        let c = &endpoint.collection;
        add_schemas(&mut components, c);
        let mut item = Map::new();
        for method in [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
        ] {
            if !route.methods.contains(method) {
                continue;
            }
            let mut op = if endpoint.events {
                events_operation(endpoint, method)
            } else {
                operation(endpoint, method)
            };
            if let Some(security) = &security {
                op["security"] = security.clone();
                op["responses"]["401"] = error("No or wrong credentials");
            }
            item.insert(method.as_str().to_ascii_lowercase(), op);
        }
        if !item.is_empty() {
            paths.insert(route.path.clone(), Value::Object(item));
        }
    }
    components.insert(
        "Error".into(),
        json!({
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        }),
    );
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tws collections",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON collections declared in routes.toml.",
        },
        "paths": paths,
        "components": {"schemas": components},
    });
    if !schemes.is_empty() {
        document["components"]["securitySchemes"] = Value::Object(schemes);
    }
    let mut text = serde_json::to_vec_pretty(&document).unwrap_or_default();
    text.push(b'\n');
    text
}

/// A security scheme's name for a realm: letters, digits, `_`, `-` and `.` only.
fn scheme_name(realm: &str) -> String {
    let clean: String = realm
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("basic_{clean}")
}

fn schema_ref(collection: &Collection, what: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{}{what}", pascal(&collection.name))})
}

fn pascal(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

fn add_schemas(components: &mut Map<String, Value>, c: &Collection) {
    let name = pascal(&c.name);
    let batch = json!({
        "type": "array",
        "items": schema_ref(c, "Input"),
        "minItems": 1,
        "maxItems": c.max_batch,
    });
    for (what, schema) in [
        ("", schemas::record_output(c, true)),
        ("Listed", schemas::record_output(c, false)),
        ("Input", schemas::record_input(c)),
        ("Patch", schemas::record_patch(c)),
        ("Batch", batch),
    ] {
        components.insert(format!("{name}{what}"), schema);
    }
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

fn json_body(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

const ETAG: &str = "The record's version: send it back in If-Match to change only that version";

/// One method on a collection's list or records.
fn operation(endpoint: &Endpoint, method: Method) -> Value {
    let c = &endpoint.collection;
    let etag = json!({"ETag": {"description": ETAG, "schema": {"type": "string"}}});
    let mut responses = Map::new();
    let mut op = json!({
        "tags": [c.name],
        "operationId": format!("{}_{}{}", method.as_str().to_ascii_lowercase(), c.name, if endpoint.item { "_record" } else { "" }),
    });
    let mut parameters = Vec::new();
    if endpoint.item {
        parameters.push(json!({
            "name": "id", "in": "path", "required": true,
            "schema": {"type": "integer", "minimum": 1, "maximum": i64::MAX},
        }));
        let write = matches!(method, Method::Put | Method::Patch | Method::Delete);
        let if_match_required = c.require_if_match && write;
        parameters.push(json!({
            "name": "If-Match", "in": "header", "required": if_match_required,
            "description": "Only if the record is at this version (an ETag, or *)",
            "schema": {"type": "string"},
        }));
        parameters.push(json!({
            "name": "If-None-Match", "in": "header", "required": false,
            "description": "GET: 304 if the record is still at this version",
            "schema": {"type": "string"},
        }));
        responses.insert("404".into(), error("No such record"));
        responses.insert(
            "412".into(),
            error("If-Match or If-None-Match did not hold"),
        );
        if if_match_required {
            responses.insert("428".into(), error("If-Match is required"));
        }
    }
    match (endpoint.item, method) {
        (false, Method::Get | Method::Head) => {
            op["summary"] = json!(format!("A page of {}", c.name));
            parameters.extend(list_parameters(c));
            let headers = json!({
                "Link": {"description": "The next page: <...>; rel=\"next\"", "schema": {"type": "string"}},
                "X-Total-Count": {"description": "With count=exact: the records matching", "schema": {"type": "integer", "minimum": 0}},
            });
            let page = json!({"type": "array", "items": schema_ref(c, "Listed")});
            responses.insert("200".into(), page_response(method, page, headers));
            responses.insert("400".into(), error("A query parameter is wrong"));
            responses.insert("410".into(), error("The record `after` names is gone"));
        }
        (false, _) => {
            op["summary"] = json!(format!(
                "Create a record of {} (or several: an array)",
                c.name
            ));
            op["requestBody"] = json!({
                "required": true,
                "content": json_body(json!({"oneOf": [schema_ref(c, "Input"), schema_ref(c, "Batch")]})),
            });
            let made = json!({"oneOf": [schema_ref(c, ""), {"type": "array", "items": schema_ref(c, "")}]});
            responses.insert(
                "201".into(),
                json!({"description": "Created", "headers": etag, "content": json_body(made)}),
            );
            responses.insert("400".into(), error("Not JSON, or a batch too large"));
            responses.insert("415".into(), error("Not JSON"));
            responses.insert(
                "422".into(),
                error("A field is wrong (in a batch: `record N: ...`)"),
            );
        }
        (true, Method::Get | Method::Head) => {
            op["summary"] = json!(format!("A record of {}", c.name));
            // With `fields`, only those: the schema of a listed record (none required).
            let fields = fields_param(c);
            let schema = schema_ref(c, if fields.is_some() { "Listed" } else { "" });
            parameters.extend(fields);
            responses.insert("200".into(), page_response(method, schema, etag));
            responses.insert("400".into(), error("`fields` names something else"));
            responses.insert("304".into(), json!({"description": "Not modified"}));
        }
        (true, Method::Delete) => {
            op["summary"] = json!(format!("Delete a record of {}", c.name));
            responses.insert("204".into(), json!({"description": "Deleted"}));
        }
        (true, _) => {
            let patch = method == Method::Patch;
            op["summary"] = json!(if patch {
                format!("Change fields of a record of {} (JSON merge patch)", c.name)
            } else {
                format!("Replace a record of {}", c.name)
            });
            let schema = schema_ref(c, if patch { "Patch" } else { "Input" });
            let mut content = json_body(schema.clone());
            if patch {
                content["application/merge-patch+json"] = json!({"schema": schema});
            }
            op["requestBody"] = json!({"required": true, "content": content});
            responses.insert(
                "200".into(),
                json!({"description": "Changed", "headers": etag, "content": json_body(schema_ref(c, ""))}),
            );
            responses.insert("400".into(), error("Not a JSON object"));
            responses.insert("415".into(), error("Not JSON"));
            responses.insert("422".into(), error("A field is wrong"));
        }
    }
    responses.insert(
        "503".into(),
        error("The database cannot answer, or the query ran too long (index the field named)"),
    );
    responses.insert("default".into(), error("Another error"));
    op["parameters"] = Value::Array(parameters);
    op["responses"] = Value::Object(responses);
    op
}

/// A 200: with its body for GET, headers only for HEAD.
fn page_response(method: Method, schema: Value, headers: Value) -> Value {
    if method == Method::Head {
        json!({"description": "OK (headers only)", "headers": headers})
    } else {
        json!({"description": "OK", "headers": headers, "content": json_body(schema)})
    }
}

/// `fields` (a projection), unless the collection has a field of that name.
fn fields_param(c: &Collection) -> Option<Value> {
    if c.field("fields").is_some() {
        return None;
    }
    let mut projectable = vec!["id", "created", "updated"];
    projectable.extend(c.fields.iter().map(|f| f.name.as_str()));
    let one = format!("(?:{})", projectable.join("|"));
    Some(json!({
        "name": "fields", "in": "query", "required": false,
        "description": "Only these fields, comma-separated",
        "schema": {"type": "string", "pattern": format!("^{one}(?:,{one})*$")},
    }))
}

/// The list's query parameters.
/// A collection's live updates: a `text/event-stream` that does not end (tools that call
/// every operation should leave it out: `.ci/openapi.sh` does).
fn events_operation(endpoint: &Endpoint, method: Method) -> Value {
    let c = &endpoint.collection;
    let param = |name: &str, place: &str, description: &str, schema: Value| json!({"name": name, "in": place, "required": false, "description": description, "schema": schema});
    let resume = "Resume after this change number (the `id:` of the last event seen)";
    let number = json!({"type": "string", "pattern": "^[0-9]{1,19}$"});
    let mut parameters = vec![
        param("Last-Event-ID", "header", resume, number.clone()),
        param("last_event_id", "query", resume, number),
    ];
    for f in &c.fields {
        if f.name != "last_event_id" {
            parameters.push(param(
                &f.name,
                "query",
                "Only changes of records whose field equals this",
                schemas::filter(f),
            ));
        }
    }
    let stream = json!({"text/event-stream": {"schema": {"type": "string", "description": "Events `created`, `updated`, `deleted` (data: the record, or its id and version when large), `reset` (reload: too far behind) and `dropped` (read too slowly); `: ping` comments"}}});
    let ok = if method == Method::Head {
        json!({"description": "The stream would start"})
    } else {
        json!({"description": "Changes as they are committed", "content": stream})
    };
    json!({
        "tags": [c.name],
        "operationId": format!("{}_{}_events", method.as_str().to_ascii_lowercase(), c.name),
        "summary": format!("Live updates of {} (server-sent events)", c.name),
        "parameters": parameters,
        "responses": {"200": ok, "400": error("A filter names no declared field, or its value is not of its type")},
    })
}

fn list_parameters(c: &Collection) -> Vec<Value> {
    let param = |name: &str, description: &str, schema: Value| json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema});
    let declared = |name: &str| c.field(name).is_some();
    let mut sorts = vec![json!("id"), json!("-id")];
    for f in &c.fields {
        sorts.push(json!(f.name));
        sorts.push(json!(format!("-{}", f.name)));
    }
    let mut list = vec![
        param(
            "limit",
            "Records on the page",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        ),
        param(
            "after",
            "The cursor: the id of the record the page continues after (from the Link header)",
            json!({"type": "string", "pattern": "^(?:0|[1-9][0-9]{0,17})$"}),
        ),
        param(
            "sort",
            "A field to order by (then id); - for largest first",
            json!({"enum": sorts}),
        ),
    ];
    list.extend(fields_param(c));
    let exact = json!({"type": "string", "enum": ["exact"]});
    list.push(match c.field("count") {
        None => param("count", "exact: the total in X-Total-Count", exact),
        Some(f) => param(
            "count",
            "exact: the total in X-Total-Count; else a filter on the field count",
            json!({"anyOf": [exact, schemas::filter(f)]}),
        ),
    });
    if c.searched().next().is_some() && !declared("q") {
        list.push(param(
            "q",
            "Full-text search of the searchable fields: records holding every word, most relevant first unless sorted",
            json!({"type": "string", "maxLength": super::query::MAX_SEARCH_CHARS}),
        ));
    }
    for f in &c.fields {
        if !["limit", "after", "sort", "count"].contains(&f.name.as_str()) {
            list.push(param(&f.name, "Equal to", schemas::filter(f)));
        }
        for op in operators(f.kind) {
            let schema = if *op == "in" {
                schemas::filter_list(f)
            } else {
                schemas::filter(f)
            };
            list.push(param(
                &format!("{}[{op}]", f.name),
                &format!("{op} (see README: Collections)"),
                schema,
            ));
        }
    }
    list
}
