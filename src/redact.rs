//! The secrets erpdrop holds, and [`redact`], which masks each of them as `***`.
//!
//! A secret is registered ([`add`]) when it is read: the credentials the config takes
//! from the environment (bearer token, basic user and password and their base64 form,
//! a key header's value, `{ env = ... }` headers), and any token fetched at run time
//! (an OAuth2 or session token), which is added the same way when it arrives.
//!
//! Redaction is applied twice: where foreign text enters (every message the HTTP target
//! makes from an answer's body or headers or from a transport error), and again at every
//! sink (reports, the ledger, `status`, the summaries, the log writer), so that a text
//! that reached a sink by a path the first line missed is masked all the same.
//!
//! With no secret registered (the outbox target) [`redact`] is one atomic load.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// What a secret is replaced by.
pub const MASK: &str = "***";

/// Whether any secret is registered (the fast path of [`redact`]).
static ANY: AtomicBool = AtomicBool::new(false);

/// The secrets, longest first: a secret that contains another is masked whole.
static SECRETS: RwLock<Vec<Box<str>>> = RwLock::new(Vec::new());

/// Registers a secret: from now on it is masked wherever it appears. An empty value
/// is ignored (it would mask nothing), as is one already registered.
pub fn add(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if all.iter().any(|s| &**s == secret) {
        return;
    }
    all.push(secret.into());
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    ANY.store(true, Ordering::Release);
}

/// Whether any secret is registered.
pub fn any() -> bool {
    ANY.load(Ordering::Acquire)
}

/// `text` with every registered secret replaced by [`MASK`]; borrowed when it holds
/// none.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !any() {
        return Cow::Borrowed(text);
    }
    let all = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out: Option<String> = None;
    for secret in all.iter() {
        let current = out.as_deref().unwrap_or(text);
        if current.contains(&**secret) {
            out = Some(current.replace(&**secret, MASK));
        }
    }
    match out {
        Some(o) => Cow::Owned(o),
        None => Cow::Borrowed(text),
    }
}

/// [`redact`] for an owned text: the same `String` back when it holds no secret.
pub fn redact_string(text: String) -> String {
    match redact(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(o) => o,
    }
}

/// Redacts a text in place.
pub fn redact_in_place(text: &mut String) {
    if let Cow::Owned(o) = redact(text) {
        *text = o;
    }
}

/// Redacts an optional text in place.
pub fn redact_opt(text: &mut Option<String>) {
    if let Some(t) = text {
        redact_in_place(t);
    }
}

/// Redacts every string of a JSON value (object keys included), in place.
pub fn redact_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => redact_in_place(s),
        Value::Array(a) => a.iter_mut().for_each(redact_json),
        Value::Object(o) => {
            if o.keys().any(|k| matches!(redact(k), Cow::Owned(_))) {
                let entries = std::mem::take(o);
                for (k, mut val) in entries {
                    redact_json(&mut val);
                    o.insert(redact_string(k), val);
                }
            } else {
                o.values_mut().for_each(redact_json);
            }
        }
        _ => {}
    }
}

/// Whether `text` holds a registered secret as it would be written inside a JSON
/// string (escaped), or as it is.
pub fn in_json_text(text: &str) -> bool {
    if !any() {
        return false;
    }
    let all = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    all.iter().any(|s| {
        text.contains(&**s) || {
            // `"..."`: the escaped text between the quotes
            let quoted = serde_json::to_string(&**s).unwrap_or_default();
            quoted.len() > 2 && text.contains(&quoted[1..quoted.len() - 1])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The registry is global to the process: each test uses secrets of its own.

    #[test]
    fn every_secret_is_masked_the_longest_first() {
        add("unit-s3cret");
        add("unit-s3cret-longer");
        add("");
        assert_eq!(
            redact("a unit-s3cret-longer and a unit-s3cret, twice unit-s3cret"),
            "a *** and a ***, twice ***"
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        let mut s = Some("Bearer unit-s3cret".to_string());
        redact_opt(&mut s);
        assert_eq!(s.as_deref(), Some("Bearer ***"));
    }

    #[test]
    fn json_values_are_masked_in_their_strings_only() {
        add("js0n-secret");
        let mut v = serde_json::json!({
            "message": "echo js0n-secret",
            "list": ["js0n-secret", 1],
            "js0n-secret": true,
            "n": 3
        });
        redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"message": "echo ***", "list": ["***", 1], "***": true, "n": 3})
        );
        add("quo\"te-secret");
        assert!(in_json_text(r#"{"m":"a quo\"te-secret"}"#));
        assert!(!in_json_text(r#"{"m":"clean"}"#));
    }
}
