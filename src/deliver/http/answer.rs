//! Reading the ERP's answers: bodies, error texts, ids, redirects and transport
//! errors turned into messages, with the secrets masked.

use std::io::Read;

/// At most this many characters of a header the ERP sent go into a message.
pub(super) const HEADER_SHOWN: usize = 500;

/// The most of an answer's body that is read (an ERP that answers an error with a
/// dump of its data must not hold a worker's memory).
const BODY_READ: u64 = 1 << 20;

pub(super) fn read_body(resp: ureq::Response) -> String {
    let mut s = String::new();
    let mut r = resp.into_reader().take(BODY_READ + 1);
    let _ = r.read_to_string(&mut s);
    if s.len() as u64 > BODY_READ {
        // cut at a character boundary, and say so where it shows
        let mut at = BODY_READ as usize;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push_str(" [the answer is longer than 1 MiB: erpdrop read only its first MiB]");
    }
    s
}

pub(super) fn error_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null | serde_json::Value::Bool(false) => None,
        serde_json::Value::String(s) if s.trim().is_empty() => None,
        serde_json::Value::String(s) => Some(s.trim().to_string()),
        serde_json::Value::Array(a) if a.is_empty() => None,
        other => Some(other.to_string()),
    }
}

pub(super) fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Why an answer that ureq took for a success (a 1xx or 3xx: redirects are not
/// followed) is not delivery; a redirect names where the ERP points.
pub(super) fn not_delivery(url: &str, resp: &ureq::Response) -> String {
    let code = resp.status();
    if (300..400).contains(&code) {
        match resp.header("Location") {
            Some(to) => {
                let to: String = to.chars().take(HEADER_SHOWN).collect();
                crate::redact::redact_string(format!(
                    "HTTP {code} from {url}: the ERP redirects to {to}; erpdrop never follows a redirect (a write would be lost): fix target.url"
                ))
            }
            None => format!(
                "HTTP {code} from {url}: a redirect without a Location; erpdrop never follows a redirect: check target.url"
            ),
        }
    } else {
        format!("HTTP {code} from {url}: not an answer erpdrop takes as delivery (only a 2xx is)")
    }
}

pub(super) fn transport_message(t: &ureq::Transport, url: &str) -> String {
    crate::redact::redact_string(transport_words(t, url))
}

pub(super) fn transport_words(t: &ureq::Transport, url: &str) -> String {
    // The kind, ureq's message and the cause (e.g. "timed out", "Connection refused");
    // never the request's headers.
    let mut msg = format!("{url}: {}", t.kind());
    if let Some(m) = t.message() {
        msg.push_str(": ");
        msg.push_str(m);
    }
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        msg.push_str(": ");
        msg.push_str(&e.to_string());
        source = e.source();
    }
    msg
}

/// The ERP's own words for an error: the body at `error_pointer`, or a usual place
/// (`/message`, `/error/message`, `/error`, `/detail`, `/title`), or the body text.
pub(super) fn error_words(error_pointer: Option<&str>, code: u16, body: &str) -> String {
    if let Ok(j) = serde_json::from_str::<serde_json::Value>(body) {
        let mut pointers: Vec<&str> = Vec::new();
        if let Some(p) = error_pointer {
            pointers.push(p);
        }
        pointers.extend(["/message", "/error/message", "/error", "/detail", "/title"]);
        for p in pointers {
            if let Some(t) = j.pointer(p).and_then(error_text) {
                return t;
            }
        }
    }
    let text = body.trim();
    if text.is_empty() {
        return format!("HTTP {code}");
    }
    // a body that is not JSON (or was cut): its beginning, saying how much is left out
    const SHOWN: usize = 500;
    let total = text.chars().count();
    if total <= SHOWN {
        return text.to_string();
    }
    let shown: String = text.chars().take(SHOWN).collect();
    let cut = if text.ends_with("erpdrop read only its first MiB]") {
        " [the answer is longer than 1 MiB]"
    } else {
        ""
    };
    format!(
        "{shown}... ({} more characters of the answer){cut}",
        crate::problem::group_digits((total - SHOWN) as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_answer_that_is_not_json_says_how_much_is_left_out() {
        let body = "x".repeat(2_000);
        let w = error_words(None, 500, &body);
        assert!(w.starts_with(&"x".repeat(500)), "{w}");
        assert!(
            w.ends_with("... (1,500 more characters of the answer)"),
            "{w}"
        );
        let cut = format!(
            "{}{}",
            "y".repeat(700),
            " [the answer is longer than 1 MiB: erpdrop read only its first MiB]"
        );
        let w = error_words(None, 500, &cut);
        assert!(w.ends_with("[the answer is longer than 1 MiB]"), "{w}");
        assert_eq!(error_words(None, 502, "Bad gateway"), "Bad gateway");
    }

    #[test]
    fn error_text_skips_empty_values() {
        assert_eq!(error_text(&serde_json::json!(null)), None);
        assert_eq!(error_text(&serde_json::json!("")), None);
        assert_eq!(
            error_text(&serde_json::json!("Unknown account")).as_deref(),
            Some("Unknown account")
        );
    }
}
