//! `HttpError`: everything that can go wrong with a request, and the one table mapping it to a status.

use super::Methods;

/// A request that cannot be answered normally. Each variant carries a short, client-facing reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed syntax or framing; the connection cannot be trusted afterwards.
    BadRequest(&'static str),
    /// A well-formed request the server refuses to act on (e.g. a path escaping the root).
    Forbidden(&'static str),
    /// Credentials are missing or wrong (the caller adds the challenge).
    Unauthorized(&'static str),
    NotFound,
    MethodNotAllowed(Methods),
    /// The client refuses every content coding on offer, identity included.
    NotAcceptable,
    RequestTimeout,
    /// What the request refers to existed and is gone for good.
    Gone(&'static str),
    /// The request conflicts with what is there (a name taken).
    Conflict(&'static str),
    /// A precondition header (If-Match, If-Unmodified-Since, If-None-Match) did not hold.
    PreconditionFailed,
    /// The route requires `If-Match` on changes, and the request has none.
    PreconditionRequired,
    PayloadTooLarge,
    UriTooLong,
    UnsupportedMediaType(&'static str),
    /// No requested range overlaps the representation, whose length is given.
    RangeNotSatisfiable(u64),
    ExpectationFailed,
    TooManyRequests(&'static str),
    /// Syntactically valid content that fails validation.
    Unprocessable(&'static str),
    HeaderFieldsTooLarge(&'static str),
    Internal(&'static str),
    NotImplemented(&'static str),
    ServiceUnavailable(&'static str),
    VersionNotSupported,
    /// No room left to store what was sent.
    InsufficientStorage,
}

impl HttpError {
    /// The one place where an error becomes a status code and a message.
    pub fn status_and_message(self) -> (u16, &'static str) {
        match self {
            HttpError::BadRequest(why) => (400, why),
            HttpError::Forbidden(why) => (403, why),
            HttpError::Unauthorized(why) => (401, why),
            HttpError::NotFound => (404, "no such resource"),
            HttpError::MethodNotAllowed(_) => (405, "method not allowed on this path"),
            HttpError::NotAcceptable => (
                406,
                "Accept-Encoding refuses identity and every coding on offer",
            ),
            HttpError::RequestTimeout => (408, "request not received in time"),
            HttpError::Gone(why) => (410, why),
            HttpError::Conflict(why) => (409, why),
            HttpError::PreconditionFailed => (412, "a precondition of the request did not hold"),
            HttpError::PreconditionRequired => (
                428,
                "this change needs an If-Match header with the record's ETag",
            ),
            HttpError::PayloadTooLarge => (413, "request body is larger than the limit"),
            HttpError::UriTooLong => (414, "request target is longer than the limit"),
            HttpError::UnsupportedMediaType(why) => (415, why),
            HttpError::RangeNotSatisfiable(_) => (416, "no requested range overlaps the file"),
            HttpError::ExpectationFailed => (417, "only the 100-continue expectation is supported"),
            HttpError::TooManyRequests(why) => (429, why),
            HttpError::Unprocessable(why) => (422, why),
            HttpError::HeaderFieldsTooLarge(why) => (431, why),
            HttpError::Internal(why) => (500, why),
            HttpError::NotImplemented(why) => (501, why),
            HttpError::ServiceUnavailable(why) => (503, why),
            HttpError::InsufficientStorage => {
                (507, "the server's disk is full; nothing was stored")
            }
            HttpError::VersionNotSupported => {
                (505, "only HTTP/1.0, HTTP/1.1 and HTTP/2 are supported")
            }
        }
    }

    pub fn status(self) -> u16 {
        self.status_and_message().0
    }

    pub fn message(self) -> &'static str {
        self.status_and_message().1
    }
}

/// The reason phrase for each status tws sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        428 => "Precondition Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        406 => "Not Acceptable",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_named_status() {
        let all = [
            HttpError::BadRequest("x"),
            HttpError::Forbidden("x"),
            HttpError::Unauthorized("x"),
            HttpError::NotFound,
            HttpError::MethodNotAllowed(Methods::NONE),
            HttpError::NotAcceptable,
            HttpError::RequestTimeout,
            HttpError::PreconditionFailed,
            HttpError::PayloadTooLarge,
            HttpError::UriTooLong,
            HttpError::UnsupportedMediaType("x"),
            HttpError::RangeNotSatisfiable(1),
            HttpError::ExpectationFailed,
            HttpError::TooManyRequests("x"),
            HttpError::Unprocessable("x"),
            HttpError::HeaderFieldsTooLarge("x"),
            HttpError::Internal("x"),
            HttpError::NotImplemented("x"),
            HttpError::ServiceUnavailable("x"),
            HttpError::VersionNotSupported,
        ];
        for e in all {
            let (status, message) = e.status_and_message();
            assert!((400..600).contains(&status), "{e:?}");
            assert_ne!(reason_phrase(status), "Unknown", "{e:?}");
            assert!(!message.is_empty());
        }
    }
}
