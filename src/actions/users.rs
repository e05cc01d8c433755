//! The user actions: create a user from JSON or an HTML form, list users, fetch one by id.

use serde_json::Value;

use super::Respond;
use super::store::{StoreError, UserStore};
use crate::http::response::ErrorFormat;
use crate::http::{HttpError, Request, Response};

/// Longest accepted name, in characters (after trimming).
pub const MAX_NAME_CHARS: usize = 100;
/// The field holding the name, in JSON and in forms.
pub const NAME_FIELD: &str = "Nombre";

/// `POST /createUser`: validates the name, stores the user, and answers 201 once the record
/// is durable.
pub fn create(store: &dyn UserStore, req: &Request, body: &[u8], respond: Respond) {
    let name = match name_of(req, body) {
        Ok(name) => name,
        Err(e) => return respond(Response::error(e, ErrorFormat::Json)),
    };
    store.create(
        &name,
        Box::new(move |result| {
            let response = match result {
                Ok(user) => {
                    let location = format!("/users/{}", user.id);
                    Response::json(201, &user).header("Location", location)
                }
                Err(StoreError::Unavailable) => {
                    let err = HttpError::ServiceUnavailable("user store is unavailable");
                    Response::error(err, ErrorFormat::Json)
                }
                Err(StoreError::Io(_)) => {
                    let err = HttpError::Internal("could not store the user");
                    Response::error(err, ErrorFormat::Json)
                }
            };
            respond(response);
        }),
    );
}

/// The validated name from a JSON or form body.
fn name_of(req: &Request, body: &[u8]) -> Result<String, HttpError> {
    let raw = match req.media_type().as_deref() {
        Some("application/json") => name_from_json(body)?,
        Some("application/x-www-form-urlencoded") => name_from_form(body)?,
        _ => {
            return Err(HttpError::UnsupportedMediaType(
                "Content-Type must be application/json or application/x-www-form-urlencoded",
            ));
        }
    };
    validate_name(&raw).map(str::to_owned)
}

/// `GET /users`: every stored user, oldest first.
pub fn list(store: &dyn UserStore) -> Response {
    Response::json(200, &store.list())
}

/// `GET /users/{id}`.
pub fn get(store: &dyn UserStore, id: &str) -> Result<Response, HttpError> {
    let id: u64 = id
        .parse()
        .ok()
        .filter(|_| id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(HttpError::NotFound)?;
    let user = store.get(id).ok_or(HttpError::NotFound)?;
    Ok(Response::json(200, &user))
}

fn name_from_json(body: &[u8]) -> Result<String, HttpError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| HttpError::BadRequest("body is not valid JSON"))?;
    let Value::Object(mut fields) = value else {
        return Err(HttpError::BadRequest("body must be a JSON object"));
    };
    match fields.remove(NAME_FIELD) {
        Some(Value::String(name)) => Ok(name),
        Some(_) => Err(HttpError::Unprocessable("\"Nombre\" must be a string")),
        None => Err(HttpError::Unprocessable("missing \"Nombre\"")),
    }
}

fn name_from_form(body: &[u8]) -> Result<String, HttpError> {
    for pair in body.split(|b| *b == b'&') {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        if form_decode(key)? == NAME_FIELD {
            return form_decode(value);
        }
    }
    Err(HttpError::Unprocessable("missing \"Nombre\""))
}

/// Decodes one `application/x-www-form-urlencoded` component ('+' is a space).
fn form_decode(raw: &[u8]) -> Result<String, HttpError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| HttpError::BadRequest("form field is not valid UTF-8"))
}

/// Trims the name and checks it: 1 to 100 characters, no control characters.
pub fn validate_name(raw: &str) -> Result<&str, HttpError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(HttpError::Unprocessable("\"Nombre\" is empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(HttpError::Unprocessable(
            "\"Nombre\" is longer than 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(HttpError::Unprocessable(
            "\"Nombre\" contains control characters",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        let long = "é".repeat(MAX_NAME_CHARS);
        let too_long = "é".repeat(MAX_NAME_CHARS + 1);
        let cases: &[(&str, Result<&str, u16>)] = &[
            ("Ana", Ok("Ana")),
            ("  Ana María \t", Ok("Ana María")),
            (&long, Ok(&long)),
            (&too_long, Err(422)),
            ("", Err(422)),
            ("   ", Err(422)),
            ("a\u{0}b", Err(422)),
            ("a\nb", Err(422)),
            ("a\u{7f}b", Err(422)),
        ];
        for (raw, want) in cases {
            assert_eq!(validate_name(raw).map_err(|e| e.status()), *want, "{raw:?}");
        }
    }

    #[test]
    fn reads_the_name_from_json_and_forms() {
        let json_cases: &[(&str, Result<&str, u16>)] = &[
            (r#"{"Nombre": "Ana"}"#, Ok("Ana")),
            (r#"{"Nombre": "Ana", "extra": 1}"#, Ok("Ana")),
            (r#"{"nombre": "Ana"}"#, Err(422)),
            (r#"{"Nombre": 5}"#, Err(422)),
            (r#"["Ana"]"#, Err(400)),
            (r#"{"Nombre": "Ana""#, Err(400)),
            ("", Err(400)),
        ];
        for (body, want) in json_cases {
            let got = name_from_json(body.as_bytes()).map_err(|e| e.status());
            assert_eq!(got.as_deref().map_err(|s| *s), *want, "{body}");
        }
        let form_cases: &[(&str, Result<&str, u16>)] = &[
            ("Nombre=Ana", Ok("Ana")),
            ("x=1&Nombre=Ana+Mar%C3%ADa", Ok("Ana María")),
            ("Nombre=", Ok("")),
            ("Nombre", Ok("")),
            ("name=Ana", Err(422)),
            ("Nombre=%FF", Err(400)),
        ];
        for (body, want) in form_cases {
            let got = name_from_form(body.as_bytes()).map_err(|e| e.status());
            assert_eq!(got.as_deref().map_err(|s| *s), *want, "{body}");
        }
    }
}
