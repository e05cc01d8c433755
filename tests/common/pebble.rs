//! Pebble, the Let's Encrypt project's test-only ACME server, for one test: its own HTTPS
//! certificate made at test time (a throwaway root and a leaf for 127.0.0.1, the root given to
//! tws as `ca_root`), `pebble-challtestsrv` as its DNS server answering 127.0.0.1 for every
//! name (DNS only), and two forwarders holding the ports its validator connects to for
//! HTTP-01 and TLS-ALPN-01, pointed at tws once tws has printed its ports. Pebble and its DNS
//! server listen on port 0; their ports are read from /proc (never probed). Pebble forgets
//! everything when stopped; `start_again` brings it back on the same ports with a new CA.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::forward::Forwarder;
use tws::tls::certs::pem_encode;

/// What a test changes in Pebble.
#[derive(Default, Clone)]
pub struct Options {
    /// Certificates valid this many seconds (Pebble's default is five years).
    pub validity: Option<u64>,
    /// Percent of good nonces refused as bad (Pebble's default: 5).
    pub nonce_reject: Option<u32>,
    /// External account binding required, with this key id and base64url MAC key.
    pub eab: Option<(String, String)>,
}

pub struct Pebble {
    dir: PathBuf,
    options: Options,
    child: Option<Child>,
    dns: Child,
    dns_port: u16,
    /// Where its ACME listener and management interface are.
    pub listen: u16,
    pub management: u16,
    /// The directory URL.
    pub directory: String,
    /// The root of Pebble's own HTTPS certificate (for tws's `ca_root`).
    pub ca_root: PathBuf,
    ca_der: Vec<u8>,
    /// Pebble's output, one line each.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Where Pebble validates HTTP-01 and TLS-ALPN-01.
    pub http: Forwarder,
    pub tls: Forwarder,
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ports `pid` listens on (TCP) or is bound to (UDP) on 127.0.0.1, from /proc.
fn ports(pid: u32, udp: bool) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string(if udp {
        "/proc/net/udp"
    } else {
        "/proc/net/tcp"
    })
    .unwrap_or_default();
    let mut found: Vec<u16> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let listening = udp || f.get(3) == Some(&"0A");
            let (addr, port) = f.get(1)?.split_once(':')?;
            (listening
                && addr == "0100007F"
                && inodes.iter().any(|i| Some(&i.as_str()) == f.get(9)))
            .then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect();
    found.sort();
    found
}

/// An HTTPS agent trusting `root` alone.
pub fn agent(root: &[u8]) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let tls = TlsConfig::builder()
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .root_certs(RootCerts::Specific(Arc::new(vec![
            Certificate::from_der(root).to_owned(),
        ])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent()
}

/// A CA and a leaf for 127.0.0.1 and localhost signed by it (rustls refuses a CA certificate
/// used as a server's), written to `dir` as `NAME-root.pem`, `NAME.pem` and `NAME.key`; the
/// root's DER.
pub fn https_certificate(dir: &Path, name: &str) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "tws test root for pebble");
    (ca.not_before, ca.not_after) = (
        now - time::Duration::hours(1),
        now + time::Duration::days(2),
    );
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf =
        rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    (leaf.not_before, leaf.not_after) = (
        now - time::Duration::hours(1),
        now + time::Duration::days(2),
    );
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let file = |suffix: &str| dir.join(format!("{name}{suffix}"));
    std::fs::write(file("-root.pem"), pem_encode("CERTIFICATE", ca_cert.der())).unwrap();
    std::fs::write(file(".pem"), pem_encode("CERTIFICATE", cert.der())).unwrap();
    std::fs::write(
        file(".key"),
        pem_encode("PRIVATE KEY", &key.serialize_der()),
    )
    .unwrap();
    ca_cert.der().to_vec()
}

