//! The HTTP message model both protocols share: methods, the request (parsed from an HTTP/1.x
//! head, or built from HTTP/2 fields), body framing, responses, conditions, ranges, codings
//! and the errors that map to statuses.

pub mod body;
pub mod conditional;
pub mod date;
pub mod encoding;
pub mod error;
pub mod form;
pub mod multipart;
pub mod range;
pub mod request;
pub mod response;

pub use error::HttpError;
pub use request::{Limits, Request};
pub use response::{Body, Response};

/// The request methods tws knows. Anything else is answered 501.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
}

impl Method {
    /// Every method, in the order an `Allow` header lists them.
    pub const ALL: [Method; 9] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Options,
        Method::Patch,
        Method::Trace,
        Method::Connect,
    ];

    /// Parses a method token; method names are case-sensitive (RFC 9110 section 9.1).
    pub fn from_token(token: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == token)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
            Method::Connect => "CONNECT",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of methods, as a route allows them and as `Allow` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Methods(u16);

impl Methods {
    pub const NONE: Methods = Methods(0);

    pub fn of(methods: &[Method]) -> Methods {
        methods.iter().fold(Methods::NONE, |set, m| set.with(*m))
    }

    pub fn with(self, m: Method) -> Methods {
        Methods(self.0 | m.bit())
    }

    pub fn contains(self, m: Method) -> bool {
        self.0 & m.bit() != 0
    }

    pub fn union(self, other: Methods) -> Methods {
        Methods(self.0 | other.0)
    }

    pub fn intersect(self, other: Methods) -> Methods {
        Methods(self.0 & other.0)
    }

    /// True when every method of `other` is in `self`.
    pub fn covers(self, other: Methods) -> bool {
        other.0 & !self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Method> {
        Method::ALL.into_iter().filter(move |m| self.contains(*m))
    }

    /// The value of an `Allow` header: the set plus OPTIONS, which tws always answers.
    pub fn allow_header(self) -> String {
        let names: Vec<&str> = self
            .with(Method::Options)
            .iter()
            .map(Method::as_str)
            .collect();
        names.join(", ")
    }
}

/// The protocol version of a request; responses on HTTP/1.x connections are sent as HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
    /// A stream of an HTTP/2 connection.
    Http2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2.0",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_tokens_round_trip_and_are_case_sensitive() {
        for m in Method::ALL {
            assert_eq!(Method::from_token(m.as_str()), Some(m));
        }
        assert_eq!(Method::from_token("get"), None);
        assert_eq!(Method::from_token("BREW"), None);
    }

    #[test]
    fn allow_header_lists_methods_in_order_with_options() {
        let set = Methods::of(&[Method::Post, Method::Get, Method::Head]);
        assert_eq!(set.allow_header(), "GET, HEAD, POST, OPTIONS");
        assert!(set.covers(Methods::of(&[Method::Get])));
        assert!(!set.covers(Methods::of(&[Method::Put])));
    }
}
