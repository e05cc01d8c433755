//! JSON Web Signatures as ACME needs them (RFC 8555 §6.2, RFC 7515): the account key (ECDSA
//! P-256, ES256 with the fixed-length r||s signature JWS wants), its JWK and thumbprint
//! (RFC 7638), flattened JWS objects signed with the account's key or URL, and the external
//! account binding (HS256 over the account's JWK, RFC 8555 §7.3.4).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// base64url without padding, as every JOSE field is written.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An ACME account key. The PKCS#8 document is what storage keeps; it is never printed.
pub struct AccountKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountKey(..)")
    }
}

impl AccountKey {
    /// A new P-256 key.
    pub fn generate() -> Result<AccountKey, String> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "cannot generate an account key".to_owned())?;
        AccountKey::from_pkcs8(doc.as_ref())
    }

    /// The key stored earlier (PKCS#8 DER).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<AccountKey, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|_| "the stored account key is not a P-256 PKCS#8 key".to_owned())?;
        Ok(AccountKey {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as a JWK: `{"crv","kty","x","y"}`, members in the order RFC 7638 hashes
    /// them.
    pub fn jwk(&self) -> Value {
        // An uncompressed point: 0x04, then x and y of 32 bytes each.
        let point = self.pair.public_key().as_ref();
        json!({
            "crv": "P-256",
            "kty": "EC",
            "x": b64(&point[1..33]),
            "y": b64(&point[33..65]),
        })
    }

    /// The JWK thumbprint (RFC 7638): SHA-256 of the required members in lexicographic order
    /// with no white space, base64url.
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let text = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap_or_default(),
            jwk["y"].as_str().unwrap_or_default()
        );
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref())
    }

    /// The key authorization for a challenge token (RFC 8555 §8.1).
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint())
    }

    /// A flattened JWS of `payload` (`None`: the empty payload of a POST-as-GET) for `url`,
    /// naming the key by `kid` (the account URL) or, before there is an account, by its JWK.
    pub fn sign(
        &self,
        url: &str,
        nonce: &str,
        kid: Option<&str>,
        payload: Option<&Value>,
    ) -> Result<Value, String> {
        let mut protected = json!({ "alg": "ES256", "nonce": nonce, "url": url });
        match kid {
            Some(kid) => protected["kid"] = kid.into(),
            None => protected["jwk"] = self.jwk(),
        }
        let protected = b64(protected.to_string().as_bytes());
        let payload = payload.map_or_else(String::new, |p| b64(p.to_string().as_bytes()));
        let input = format!("{protected}.{payload}");
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| "cannot sign with the account key".to_owned())?;
        Ok(json!({
            "protected": protected,
            "payload": payload,
            "signature": b64(signature.as_ref()),
        }))
    }

    /// The `externalAccountBinding` member of a new-account request: the account's JWK signed
    /// with the CA's MAC key (`hmac_key`, base64url as CAs hand it out) under `kid`.
    pub fn external_binding(&self, url: &str, kid: &str, hmac_key: &str) -> Result<Value, String> {
        let key = URL_SAFE_NO_PAD
            .decode(hmac_key.trim_end_matches('='))
            .map_err(|_| "eab_hmac_key is not base64url".to_owned())?;
        let protected = json!({ "alg": "HS256", "kid": kid, "url": url });
        let protected = b64(protected.to_string().as_bytes());
        let payload = b64(self.jwk().to_string().as_bytes());
        let input = format!("{protected}.{payload}");
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        Ok(json!({
            "protected": protected,
            "payload": payload,
            "signature": b64(tag.as_ref()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    fn decode(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    #[test]
    fn a_signed_request_verifies_with_the_key_it_names() {
        let key = AccountKey::generate().unwrap();
        let payload = json!({"identifiers": [{"type": "dns", "value": "example.test"}]});
        for kid in [None, Some("https://ca.test/acct/1")] {
            let jws = key
                .sign("https://ca.test/new-order", "n0nce", kid, Some(&payload))
                .unwrap();
            let protected: Value =
                serde_json::from_slice(&decode(jws["protected"].as_str().unwrap())).unwrap();
            assert_eq!(protected["alg"], "ES256");
            assert_eq!(protected["nonce"], "n0nce");
            assert_eq!(protected["url"], "https://ca.test/new-order");
            // Exactly one of kid and jwk (RFC 8555 §6.2).
            assert_eq!(protected.get("kid").is_some(), kid.is_some());
            assert_eq!(protected.get("jwk").is_some(), kid.is_none());
            let body: Value =
                serde_json::from_slice(&decode(jws["payload"].as_str().unwrap())).unwrap();
            assert_eq!(body, payload);
            let signature = decode(jws["signature"].as_str().unwrap());
            assert_eq!(signature.len(), 64, "r||s, not DER");
            let input = format!(
                "{}.{}",
                jws["protected"].as_str().unwrap(),
                jws["payload"].as_str().unwrap()
            );
            let public = key.pair.public_key().as_ref().to_vec();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
                .verify(input.as_bytes(), &signature)
                .unwrap();
        }
        // POST-as-GET: an empty payload.
        let jws = key
            .sign("https://ca.test/o/1", "n", Some("k"), None)
            .unwrap();
        assert_eq!(jws["payload"], "");
    }

    #[test]
    fn the_stored_key_gives_the_same_account() {
        let key = AccountKey::generate().unwrap();
        let again = AccountKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(key.jwk(), again.jwk());
        assert_eq!(key.thumbprint(), again.thumbprint());
        assert!(AccountKey::from_pkcs8(b"not a key").is_err());
        let text = format!("{:?}", key);
        assert_eq!(text, "AccountKey(..)");
    }

    #[test]
    fn thumbprint_follows_rfc_7638() {
        // The thumbprint is SHA-256 of {"crv","kty","x","y"} with no spaces: recomputed here
        // from the JWK serde writes (same order, since serde_json sorts keys).
        let key = AccountKey::generate().unwrap();
        let jwk = key.jwk().to_string();
        assert!(
            jwk.starts_with(r#"{"crv":"P-256","kty":"EC","x":""#),
            "{jwk}"
        );
        let expected =
            b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, jwk.as_bytes()).as_ref());
        assert_eq!(key.thumbprint(), expected);
        assert_eq!(key.thumbprint().len(), 43);
        let auth = key.key_authorization("tok-EN_1");
        assert_eq!(auth, format!("tok-EN_1.{}", key.thumbprint()));
    }

    #[test]
    fn external_binding_is_an_hmac_over_the_account_jwk() {
        let key = AccountKey::generate().unwrap();
        let mac = b64(b"0123456789abcdef0123456789abcdef");
        let eab = key
            .external_binding("https://ca.test/new-account", "kid-1", &mac)
            .unwrap();
        let protected: Value =
            serde_json::from_slice(&decode(eab["protected"].as_str().unwrap())).unwrap();
        assert_eq!(
            protected,
            json!({"alg": "HS256", "kid": "kid-1", "url": "https://ca.test/new-account"})
        );
        let payload: Value =
            serde_json::from_slice(&decode(eab["payload"].as_str().unwrap())).unwrap();
        assert_eq!(payload, key.jwk());
        let input = format!(
            "{}.{}",
            eab["protected"].as_str().unwrap(),
            eab["payload"].as_str().unwrap()
        );
        let hmac = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            b"0123456789abcdef0123456789abcdef",
        );
        aws_lc_rs::hmac::verify(
            &hmac,
            input.as_bytes(),
            &decode(eab["signature"].as_str().unwrap()),
        )
        .unwrap();
        assert!(key.external_binding("u", "k", "not base64!").is_err());
    }
}
