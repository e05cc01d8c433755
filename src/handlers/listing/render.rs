//! One page of a listing, rendered straight into its final buffer: HTML with every name
//! escaped and percent-encoded in links, or a JSON array.

use std::io::Write;

use percent_encoding::utf8_percent_encode;

use super::COMPONENT;
use super::scan::Scan;

/// Which entries a page holds, and where it sits among the pages.
#[derive(Debug, Clone, Copy)]
pub struct PageSpan {
    /// 1-based.
    pub number: usize,
    pub pages: usize,
    pub start: usize,
    pub count: usize,
}

/// Escapes text for HTML content and attribute values; control characters become U+FFFD.
pub fn escape_into(out: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\'' => out.extend_from_slice(b"&#39;"),
            c if c.is_control() => out.extend_from_slice("\u{FFFD}".as_bytes()),
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

/// The HTML page: title, how many entries the folder holds, the page's rows, and links to
/// the neighbouring pages.
pub fn html(scan: &Scan, path: &str, span: PageSpan) -> Vec<u8> {
    // Sized for the rows, so the buffer is not regrown (and copied) as it fills.
    let names: usize = scan
        .slice(span.start, span.count)
        .map(|(n, _)| n.len())
        .sum();
    let mut out = Vec::with_capacity(1024 + span.count * 96 + names * 2);
    let mut title = Vec::new();
    escape_into(&mut title, path);
    let title = String::from_utf8_lossy(&title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Index of {title}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;margin:2em}}td{{padding:.2em 1em .2em 0}}\
         td.n{{text-align:right}}</style>\n</head>\n<body>\n<h1>Index of {title}</h1>\n"
    );
    let total = scan.len();
    let noun = if total == 1 { "entry" } else { "entries" };
    if span.pages > 1 {
        let _ = writeln!(
            out,
            "<p>{total} {noun}; page {} of {}, entries {} to {}.</p>",
            span.number,
            span.pages,
            span.start + 1,
            span.start + span.count
        );
    } else {
        let _ = writeln!(out, "<p>{total} {noun}.</p>");
    }
    out.extend_from_slice(b"<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n");
    if path != "/" {
        out.extend_from_slice(b"<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for (name, entry) in scan.slice(span.start, span.count) {
        let slash = if entry.is_dir { "/" } else { "" };
        let href = utf8_percent_encode(name, COMPONENT);
        let _ = write!(out, "<tr><td><a href=\"./{href}{slash}\">");
        escape_into(&mut out, name);
        out.extend_from_slice(slash.as_bytes());
        out.extend_from_slice(b"</a></td><td class=\"n\">");
        if entry.is_dir {
            out.push(b'-');
        } else {
            let _ = write!(out, "{}", entry.size);
        }
        out.extend_from_slice(b"</td><td>");
        if let Some(t) = entry.modified {
            out.extend_from_slice(crate::time::listing(t).as_bytes());
        }
        out.extend_from_slice(b"</td></tr>\n");
    }
    out.extend_from_slice(b"</table>\n");
    if span.pages > 1 {
        out.extend_from_slice(b"<p>");
        if span.number > 1 {
            let _ = write!(
                out,
                "<a href=\"?page={}\" rel=\"prev\">previous page</a> ",
                span.number - 1
            );
        }
        if span.number < span.pages {
            let _ = write!(
                out,
                "<a href=\"?page={}\" rel=\"next\">next page</a>",
                span.number + 1
            );
        }
        out.extend_from_slice(b"</p>\n");
    }
    out.extend_from_slice(b"</body>\n</html>\n");
    out
}

/// The JSON page: `[{"name": ..., "type": "dir"|"file", "size": ..., "modified": ...}, ...]`.
pub fn json(scan: &Scan, span: PageSpan) -> Vec<u8> {
    let names: usize = scan
        .slice(span.start, span.count)
        .map(|(n, _)| n.len())
        .sum();
    let mut out = Vec::with_capacity(16 + span.count * 80 + names);
    out.push(b'[');
    for (i, (name, entry)) in scan.slice(span.start, span.count).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        // serde_json escapes quotes, backslashes and control characters.
        let _ = serde_json::to_writer(&mut out, name);
        let kind = if entry.is_dir { "dir" } else { "file" };
        let _ = write!(
            out,
            ",\"type\":\"{kind}\",\"size\":{},\"modified\":",
            entry.size
        );
        match entry.modified {
            Some(t) => {
                let _ = write!(out, "\"{}\"", crate::time::rfc3339_unix(t));
            }
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]\n");
    out
}
