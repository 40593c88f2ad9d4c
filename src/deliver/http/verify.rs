//! Asking the ERP whether it has a document whose earlier attempt has no known outcome
//! (`target.verify`), before it is sent again.
//!
//! Most ERPs ignore `Idempotency-Key`: a create that timed out after the request went
//! out may have been committed, and sending it again would make a second invoice. With
//! `verify`, the document is looked up first (a search by its key): an id at
//! `found_pointer` settles it as accepted with that id; an answer without one (an empty
//! list, a null, a 404) means the ERP does not have it, and it is sent. An answer that
//! says neither (a 5xx, a timeout, an error at `error_pointer`, a body that is not JSON)
//! settles nothing: the document is not sent, and stays in flight for the next run.
//! Only creates are verified: an update or a delete sent twice changes nothing more.

use super::answer::{error_text, not_delivery, read_body, scalar_text, transport_message};
use super::url::fill;
use super::{Attempt, HttpTarget};
use crate::config::Verify;
use crate::deliver::{DocContext, LookUp, SubmitOutcome};
use crate::spool::SpooledDoc;

/// What the ERP said when asked.
pub(super) enum Found {
    /// It has the document; its id, if the answer gives one as a scalar.
    Yes { id: Option<String>, status: u16 },
    /// It does not: send it.
    No,
    /// The question was not answered; what to do with the attempt.
    Unanswered(Attempt),
}

impl HttpTarget {
    /// Asks the ERP (`verify`) whether it has `doc`.
    pub(super) fn verify(&self, v: &Verify, ctx: &DocContext<'_>, key: &str) -> Found {
        let url = fill(&v.url, ctx, key, None);
        let body = v.body.as_ref().map(|b| fill_body(b, ctx, key));
        // through the one place of every request: the rate limit, the credential
        let answer = self.exchange(&v.method, &url, |req| match &body {
            Some(b) => req.set("Content-Type", "application/json").send_string(b),
            None => req.call(),
        });
        let answer = match answer {
            Ok(answer) => answer,
            // no credential: the login or token endpoint refused, or is down
            Err(message) => return Found::Unanswered(Attempt::Down { message }),
        };
        let unanswered = |message: String| {
            Found::Unanswered(Attempt::Transient {
                message: format!("verify: {message}"),
                retry_after: None,
                // the document's own earlier attempt may have been delivered
                maybe_delivered: true,
            })
        };
        match answer {
            Ok(resp) if !(200..300).contains(&resp.status()) => Found::Unanswered(Attempt::Down {
                message: format!("verify: {}", not_delivery(&url, &resp)),
            }),
            Ok(resp) => {
                let status = resp.status();
                let body = read_body(resp);
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
                    return Found::Unanswered(Attempt::Down {
                        message: format!(
                            "verify: the answer of {url} is not JSON, so whether the ERP has document {} cannot be told: {}",
                            crate::problem::quote(key),
                            crate::redact::redact_string(crate::problem::bound(&body, 200).into_owned())
                        ),
                    });
                };
                if let Some(p) = &self.cfg.error_pointer {
                    if let Some(msg) = json.pointer(p).and_then(error_text) {
                        return Found::Unanswered(Attempt::Down {
                            message: format!(
                                "verify: {url} answered with an error: {} (check target.verify)",
                                crate::redact::redact_string(msg)
                            ),
                        });
                    }
                }
                match walk(&json, &v.found_pointer) {
                    Walk::At(found) if is_something(found) => Found::Yes {
                        id: scalar_text(found).map(crate::redact::redact_string),
                        status,
                    },
                    Walk::At(_) | Walk::Nothing => Found::No,
                    // an answer of another shape than the pointer expects (a JSON-RPC
                    // call answered without `{"result": ...}`, a search URL that is not
                    // one) says nothing about the document: never taken for "not there"
                    Walk::Unexpected(why) => Found::Unanswered(Attempt::Down {
                        message: format!(
                            "verify: the answer of {url} has no {} ({why}), so whether the ERP has document {} cannot be told (check target.verify.found_pointer)",
                            v.found_pointer,
                            crate::problem::quote(key)
                        ),
                    }),
                }
            }
            Err(ureq::Error::Status(404 | 410, _)) => Found::No,
            Err(ureq::Error::Status(code @ (401 | 403), resp)) => {
                let message = self.error_message(code, &read_body(resp));
                Found::Unanswered(Attempt::Down {
                    message: format!(
                        "verify: HTTP {code} from {url}: the ERP refused the credentials: {message} (check target.auth)"
                    ),
                })
            }
            Err(ureq::Error::Status(code, resp)) if code == 408 || code == 429 || code >= 500 => {
                let message = self.error_message(code, &read_body(resp));
                unanswered(format!("HTTP {code} from {url}: {message}"))
            }
            Err(ureq::Error::Status(code, resp)) => {
                // a 400 for the search itself: the setting, not the document
                let message = self.error_message(code, &read_body(resp));
                Found::Unanswered(Attempt::Down {
                    message: format!(
                        "verify: HTTP {code} from {url}: {message} (check target.verify)"
                    ),
                })
            }
            Err(ureq::Error::Transport(t)) => match self.tls.failure(&t, &url) {
                // a certificate error does not fix itself
                Some(message) => Found::Unanswered(Attempt::Down {
                    message: format!("verify: {message}"),
                }),
                None => unanswered(transport_message(&t, &url)),
            },
        }
    }

    /// Settles a document that may have reached the ERP: `Some` outcome when the ERP has
    /// it or cannot say; `None` when it does not have it (send it).
    pub(super) fn settle_unknown(
        &self,
        ctx: &DocContext<'_>,
        doc: &SpooledDoc,
    ) -> Option<Result<SubmitOutcome, Attempt>> {
        let v = self.cfg.verify.as_ref()?;
        if doc.operation != crate::ledger::Operation::Create {
            return None;
        }
        match self.verify(v, ctx, &doc.key) {
            Found::Yes { id, status } => {
                tracing::info!(document = %doc.key, id = id.as_deref().unwrap_or("-"), "verify: the ERP has it already, not sent again");
                Some(Ok(SubmitOutcome::Accepted {
                    id,
                    status: Some(status),
                }))
            }
            Found::No => {
                tracing::debug!(document = %doc.key, "verify: the ERP does not have it, sending");
                None
            }
            Found::Unanswered(a) => Some(Err(a)),
        }
    }

    /// [`RemoteTarget::look_up`](crate::deliver::RemoteTarget::look_up) for this target.
    pub(super) fn look_up_key(&self, ctx: &DocContext<'_>, key: &str) -> Option<LookUp> {
        let v = self.cfg.verify.as_ref()?;
        Some(match self.verify(v, ctx, key) {
            Found::Yes { id, .. } => LookUp::Has { id },
            Found::No => LookUp::HasNot,
            Found::Unanswered(Attempt::Transient { message, .. } | Attempt::Down { message }) => {
                LookUp::Unanswered(message)
            }
            Found::Unanswered(Attempt::Done(_)) => LookUp::Unanswered("no answer".into()),
        })
    }
}

