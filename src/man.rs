//! The manual page, generated from the clap definition plus the routes-file reference.

use clap::CommandFactory;
use clap_mangen::Man;

use crate::cli::Cli;

/// The ROUTES FILE, EXIT STATUS and FILES sections, in roff.
const EXTRA: &str = r#".SH "ROUTES FILE"
The routes file is TOML: an optional \fB[server]\fR table and a list of \fB[[route]]\fR tables.
Paths in it are relative to the folder holding the routes file.
Unknown keys are errors.
.SS "[server]"
.TP
\fBhost\fR = "127.0.0.1"
Address to listen on.
.TP
\fBport\fR = 8080
Port to listen on; 0 picks a free one.
.TP
\fBroot\fR = "site"
Folder that \fBfile\fR, \fBpage\fR and \fBdir\fR paths are relative to (default: the routes file's folder).
.TP
\fBthreads\fR = 4
Worker threads (default: one per CPU).
.TP
\fBdata\fR = "data"
Folder where collections keep their database (tws.db) and HTTPS its self-signed or ACME certificates; one server per data folder.
.TP
\fBstore\fR = "postgres://tws@db:5432/tws"
Keep collections in PostgreSQL instead of the embedded database (also \fB--store\fR), for several nodes behind a load balancer.
.TP
\fBfsync\fR = "group"
How writes to collections reach the disk: "group" (writes waiting together share one commit) or "each" (one commit per write).
Either way a 201, 200 or 204 is sent only once the write is on disk.
.TP
\fBaccess_log\fR = "-"
Where the access log goes: "-" for stdout (default), or a file appended to and reopened on SIGUSR1.
.TP
\fBmax_listing_entries\fR = 10000
Most entries on one page of a folder listing; further pages are linked (?page=2). Also per dir route.
.SS "[server.tls]"
.TP
\fBcert\fR = "fullchain.pem", \fBkey\fR = "privkey.pem"
Serve HTTPS (TLS 1.3 and 1.2) with this PEM certificate chain (leaf first) and private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
The pair is reloaded on SIGHUP and when either file changes; a bad pair is refused and the old one kept.
.TP
\fBself_signed\fR = true
Instead of cert and key: make a certificate at startup for localhost, 127.0.0.1, ::1 and the host name; it is written to \fIdata\fR/tls/self-signed.pem.
.TP
\fBredirect_http\fR = 80
Also listen for plain HTTP on this port and answer every request 308 to the HTTPS address.
.SS "[server.tls.acme]"
Instead of cert and key: tws obtains its certificate from a CA over ACME (RFC 8555) and renews it itself.
Without \fBhost\fR and \fBport\fR it listens on 0.0.0.0:443, and on port 80 (\fBredirect_http\fR) for HTTP-01.
Until the first certificate arrives a temporary self-signed one is served.
.TP
\fBdomains\fR = ["example.com", "www.example.com"]
The names on the certificate (also \fB--domain\fR); by default the routes' \fBhost\fR names.
.TP
\fBemail\fR = "me@example.com"
The account's contact (also \fB--acme-email\fR).
.TP
\fBdirectory\fR = "https://acme-v02.api.letsencrypt.org/directory"
The CA's directory URL (default: Let's Encrypt); \fBstaging\fR = true for Let's Encrypt's staging CA.
.TP
\fBca_root\fR = "company-ca.pem"
Trust only these PEM roots for the CA's HTTPS (a private CA).
.TP
\fBeab_kid\fR = "...", \fBeab_hmac_key\fR = "..."
External account binding, for CAs that require it.
.TP
\fBchallenges\fR = ["http-01", "tls-alpn-01"]
The challenges answered, most preferred first.
.TP
\fBrenew_before\fR = "30d", \fBfirst_retry\fR = "20s"
Renew when this little is left at the latest (default: at two thirds of the certificate's life, or in the CA's renewal window); the first retry after a failure (then doubling, up to six hours).
.SS "[server.compression]"
.TP
\fBenabled\fR = true
Compress responses on the fly for clients that accept it (brotli, zstd, gzip): text, JSON, JavaScript, XML, SVG and the like of at least \fBmin_size\fR bytes.
Files up to 1 MiB are compressed once and kept; larger ones are streamed through the compressor (chunked).
.TP
\fBencodings\fR = ["br", "zstd", "gzip"]
The codings offered, in this order of preference on a tie.
.TP
\fBmin_size\fR = 1024
Smallest body compressed, in bytes.
.TP
\fBtypes\fR = ["text/markdown"], \fBreplace_types\fR = false
More compressible media types (type/subtype, type/*, type/*+suffix), or with replace_types, the whole list.
A route opts out with \fBcompress\fR = false.
.SS "[server.limits]"
.TP
\fBmax_head_bytes\fR = 16384
Largest request head (request line and header fields); beyond it, 431.
.TP
\fBmax_uri_bytes\fR = 8192
Longest request target; beyond it, 414.
.TP
\fBmax_headers\fR = 100
Most header fields (at most 256); beyond it, 431.
.TP
\fBmax_body_bytes\fR = 1048576
Largest request body; beyond it, 413.
.TP
\fBmax_body_memory\fR = 67108864
Request-body bytes held in memory across all connections (default 64 MiB, at least max_body_bytes).
When spent, connections holding more than 16 KiB of body are not read from until there is room again.
.TP
\fBmax_connections\fR = 10000
Most connections open at once (default: what the open file limit allows, raised to its hard limit at startup); past it, a 503 and a close.
.TP
\fBmin_send_rate\fR = 1024
A response read slower than this many bytes per second, averaged over the send timeout, is cut off; 0 turns the check off.
.SS "[server.timeouts]"
In seconds; fractions allowed.
.TP
\fBheader\fR = 10
From the connection (or a later request's first byte) to the end of the request head; then 408.
.TP
\fBbody\fR = 30
To receive a whole request body; then 408.
.TP
\fBidle\fR = 60
A keep-alive connection waiting for its next request.
.TP
\fBsend\fR = 30
Without progress while sending a response.
.TP
\fBshutdown_grace\fR = 30
After SIGTERM or SIGINT, how long requests in flight may take to finish.
.SS "[[route]]"
Each route has a \fBpath\fR and exactly one of \fBfile\fR, \fBpage\fR, \fBdir\fR, \fBaction\fR or \fBredirect\fR.
.TP
\fBfile\fR = "rel/path"
One file of any type, typed from its extension.
\fBcontent_type\fR = "..." overrides the type; \fBdownload\fR = true adds Content-Disposition: attachment.
Precompressed variants \fIname\fB.br\fR and \fIname\fB.gz\fR beside the file are served to clients that accept them.
.TP
\fBpage\fR = "rel/page.html"
An HTML page, served as text/html; charset=utf-8.
.TP
\fBdir\fR = "rel/folder"
A folder mounted under \fBpath\fR.
\fBindex\fR = "index.html" names the file served for a folder; \fBlisting\fR = true lists folders without one
(HTML, or JSON for Accept: application/json), \fBmax_listing_entries\fR a page.
\fBdotfiles\fR = true serves names starting with a dot (hidden by default);
\fBsymlinks\fR = "inside" (default) | "never" | "follow" says which symlinks are followed.
A folder requested without its trailing slash is redirected (301) to the slash form.
\fBclean_urls\fR = true serves /about from about.html and redirects /about.html to /about (308);
\fBfallback\fR = "index.html" serves that file for a GET or HEAD that would be 404 (single-page apps).
.TP
\fBaction\fR = "create_user" | "list_users" | "get_user" | "health"
A built-in action.
create_user answers POST with a JSON or form body holding \fBNombre\fR;
list_users answers GET with every user;
get_user answers GET on a path ending in \fB{id}\fR, such as "/users/{id}";
health answers GET with the status and uptime; metrics with Prometheus metrics.
.TP
\fBredirect\fR = "/new" | "https://example.com/", \fBstatus\fR = 308
Redirects (301, 302, 303, 307 or 308); a path ending in '/' redirects everything below it, keeping the rest of the path. The query carries over.
.TP
\fBheaders\fR = { X-Frame-Options = "SAMEORIGIN" }
Headers on every response of the route, over the server-wide \fB[headers]\fR.
.TP
\fBcors\fR = { origins = ["https://app.example"] | "*", methods, headers, expose, credentials, max_age }
Cross-origin reads: preflights and Access-Control-* headers for allowed origins only.
.TP
\fBauth\fR = "NAME"
Basic authentication against the users of \fB[auth.NAME]\fR.
.TP
\fBhost\fR = "example.com" | ["a.example", "*.b.example"]
Answer only requests for these host names; routes without a host answer the rest.
.TP
\fBcache_control\fR = "public, max-age=3600"
Cache-Control sent with the files of a file, page or dir route.
.TP
\fBmethods\fR = ["GET"]
Narrows the methods a route answers; GET implies HEAD.
OPTIONS is always answered.
.SS "[[collection]]"
A JSON API with a schema, kept in the data folder's database: \fBname\fR = "books", \fBpath\fR = "/api/books" (records at /api/books/{id}),
\fBfields.title\fR = { type = "string", required = true } (types string, integer, number, boolean, datetime, email).
POST creates, GET lists (paged) or reads, PUT replaces, PATCH merges, DELETE deletes; every acknowledged write is on disk.
.SS "[headers]"
Headers on every response: \fBX-Frame-Options\fR = "DENY". Framing and representation headers cannot be set.
.SS "[cors]"
CORS for every route, as the route key \fBcors\fR.
.SS "[auth.NAME]"
\fBusers\fR = { alice = "$argon2id$..." }: argon2id hashes from \fBtws hash-password\fR, never passwords.
.SS "[types]"
Content types by file extension, overriding the built-in table: \fBmd\fR = "text/markdown; charset=utf-8".
.SS "[errors]"
Custom HTML pages by status, relative to \fBroot\fR: \fB404\fR = "errors/404.html".
Actions keep their JSON errors.
.SH "EXAMPLE"
.nf
[server]
host = "127.0.0.1"
port = 8080
root = "site"

[[route]]
path = "/"
page = "index.html"

[[route]]
path = "/bigfile"
file = "files/big.txt"
download = true

[[route]]
path = "/createUser"
action = "create_user"
.fi
.SH "RELOADING"
When the routes file changes (it is checked five times a second; \fB--no-watch\fR turns this off) or on SIGHUP, tws re-reads it and validates it fully.
A valid file replaces the route table at once: new requests use it, requests in flight finish on the old one, no connection is dropped and the listening socket stays open.
An invalid file is refused with one line naming file, line and key, and the old table keeps serving.
Changes of host, port, threads, data, fsync or access_log need a restart; the log says so.
.SH "SIGNALS"
SIGTERM or SIGINT stops tws gracefully: it stops accepting, closes idle connections, lets requests in flight finish (up to \fBshutdown_grace\fR), flushes the user store and exits 0.
A second signal exits at once (status 130).
SIGUSR1 reopens the access log file (after logrotate renamed it); no line is lost or split.
SIGHUP also reloads the TLS certificate and key.
.SH "LOGGING"
The access log goes to stdout, or with \fB--access-log\fR (\fBaccess_log\fR in [server]) is appended to a file created with mode 0640.
Lines leave the event loops through a bounded queue (4 MiB) to a writer thread, so a log nobody reads never stops serving: when the queue is full, lines are dropped and counted, and stderr says so at most every five seconds.
Write errors (a full disk) are reported at most once a minute and never stop serving.
.SH "ENVIRONMENT"
\fBTWS_CONFIG\fR, \fBTWS_HOST\fR, \fBTWS_PORT\fR, \fBTWS_ROOT\fR, \fBTWS_STORE\fR, \fBTWS_ACCESS_LOG\fR, \fBTWS_TLS_CERT\fR, \fBTWS_TLS_KEY\fR, \fBTWS_DOMAIN\fR and \fBTWS_ACME_EMAIL\fR stand in for the flags of the same name.
\fBNO_COLOR\fR turns colour off; it is only used on a terminal anyway.
\fBLISTEN_FDS\fR and \fBLISTEN_PID\fR (systemd socket activation) hand tws its listening socket.
.SH "EXIT STATUS"
0 when the server stops normally or \fB--check\fR finds no problem;
1 on a startup error (bad routes file, missing file, port in use), printed as one line;
2 on a command-line usage error.
.SH "FILES"
.TP
\fIdata\fR/tws.db
The collections' records (SQLite, WAL mode), each write fsynced before it is answered.
.TP
\fIdata\fR/tws.lock
Held while a server uses the data folder: a second one refuses to start.
.TP
\fIdata\fR/tls/self-signed.pem
The certificate made by \fB--tls-self-signed\fR (not its key), for \fBcurl --cacert\fR.
.TP
\fIdata\fR/acme/
The ACME account key, the certificate and its key, and the backoff after failures (with \fB--store\fR, in the database instead).
"#;

/// Renders the whole manual page.
pub fn render() -> Vec<u8> {
    let man = Man::new(Cli::command()).date("2026-11-25");
    let mut out = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    out.extend_from_slice(EXTRA.as_bytes());
    let _ = man.render_extra_section(&mut out);
    let _ = man.render_version_section(&mut out);
    out
}
