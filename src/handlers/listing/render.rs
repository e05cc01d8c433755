//! One page of a listing, rendered straight into its final buffer: an HTML page for people
//! (breadcrumbs, a filter box, column heads that sort, human sizes with the exact count in a
//! title, long names wrapped, light or dark as the browser prefers, archive links, the forms
//! and buttons of the writes the route allows, the folder's README below) with every name
//! escaped and percent-encoded in links; or a JSON array of the same entries.

use std::io::Write;

use percent_encoding::utf8_percent_encode;

use super::COMPONENT;
use super::scan::{Entry, Scan};
use super::view::{SortKey, View};
pub use crate::routes::Features;

/// Which entries a page holds, and where it sits among the pages.
#[derive(Debug, Clone, Copy)]
pub struct PageSpan {
    /// 1-based.
    pub number: usize,
    pub pages: usize,
    pub start: usize,
    pub count: usize,
}

/// Everything one page is made from.
pub struct Page<'a> {
    pub scan: &'a Scan,
    /// The folder's URL path, ending in '/'.
    pub path: &'a str,
    pub view: &'a View,
    /// The entries of the whole view, in order (indexes into the scan).
    pub rows: &'a [u32],
    pub span: PageSpan,
    pub features: Features,
    pub readme: Option<&'a str>,
}

impl Page<'_> {
    fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.rows
            .iter()
            .skip(self.span.start)
            .take(self.span.count)
            .map(|i| (self.scan.name(*i as usize), self.scan.entry(*i as usize)))
    }
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