/// Where a JSON pointer leads in an answer.
enum Walk<'a> {
    /// To this value.
    At(&'a serde_json::Value),
    /// Past the end of a list, or into a null: nothing was found.
    Nothing,
    /// Into a value of another shape (an object without that member, a number): the
    /// answer is not the one the pointer was written for.
    Unexpected(String),
}

/// Follows `pointer` (RFC 6901) through `v`, telling an empty search result (an index
/// past the end of a list, a null) from an answer of another shape.
fn walk<'a>(v: &'a serde_json::Value, pointer: &str) -> Walk<'a> {
    use serde_json::Value;
    let mut cur = v;
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        cur = match cur {
            Value::Null => return Walk::Nothing,
            Value::Array(a) => match part.parse::<usize>() {
                Ok(i) => match a.get(i) {
                    Some(x) => x,
                    None => return Walk::Nothing,
                },
                Err(_) => return Walk::Unexpected(format!("a list where {part:?} was expected")),
            },
            Value::Object(o) => match o.get(&part) {
                Some(x) => x,
                None => return Walk::Unexpected(format!("no member {part:?}")),
            },
            _ => return Walk::Unexpected(format!("a single value where {part:?} was expected")),
        };
    }
    Walk::At(cur)
}

/// Whether a value at `found_pointer` says that something was found: not null, not an
/// empty string, array or object, not `false`, not `0` (no ERP gives 0 as an id; a
/// count of 0 is nothing found).
fn is_something(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Bool(true) => true,
    }
}

/// A verify body with `{key}` filled in as a JSON string's content (quotes and
/// backslashes escaped), and `{document}` and `{mapping}` as they are.
fn fill_body(template: &str, ctx: &DocContext<'_>, key: &str) -> String {
    let quoted = serde_json::to_string(key).unwrap_or_default();
    let inner = &quoted[1..quoted.len() - 1];
    template
        .replace("{document}", ctx.document_type)
        .replace("{mapping}", ctx.mapping)
        .replace("{key}", inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_empty_search_is_nothing_and_an_answer_of_another_shape_is_unexpected() {
        let at = |v: serde_json::Value, p: &str| match walk(&v, p) {
            Walk::At(x) => format!("at {x}"),
            Walk::Nothing => "nothing".into(),
            Walk::Unexpected(_) => "unexpected".into(),
        };
        assert_eq!(at(json!([{"id": 5}]), "/0/id"), "at 5");
        assert_eq!(at(json!([]), "/0/id"), "nothing");
        assert_eq!(at(json!({"result": []}), "/result/0"), "nothing");
        assert_eq!(at(json!({"id": 1, "result": [7]}), "/result/0"), "at 7");
        assert_eq!(at(json!({"data": null}), "/data/id"), "nothing");
        // Tryton answering a call without "id": the bare result, no `result` member
        assert_eq!(at(json!([7]), "/result/0"), "unexpected");
        // a URL that is not a search
        assert_eq!(at(json!({"status": "ok"}), "/0/id"), "unexpected");
        assert_eq!(at(json!({"a/b": {"~": 1}}), "/a~1b/~0"), "at 1");
    }

    #[test]
    fn what_counts_as_found() {
        for v in [
            json!(null),
            json!(false),
            json!(""),
            json!([]),
            json!({}),
            json!(0),
        ] {
            assert!(!is_something(&v), "{v} is nothing found");
        }
        for v in [
            json!(7),
            json!("INV-1"),
            json!([3]),
            json!({"id": 3}),
            json!(true),
        ] {
            assert!(is_something(&v), "{v} is something found");
        }
    }

    #[test]
    fn the_key_goes_into_a_body_as_json_string_content() {
        let ctx = DocContext {
            mapping: "invoices",
            document_type: "invoice",
        };
        let body =
            r#"{"method": "model.{document}.search", "params": [[["reference", "=", "{key}"]]]}"#;
        let got = fill_body(body, &ctx, r#"INV "1"\2"#);
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["params"][0][0][2], r#"INV "1"\2"#);
        assert_eq!(v["method"], "model.invoice.search");
    }
}
