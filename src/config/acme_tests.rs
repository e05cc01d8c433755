//! Table-driven tests of `[server.tls.acme]` and its flags.

use super::*;

#[test]
fn domains_are_checked_names() {
    let table: [(&str, Result<&str, &str>); 10] = [
        ("example.com", Ok("example.com")),
        ("WWW.Example.COM.", Ok("www.example.com")),
        ("xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
        ("a-b.c", Ok("a-b.c")),
        ("*.example.com", Err("wildcard")),
        ("localhost", Err("not a domain name")),
        ("127.0.0.1", Err("an address")),
        ("-a.example", Err("not a domain name")),
        ("a..example", Err("not a domain name")),
        ("a_b.example", Err("not a domain name")),
    ];
    for (name, want) in table {
        match (check_domain(name), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(want)) => assert!(got.contains(want), "{name}: {got}"),
            (got, want) => panic!("{name}: {got:?}, not {want:?}"),
        }
    }
    let long = format!("{}.example", "a".repeat(64));
    assert!(check_domain(&long).is_err());
    let list = domain_list(&["A.test".into(), "a.test".into(), "b.test".into()]).unwrap();
    assert_eq!(list, ["a.test", "b.test"]);
}

#[test]
fn emails_challenges_and_waits_are_checked() {
    assert_eq!(check_email(" me@example.com ").unwrap(), "me@example.com");
    for bad in [
        "me",
        "@example.com",
        "me@localhost",
        "a b@example.com",
        "a@b.c,d@e.f",
    ] {
        assert!(check_email(bad).is_err(), "{bad}");
    }
    assert_eq!(
        challenge_list(&["tls-alpn-01".into(), "http-01".into()]).unwrap(),
        [Kind::TlsAlpn01, Kind::Http01]
    );
    for bad in [
        vec![],
        vec!["dns-01".to_owned()],
        vec!["http-01".into(), "http-01".into()],
    ] {
        assert!(challenge_list(&bad).is_err(), "{bad:?}");
    }
    let s = Duration::from_secs;
    let table = [
        (toml::Value::Integer(90), Ok(s(90))),
        (toml::Value::Float(1.5), Ok(Duration::from_millis(1500))),
        (toml::Value::String("30d".into()), Ok(s(30 * 86_400))),
        (toml::Value::String("12h".into()), Ok(s(12 * 3600))),
        (toml::Value::String("5m".into()), Ok(s(300))),
        (toml::Value::String("2 s".into()), Ok(s(2))),
        (toml::Value::String("2w".into()), Err(())),
        (toml::Value::String("d".into()), Err(())),
        (toml::Value::Integer(0), Err(())),
        (toml::Value::Integer(400 * 86_400), Err(())),
        (toml::Value::Boolean(true), Err(())),
    ];
    for (value, want) in table {
        assert_eq!(duration(&value).map_err(drop), want, "{value:?}");
    }
}

/// Routes files and flags, and what they ask for: (routes.toml's text, flags, domains,
/// directory, challenges, host, port, redirect).
#[test]
fn defaults_make_a_public_https_server() {
    use crate::config::{Config, TlsSettings};
    let dir = std::env::temp_dir().join(format!("tws-config-acme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flags = |domains: &[&str]| Overrides {
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        ..Overrides::default()
    };
    let hosts = "[[route]]\npath = \"/\"\nfile = \"routes.toml\"\nhost = \"B.example\"\n\n\
                 [[route]]\npath = \"/x\"\nfile = \"routes.toml\"\nhost = \"*.b.example\"\n";
    type Case<'a> = (
        String,
        Overrides,
        &'a [&'a str],
        &'a str,
        &'a [Kind],
        &'a str,
        u16,
        Option<u16>,
    );
    let table: [Case; 5] = [
        (
            String::new(),
            flags(&["a.example", "www.a.example"]),
            &["a.example", "www.a.example"],
            LETS_ENCRYPT,
            &[Kind::Http01, Kind::TlsAlpn01],
            "0.0.0.0",
            443,
            Some(80),
        ),
        (
            format!("[server.tls.acme]\nstaging = true\nchallenges = [\"tls-alpn-01\"]\n{hosts}"),
            Overrides::default(),
            &["b.example"],
            LETS_ENCRYPT_STAGING,
            &[Kind::TlsAlpn01],
            "0.0.0.0",
            443,
            None,
        ),
        (
            "[server]\nhost = \"::\"\nport = 8443\n[server.tls]\nredirect_http = 8080\n\
             [server.tls.acme]\ndomains = [\"c.example\"]\ndirectory = \"https://ca.example/dir\"\n"
                .to_owned(),
            Overrides::default(),
            &["c.example"],
            "https://ca.example/dir",
            &[Kind::Http01, Kind::TlsAlpn01],
            "::",
            8443,
            Some(8080),
        ),
        // The flags' domains replace the table's.
        (
            "[server.tls.acme]\ndomains = [\"c.example\"]\n".to_owned(),
            flags(&["d.example"]),
            &["d.example"],
            LETS_ENCRYPT,
            &[Kind::Http01, Kind::TlsAlpn01],
            "0.0.0.0",
            443,
            Some(80),
        ),
        // Without ACME, nothing changes.
        (
            "[server]\n".to_owned(),
            Overrides::default(),
            &[],
            "",
            &[],
            crate::config::DEFAULT_HOST,
            crate::config::DEFAULT_PORT,
            None,
        ),
    ];
    for (text, overrides, domains, directory, challenges, host, port, redirect) in table {
        let file = dir.join("routes.toml");
        std::fs::write(&file, format!("{text}\n")).unwrap();
        let config = Config::load(&file, &overrides).unwrap();
        let server = &config.server;
        match &server.tls {
            Some(TlsSettings::Acme(acme)) => {
                assert_eq!(acme.domains, domains, "{text}");
                assert_eq!(acme.directory, directory, "{text}");
                assert_eq!(acme.challenges, challenges, "{text}");
                assert_eq!(acme.first_retry, DEFAULT_FIRST_RETRY);
            }
            other => assert!(other.is_none() && domains.is_empty(), "{text}: {other:?}"),
        }
        assert_eq!((server.host.as_str(), server.port), (host, port), "{text}");
        assert_eq!(server.redirect_http, redirect, "{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_mac_key_is_never_shown() {
    let eab = Eab {
        kid: "kid-1".into(),
        hmac_key: "c2VjcmV0".into(),
    };
    let text = format!("{eab:?}");
    assert!(
        text.contains("kid-1") && !text.contains("c2VjcmV0"),
        "{text}"
    );
}
