//! The URLs of requests: templates filled with a document's key and ERP id, encoded
//! as path segments, and the keys that would change a request's path.

use crate::deliver::DocContext;

/// A URL template with `{document}`, `{mapping}`, `{key}` and `{id}` filled in (key and
/// id percent-encoded as path segments).
pub(super) fn fill(template: &str, ctx: &DocContext<'_>, key: &str, id: Option<&str>) -> String {
    let mut url = template
        .replace("{document}", ctx.document_type)
        .replace("{mapping}", ctx.mapping)
        .replace("{key}", &url_segment(key));
    if let Some(id) = id {
        url = url.replace("{id}", &url_segment(id));
    }
    url
}

/// Percent-encodes a key for a URL path segment. `.` and `..` stay as they are: no
/// encoding of them survives a URL parser (WHATWG URL treats `%2e` as `.`), so such a
/// key is refused before sending (see [`key_changes_path`]).
pub(super) fn url_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a path segment is a dot segment as a URL parser sees it (`.`, `..`, or the
/// same with `%2e`): it would be normalised away, changing the path.
fn is_dot_segment(seg: &str) -> bool {
    let seg = seg.to_ascii_lowercase();
    matches!(
        seg.as_str(),
        "." | ".." | "%2e" | ".%2e" | "%2e." | "%2e%2e"
    )
}

/// The path segments of a URL (after `scheme://host`, before `?` or `#`).
fn path_segments(url: &str) -> impl Iterator<Item = &str> {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[after_scheme..];
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.split('/').skip(1)
}

/// Whether `url`, made with a document's key, has a path that the same URL made with
/// a plain key (`x`) does not: a key of `.` or `..` (a dot segment, normalised away) or
/// an empty key (an empty segment) would send the document to another resource.
pub(super) fn key_changes_path(url: &str, plain: &str) -> bool {
    let mut a = path_segments(url);
    let mut b = path_segments(plain);
    loop {
        match (a.next(), b.next()) {
            (None, None) => return false,
            (Some(x), Some(y)) => {
                if (is_dot_segment(x) && !is_dot_segment(y)) || (x.is_empty() && !y.is_empty()) {
                    return true;
                }
            }
            _ => return true,
        }
    }
}

/// `http://host:8000/api/{document}` -> `http://host:8000/`.
pub(super) fn base_url(url: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => url[..after_scheme + i + 1].to_string(),
        None => format!("{url}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_and_segments() {
        assert_eq!(
            base_url("http://127.0.0.1:8000/api/{document}"),
            "http://127.0.0.1:8000/"
        );
        assert_eq!(base_url("https://erp.example"), "https://erp.example/");
        assert_eq!(url_segment("INV 1/2"), "INV%201%2F2");
    }

    #[test]
    fn only_a_key_that_would_change_the_path_is_refused() {
        let t = "http://h:1/api/{key}/lines?ref={key}";
        let url = |k: &str| t.replace("{key}", &url_segment(k));
        let changes = |k: &str| key_changes_path(&url(k), &url("x"));
        for k in [".", "..", ""] {
            assert!(changes(k), "{k:?}");
        }
        for k in ["...", "a.b", ".a", "%2e", "%2E%2E", "a/..", "x"] {
            assert!(!changes(k), "{k:?}");
        }
        // in the query only: no path to change
        let q = |k: &str| format!("http://h:1/api?ref={}", url_segment(k));
        assert!(!key_changes_path(&q(".."), &q("x")));
        assert!(is_dot_segment("%2E%2e") && is_dot_segment(".%2E") && !is_dot_segment("..."));
    }
}