/// A size for people: `987 B`, `1.3 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#fff;--fg:#1d1d1f;--muted:#6b6b70;--line:#e3e3e8;--accent:#1f62a8;--soft:#f4f5f8}\
@media (prefers-color-scheme:dark){:root{--bg:#16171a;--fg:#e8e8ea;--muted:#9a9aa3;--line:#2d2e34;--accent:#79b0ff;--soft:#202127}}\
*{box-sizing:border-box}\
body{font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",sans-serif;background:var(--bg);color:var(--fg);max-width:62rem;margin:0 auto;padding:1rem}\
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}\
h1{font-size:1.3rem;margin:.4rem 0 .8rem;overflow-wrap:anywhere}\
.crumbs{color:var(--muted);overflow-wrap:anywhere}.crumbs a{margin:0 .15rem}\
.bar{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.6rem 0}\
.bar form{display:flex;gap:.4rem;flex-wrap:wrap}.muted{color:var(--muted)}\
input,button{font:inherit;color:inherit;background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:.3rem .6rem}\
button{cursor:pointer}\
table{width:100%;border-collapse:collapse;table-layout:fixed}\
th,td{padding:.35rem .5rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}\
th a{color:inherit}td.name{overflow-wrap:anywhere}\
.size{width:6.5rem;text-align:right;white-space:nowrap}.modified{width:10.5rem;white-space:nowrap}\
.actions{width:17rem;white-space:nowrap}.actions form{display:inline}.actions input{width:7rem}\
@media (max-width:40rem){.modified{display:none}.size{width:4.5rem}.actions{width:8.5rem;white-space:normal}.actions input{width:100%}}\
input[type=file]{max-width:100%}#drop{border:2px dashed var(--line);border-radius:8px;padding:1rem;margin:1rem 0}\
#drop.over{border-color:var(--accent)}.file{margin:.3rem 0}progress{width:100%}\
article.readme{border-top:1px solid var(--line);margin-top:1.5rem;padding-top:.5rem;overflow-wrap:anywhere}\
article.readme pre{background:var(--soft);padding:.6rem;overflow:auto}";

/// The HTML page.
pub fn html(page: &Page<'_>) -> Vec<u8> {
    let Page {
        path,
        view,
        span,
        features,
        ..
    } = *page;
    let names: usize = page.entries().map(|(n, _)| n.len()).sum();
    let mut out = Vec::with_capacity(4096 + span.count * 160 + names * 3);
    let mut title = Vec::new();
    escape_into(&mut title, path);
    let title = String::from_utf8_lossy(&title).into_owned();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Index of {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    crumbs(&mut out, path);
    let _ = writeln!(out, "<h1>Index of {title}</h1>");
    tools(&mut out, page);
    let total = page.rows.len();
    let noun = if total == 1 { "entry" } else { "entries" };
    let shown = match &view.filter {
        Some(_) if total == 1 => "1 entry matches".to_owned(),
        Some(_) => format!("{total} {noun} match"),
        None => format!("{total} {noun}"),
    };
    if span.pages > 1 {
        let _ = writeln!(
            out,
            "<p class=\"muted\">{shown}; page {} of {}, entries {} to {}.</p>",
            span.number,
            span.pages,
            span.start + 1,
            span.start + span.count
        );
    } else {
        let _ = writeln!(out, "<p class=\"muted\">{shown}.</p>");
    }
    out.extend_from_slice(b"<table>\n<thead><tr>");
    for (key, class, label) in [
        (SortKey::Name, "name", "Name"),
        (SortKey::Size, "size", "Size"),
        (SortKey::Modified, "modified", "Modified"),
    ] {
        // A column head sorts by it; again, the other way.
        let current = view.sort == key;
        let descending = current && !view.descending;
        let arrow = match (current, view.descending) {
            (false, _) => "",
            (true, false) => " \u{25B2}",
            (true, true) => " \u{25BC}",
        };
        let _ = write!(
            out,
            "<th class=\"{class}\"><a href=\"{}\">{label}{arrow}</a></th>",
            escaped(&view.query_with(key, descending))
        );
    }
    let acts = features.delete || features.rename;
    if acts {
        out.extend_from_slice(b"<th class=\"actions\"></th>");
    }
    out.extend_from_slice(b"</tr></thead>\n<tbody>\n");
    if path != "/" {
        out.extend_from_slice(b"<tr><td class=\"name\"><a href=\"../\">../</a></td><td class=\"size\"></td><td class=\"modified\"></td>");
        if acts {
            out.extend_from_slice(b"<td class=\"actions\"></td>");
        }
        out.extend_from_slice(b"</tr>\n");
    }
    for (name, entry) in page.entries() {
        row(&mut out, name, entry, features);
    }
    out.extend_from_slice(b"</tbody>\n</table>\n");
    if span.pages > 1 {
        out.extend_from_slice(b"<p>");
        if span.number > 1 {
            let _ = write!(
                out,
                "<a href=\"{}\" rel=\"prev\">previous page</a> ",
                escaped(&view.query_for_page(span.number - 1))
            );
        }
        if span.number < span.pages {
            let _ = write!(
                out,
                "<a href=\"{}\" rel=\"next\">next page</a>",
                escaped(&view.query_for_page(span.number + 1))
            );
        }
        out.extend_from_slice(b"</p>\n");
    }
    if features.upload {
        out.extend_from_slice(UPLOAD.as_bytes());
    }
    if let Some(readme) = page.readme {
        out.extend_from_slice(b"<article class=\"readme\">\n");
        out.extend_from_slice(readme.as_bytes());
        out.extend_from_slice(b"</article>\n");
    }
    out.extend_from_slice(b"</body>\n</html>\n");
    out
}

/// `/`, then one link per folder up to this one.
fn crumbs(out: &mut Vec<u8>, path: &str) {
    out.extend_from_slice(b"<nav class=\"crumbs\"><a href=\"/\">/</a>");
    let mut at = String::from("/");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, segment) in segments.iter().enumerate() {
        at.push_str(segment);
        at.push('/');
        if i + 1 == segments.len() {
            out.extend_from_slice(b"<span>");
            escape_into(out, segment);
            out.extend_from_slice(b"</span>/");
        } else {
            let _ = write!(out, "<a href=\"{}\">", super::encode_path(&at));
            escape_into(out, segment);
            out.extend_from_slice(b"</a>/");
        }
    }
    out.extend_from_slice(b"</nav>\n");
}

/// The filter box, the archive links and the new-folder form.
fn tools(out: &mut Vec<u8>, page: &Page<'_>) {
    let view = page.view;
    out.extend_from_slice(b"<div class=\"bar\"><form method=\"get\" action=\"./\">");
    out.extend_from_slice(
        b"<input type=\"search\" name=\"q\" placeholder=\"Filter names\" value=\"",
    );
    if let Some(filter) = &view.filter {
        escape_into(out, filter);
    }
    out.extend_from_slice(b"\">");
    if !view.is_default_order() && view.sort != SortKey::Name || view.descending {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"sort\" value=\"{}\"><input type=\"hidden\" name=\"order\" value=\"{}\">",
            view.sort.name(),
            if view.descending { "desc" } else { "asc" }
        );
    }
    out.extend_from_slice(b"<button>Filter</button></form>");
    if page.features.archives {
        out.extend_from_slice(
            b"<span class=\"muted\">Download this folder:</span> \
              <a href=\"?download=zip\" download>.zip</a> \
              <a href=\"?download=tar.gz\" download>.tar.gz</a> \
              <a href=\"?download=tar\" download>.tar</a>",
        );
    }
    if page.features.mkdir {
        out.extend_from_slice(
            b"<form method=\"post\" action=\"./\"><input name=\"mkdir\" placeholder=\"New folder\" required><button>Create folder</button></form>",
        );
    }
    out.extend_from_slice(b"</div>\n");
}

fn row(out: &mut Vec<u8>, name: &str, entry: &Entry, features: Features) {
    let slash = if entry.is_dir { "/" } else { "" };
    let href = utf8_percent_encode(name, COMPONENT).to_string();
    let _ = write!(out, "<tr><td class=\"name\"><a href=\"./{href}{slash}\">");
    escape_into(out, name);
    out.extend_from_slice(slash.as_bytes());
    out.extend_from_slice(b"</a></td><td class=\"size\"");
    if entry.is_dir {
        out.extend_from_slice(b">-");
    } else {
        let _ = write!(
            out,
            " title=\"{} bytes\">{}",
            entry.size,
            human_size(entry.size)
        );
    }
    out.extend_from_slice(b"</td><td class=\"modified\">");
    if let Some(t) = entry.modified {
        out.extend_from_slice(crate::time::listing(t).as_bytes());
    }
    out.extend_from_slice(b"</td>");
    if features.delete || features.rename {
        out.extend_from_slice(b"<td class=\"actions\">");
        if features.rename {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"./{href}{slash}\"><input name=\"rename\" placeholder=\"New name\" required><button>Rename</button></form> "
            );
        }
        if features.delete {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"./{href}{slash}?delete\" data-name=\"{}{slash}\" onsubmit=\"return confirm('Delete ' + this.dataset.name + '?')\"><button>Delete</button></form>",
                escaped(name)
            );
        }
        out.extend_from_slice(b"</td>");
    }
    out.extend_from_slice(b"</tr>\n");
}

