//! A change as server-sent event bytes (the WHATWG `text/event-stream` format): `id:` its
//! change number, `event:` created, updated or deleted, `data:` the record or its id and
//! version; and the stream's other lines (the retry hint, heartbeats, reset and dropped).
//! Each change is encoded once and the bytes shared by every subscriber.

use bytes::Bytes;

use super::Change;

/// How long a client waits before reconnecting, in milliseconds (the `retry:` hint).
pub const RETRY_MS: u64 = 2000;

/// A comment line that keeps proxies from closing a quiet stream.
pub const PING: &[u8] = b": ping\n\n";

/// The event that says the subscriber read too slowly and its stream ends.
pub const DROPPED: &[u8] =
    b"event: dropped\ndata: {\"reason\":\"this client read too slowly; reconnect and reload\"}\n\n";

/// The first bytes of every stream.
pub fn hello() -> Bytes {
    Bytes::from(format!("retry: {RETRY_MS}\n: live updates\n\n"))
}

/// The event that tells a client it missed changes (too far behind, or a log it does not
/// know): it must reload, and its stream goes on from `last`.
pub fn reset(last: i64) -> Bytes {
    Bytes::from(format!(
        "id: {last}\nevent: reset\ndata: {{\"reason\":\"changes since the last event are no longer kept; reload\"}}\n\n"
    ))
}

/// One change as an event.
pub fn encode(change: &Change) -> Bytes {
    let short;
    let data = match &change.data {
        Some(data) => data.as_str(),
        None => {
            short = format!("{{\"id\":{},\"version\":{}}}", change.id, change.version);
            &short
        }
    };
    let mut out = Vec::with_capacity(data.len() + 48);
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(change.number.to_string().as_bytes());
    out.extend_from_slice(b"\nevent: ");
    out.extend_from_slice(change.kind.name().as_bytes());
    out.push(b'\n');
    // JSON text holds no raw line break, but a field's lines are each a `data:` line.
    for line in data.split(['\n', '\r']) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::live::Kind;

    fn change(kind: Kind, data: Option<&str>) -> Change {
        Change {
            number: 42,
            collection: "users".into(),
            kind,
            id: 7,
            version: 3,
            data: data.map(str::to_owned),
        }
    }

    #[test]
    fn changes_become_events() {
        let table = [
            (
                change(Kind::Created, Some(r#"{"id":7,"name":"Ana"}"#)),
                "id: 42\nevent: created\ndata: {\"id\":7,\"name\":\"Ana\"}\n\n",
            ),
            (
                change(Kind::Updated, None),
                "id: 42\nevent: updated\ndata: {\"id\":7,\"version\":3}\n\n",
            ),
            (
                change(Kind::Deleted, Some("{}")),
                "id: 42\nevent: deleted\ndata: {}\n\n",
            ),
            (
                change(Kind::Created, Some("a\nb")),
                "id: 42\nevent: created\ndata: a\ndata: b\n\n",
            ),
        ];
        for (change, want) in table {
            assert_eq!(std::str::from_utf8(&encode(&change)).unwrap(), want);
        }
    }

    #[test]
    fn the_other_lines_are_well_formed_events_or_comments() {
        for bytes in [&hello()[..], &reset(9)[..], PING, DROPPED] {
            let text = std::str::from_utf8(bytes).unwrap();
            assert!(text.ends_with("\n\n"), "{text:?}");
            assert!(!text[..text.len() - 2].contains("\n\n"), "{text:?}");
        }
        assert!(
            std::str::from_utf8(&reset(9))
                .unwrap()
                .starts_with("id: 9\nevent: reset\n")
        );
    }
}
