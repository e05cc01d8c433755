//! A folder's `README.md`, shown under its listing: CommonMark (with tables, strikethrough
//! and task lists) rendered by `pulldown-cmark`, with any raw HTML in it shown as text, never
//! run, and links that could run script (`javascript:` and the like) dropped.

use std::path::Path;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};

/// A README larger than this is not rendered.
const MAX_README_BYTES: u64 = 256 * 1024;
/// The names looked for, in order.
const NAMES: [&str; 3] = ["README.md", "readme.md", "Readme.md"];

/// The rendered README of `folder`, if it has one that can be read.
pub fn render(folder: &Path) -> Option<String> {
    let path = NAMES
        .iter()
        .map(|name| folder.join(name))
        .find(|p| p.is_file())?;
    if std::fs::metadata(&path).ok()?.len() > MAX_README_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    Some(markdown(&text))
}

/// CommonMark to HTML, raw HTML escaped.
pub fn markdown(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(text, options).map(|event| match event {
        // Raw HTML is shown as the text it is.
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// A link target that cannot run script: relative, or http(s), mailto; anything else is
/// emptied.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim_start().to_ascii_lowercase();
    let scheme = lower.split_once(':').map(|(s, _)| s);
    let relative = scheme.is_none_or(|s| s.contains(['/', '?', '#']));
    if relative || matches!(scheme, Some("http" | "https" | "mailto")) {
        url
    } else {
        CowStr::Borrowed("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_raw_html_is_not_run() {
        let cases = [
            (
                "# Title\n\nSome *text*.",
                "<h1>Title</h1>\n<p>Some <em>text</em>.</p>\n",
            ),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a <b onclick=x>b</b>", "a &lt;b onclick=x&gt;b&lt;/b&gt;"),
            ("[x](javascript:alert(1))", "<a href=\"\">x</a>"),
            ("[x](notes/a.md)", "<a href=\"notes/a.md\">x</a>"),
            ("| a |\n|---|\n| 1 |", "<table>"),
        ];
        for (text, want) in cases {
            let html = markdown(text);
            assert!(html.contains(want), "{text:?} gave {html:?}");
            assert!(!html.contains("<script"), "{html}");
        }
    }
}