impl Pebble {
    /// Pebble and its DNS server, or `None` (with a note) when they are not installed.
    pub fn start(dir: &Path, options: Options) -> Option<Pebble> {
        if !super::installed("pebble") || !super::installed("pebble-challtestsrv") {
            return None;
        }
        let ca_der = https_certificate(dir, "pebble");
        let dns = Command::new("pebble-challtestsrv")
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv6", "", "-defaultIPv4", "127.0.0.1"])
            .args(["-dns01", "127.0.0.1:0", "-management", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv");
        let dns_port = wait_until("pebble-challtestsrv binds its DNS port", || {
            ports(dns.id(), true).first().copied()
        });
        let mut pebble = Pebble {
            dir: dir.to_path_buf(),
            options,
            child: None,
            dns,
            dns_port,
            listen: 0,
            management: 0,
            directory: String::new(),
            ca_root: dir.join("pebble-root.pem"),
            ca_der,
            log: Arc::new(Mutex::new(Vec::new())),
            http: Forwarder::start(),
            tls: Forwarder::start(),
        };
        pebble.spawn();
        Some(pebble)
    }

    /// Starts Pebble on the ports it had (or on any, the first time).
    fn spawn(&mut self) {
        for _ in 0..5 {
            let mut config = serde_json::json!({"pebble": {
                "listenAddress": format!("127.0.0.1:{}", self.listen),
                "managementListenAddress": format!("127.0.0.1:{}", self.management),
                "certificate": self.dir.join("pebble.pem"),
                "privateKey": self.dir.join("pebble.key"),
                "httpPort": self.http.port,
                "tlsPort": self.tls.port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }});
            if let Some((kid, key)) = &self.options.eab {
                config["pebble"]["externalAccountBindingRequired"] = true.into();
                config["pebble"]["externalAccountMACKeys"] = serde_json::json!({ kid: key });
            }
            if let Some(seconds) = self.options.validity {
                config["pebble"]["certificateValidityPeriod"] = seconds.into();
            }
            let file = self.dir.join("pebble.json");
            std::fs::write(&file, config.to_string()).unwrap();
            let mut command = Command::new("pebble");
            command
                .args(["-config", file.to_str().unwrap()])
                .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns_port)])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_AUTHZREUSE", "0")
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            if let Some(percent) = self.options.nonce_reject {
                command.env("PEBBLE_WFE_NONCEREJECT", percent.to_string());
            }
            let mut child = command.spawn().expect("start pebble");
            let out = child.stdout.take().unwrap();
            let log = Arc::clone(&self.log);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
            let started = Instant::now();
            let listening = loop {
                let found = ports(child.id(), false);
                if found.len() >= 2 {
                    break Some(found);
                }
                if child.try_wait().unwrap().is_some()
                    || started.elapsed() > Duration::from_secs(10)
                {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let Some(found) = listening else {
                // A port taken meanwhile (only on a restart): try again.
                let _ = child.kill();
                let _ = child.wait();
                continue;
            };
            let agent = agent(&self.ca_der);
            let acme = found.iter().copied().find(|port| {
                agent
                    .get(format!("https://127.0.0.1:{port}/dir"))
                    .call()
                    .is_ok_and(|r| r.status() == 200)
            });
            let acme = acme.expect("one of pebble's ports serves the directory");
            self.listen = acme;
            self.management = found.into_iter().find(|p| *p != acme).unwrap();
            self.directory = format!("https://127.0.0.1:{acme}/dir");
            self.child = Some(child);
            return;
        }
        panic!("pebble did not start");
    }

    /// Stops Pebble (the DNS server and the forwarders stay).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts Pebble again on the same ports: a new CA with no accounts.
    pub fn start_again(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The root Pebble issues under now (it changes at each start), written to `file`.
    pub fn issuing_root(&self, file: &Path) -> PathBuf {
        let url = format!("https://127.0.0.1:{}/roots/0", self.management);
        let mut response = agent(&self.ca_der).get(&url).call().expect("pebble's root");
        let pem = response.body_mut().read_to_string().unwrap();
        std::fs::write(file, pem).unwrap();
        file.to_path_buf()
    }

    /// Orders Pebble has accepted.
    pub fn orders(&self) -> usize {
        self.lines("Added order")
    }

    /// Lines of Pebble's output containing `text`.
    pub fn lines(&self, text: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        let _ = self.dns.kill();
        let _ = self.dns.wait();
    }
}

/// `curl --cacert ROOT --resolve NAME:PORT:127.0.0.1 https://NAME:PORT/PATH`: the body, or
/// curl's complaint.
pub fn curl(root: &Path, name: &str, addr: SocketAddr, path: &str) -> Result<String, String> {
    let port = addr.port();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--max-time",
            "5",
            "--cacert",
            root.to_str().unwrap(),
        ])
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .expect("run curl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
