//! A request head built field by field from what another framing decoded (HTTP/2's HPACK),
//! held to the same limits and checks as `parse_head` (this module sees the request's
//! private parts).

use std::ops::Range;

use super::{Framing, HeadFacts, Limits, MAX_HEADERS_CEILING, Request, origin_form};
use crate::http::{HttpError, Method, Version};

/// Names arrive lower-case.
#[derive(Debug, Default)]
pub struct FieldsBuilder {
    head: Vec<u8>,
    fields: Vec<(Range<usize>, Range<usize>)>,
    facts: HeadFacts,
}

impl FieldsBuilder {
    /// Adds one field; an error says why the request cannot be served.
    pub fn field(&mut self, name: &[u8], value: &[u8], limits: &Limits) -> Result<(), HttpError> {
        if self.fields.len() >= limits.max_headers.clamp(1, MAX_HEADERS_CEILING) {
            return Err(HttpError::HeaderFieldsTooLarge(
                "more header fields than the limit",
            ));
        }
        if self.head.len() + name.len() + value.len() + 4 > limits.max_head_bytes {
            return Err(HttpError::HeaderFieldsTooLarge(
                "request head is larger than the limit",
            ));
        }
        let name_text = std::str::from_utf8(name)
            .map_err(|_| HttpError::BadRequest("invalid header field name"))?;
        self.facts.note(name_text, value)?;
        let at = self.head.len();
        self.head.extend_from_slice(name);
        self.head.extend_from_slice(value);
        self.fields
            .push((at..at + name.len(), at + name.len()..self.head.len()));
        Ok(())
    }

    /// The request: `method` and `path` from the pseudo-header fields, `authority` (which
    /// stands for Host), and whether a body may follow (`ended`: none will).
    pub fn finish(
        mut self,
        method: &[u8],
        path: &[u8],
        authority: Option<&[u8]>,
        ended: bool,
        limits: &Limits,
    ) -> Result<Request, HttpError> {
        let method = std::str::from_utf8(method)
            .ok()
            .and_then(Method::from_token)
            .ok_or(HttpError::NotImplemented("request method not implemented"))?;
        if method == Method::Connect {
            return Err(HttpError::NotImplemented(
                "CONNECT is not supported: tws is not a proxy",
            ));
        }
        if path.len() > limits.max_uri_bytes {
            return Err(HttpError::UriTooLong);
        }
        let path = std::str::from_utf8(path)
            .ok()
            .filter(|p| p.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or(HttpError::BadRequest("malformed :path"))?;
        let (target, _) = origin_form(method, path)?;
        if let Some(authority) = authority {
            // :authority stands for Host, which then must not say otherwise (RFC 9113 §8.3.1).
            let host = self.header_value(b"host");
            if host.is_some_and(|h| !h.eq_ignore_ascii_case(authority)) {
                return Err(HttpError::BadRequest("Host differs from :authority"));
            }
            if host.is_none() {
                self.field(b"host", authority, limits)?;
            }
        }
        // A body follows unless END_STREAM came with the head; its declared length, if any,
        // is checked against what arrives.
        let framing = match (
            self.facts.framing(Version::Http11)?,
            self.facts.content_length,
        ) {
            (Framing::Length(_), _) if ended => {
                return Err(HttpError::BadRequest(
                    "body length differs from Content-Length",
                ));
            }
            (Framing::None, Some(0)) if !ended => Framing::Length(0),
            (Framing::None, _) if !ended => Framing::Chunked,
            (framing, _) => framing,
        };
        if self.facts.expectation_unknown {
            return Err(HttpError::ExpectationFailed);
        }
        Ok(Request {
            method,
            version: Version::Http2,
            framing,
            keep_alive: true,
            expect_continue: false,
            target,
            authority: None,
            head: self.head,
            fields: self.fields,
        })
    }

    fn header_value(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| &self.head[n.clone()] == name)
            .map(|(_, v)| &self.head[v.clone()])
    }
}