/// Text for an attribute value.
fn escaped(text: &str) -> String {
    let mut out = Vec::new();
    escape_into(&mut out, text);
    String::from_utf8_lossy(&out).into_owned()
}

/// The upload form (works without script: a multipart POST) and the script that sends files
/// one by one with a progress bar each (PUT), from the picker, a folder picker or a drop.
const UPLOAD: &str = r#"<section id="drop">
<form method="post" action="./" enctype="multipart/form-data" id="upload">
<input type="file" name="file" multiple id="files"> <button>Upload</button>
<label class="muted"> or a whole folder: <input type="file" id="folder" webkitdirectory></label>
</form>
<p class="muted">Or drop files and folders here.</p>
<div id="progress"></div>
</section>
<script>
(() => {
  const drop = document.getElementById('drop'), list = document.getElementById('progress');
  const encode = p => p.split('/').map(encodeURIComponent).join('/');
  const send = (file, path) => new Promise(done => {
    const row = document.createElement('div'), bar = document.createElement('progress');
    row.className = 'file'; row.textContent = path + ' '; bar.max = file.size || 1; bar.value = 0;
    row.appendChild(bar); list.appendChild(row);
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', './' + encode(path));
    xhr.upload.onprogress = e => { bar.value = e.loaded; };
    xhr.onload = () => { row.append(xhr.status < 300 ? ' done' : ' ' + xhr.status + ': ' + xhr.responseText.trim()); done(xhr.status < 300); };
    xhr.onerror = () => { row.append(' failed'); done(false); };
    xhr.send(file);
  });
  const sendAll = async pairs => {
    let ok = true;
    for (const [file, path] of pairs) ok = (await send(file, path)) && ok;
    if (ok) location.reload();
  };
  document.getElementById('upload').addEventListener('submit', e => {
    e.preventDefault();
    sendAll([...document.getElementById('files').files].map(f => [f, f.name]));
  });
  document.getElementById('folder').addEventListener('change', e => {
    sendAll([...e.target.files].map(f => [f, f.webkitRelativePath || f.name]));
  });
  const walk = (entry, prefix, out) => new Promise(done => {
    if (entry.isFile) entry.file(f => { out.push([f, prefix + f.name]); done(); }, done);
    else if (entry.isDirectory) {
      const reader = entry.createReader(), all = [];
      const more = () => reader.readEntries(async batch => {
        if (!batch.length) { for (const e of all) await walk(e, prefix + entry.name + '/', out); done(); }
        else { all.push(...batch); more(); }
      }, done);
      more();
    } else done();
  });
  drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async e => {
    e.preventDefault(); drop.classList.remove('over');
    const out = [];
    for (const item of [...e.dataTransfer.items]) {
      const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
      if (entry) await walk(entry, '', out);
      else if (item.getAsFile()) out.push([item.getAsFile(), item.getAsFile().name]);
    }
    sendAll(out);
  });
})();
</script>
"#;

/// The JSON page: `[{"name": ..., "type": "dir"|"file", "size": ..., "modified": ...}, ...]`.
pub fn json(page: &Page<'_>) -> Vec<u8> {
    let names: usize = page.entries().map(|(n, _)| n.len()).sum();
    let mut out = Vec::with_capacity(16 + page.span.count * 80 + names);
    out.push(b'[');
    for (i, (name, entry)) in page.entries().enumerate() {
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

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_as_people_write_them() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1_300_051, "1.2 MiB"),
            (52_428_800, "50 MiB"),
            (5 << 40, "5.0 TiB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
    }
}
