//! Who signs the API's tokens, and the keys that seal personal data.

use super::Findings;
use crate::settings::Settings;
use std::collections::HashSet;

impl Settings {
    /// Exactly one source of token keys, and what a token must say.
    pub(super) fn check_auth(&self, found: &mut Findings) {
        let auth = &self.auth;
        for (key, value, problem) in auth.oidc.problems() {
            found.add(key, value, problem);
        }
        if auth.key_source().is_none() {
            let given: Vec<&str> = [
                (!auth.jwks_url.trim().is_empty()).then_some("jwks_url"),
                (!auth.jwks_file.trim().is_empty()).then_some("jwks_file"),
                auth.development_keys.then_some("development_keys"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let problem = if given.is_empty() {
                "nothing verifies the API's bearer tokens: set auth.jwks_url (your identity \
                 provider's JWKS endpoint) or auth.jwks_file; or, for development only, \
                 auth.development_keys = true, with which this service signs tokens with a key \
                 it keeps on disk and anyone who can read that file can act as anyone"
            } else {
                "choose one source of token keys: auth.jwks_url, auth.jwks_file or \
                 auth.development_keys"
            };
            found.add("auth", given.join(", "), problem);
        }
        if auth.issuer.trim().is_empty() {
            found.add(
                "auth.issuer",
                "",
                "give the `iss` tokens must carry: the identity provider's issuer URL",
            );
        }
        if auth.audience.trim().is_empty() {
            found.add(
                "auth.audience",
                "",
                "give the `aud` tokens must carry: this service's client id at the provider",
            );
        }
        let url = auth.jwks_url.trim();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            found.add("auth.jwks_url", url, "must be an http(s) URL");
        }
    }

    /// The keys: each readable and 32 bytes long, ids unique, the current one among them.
    pub(super) fn check_crypto(&self, found: &mut Findings) {
        let crypto = &self.crypto;
        let mut ids = HashSet::new();
        for (i, key) in crypto.keys.iter().enumerate() {
            if key.id.trim().is_empty() {
                found.add(
                    format!("crypto.keys[{i}].id"),
                    &key.id,
                    "a key needs an id: it is written beside every record it seals",
                );
            } else if !ids.insert(key.id.as_str()) {
                found.add(
                    format!("crypto.keys[{i}].id"),
                    &key.id,
                    "duplicate key id: a record names its key by id",
                );
            }
            if let Err(problem) = key.material() {
                found.add(
                    format!("crypto.keys[{i}].{}", problem.field),
                    problem.value,
                    problem.problem,
                );
            }
        }
        if !ids.contains(crypto.current.as_str()) {
            let known = crypto
                .keys
                .iter()
                .map(|k| format!("`{}`", k.id))
                .collect::<Vec<_>>()
                .join(", ");
            found.add(
                "crypto.current",
                &crypto.current,
                format!(
                    "no key in [[crypto.keys]] has this id (known: {known}): new records could \
                     not be sealed"
                ),
            );
        }
    }
}
