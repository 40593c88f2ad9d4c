//! Batches: up to `batch.size` creates of one group in one request (`batch.body`, with
//! `{payloads}` the JSON array of their payloads), the ERP's ids read from the array at
//! `batch.ids_pointer`, in the documents' order.
//!
//! - Transient failures retry the whole batch, under one `Idempotency-Key` derived
//!   from its documents' keys (the same batch always has the same key). With
//!   `verify`, a batch that may have been taken (a timeout after it went out), and a
//!   document an earlier run may have delivered, are first looked up in the ERP one
//!   document at a time: those it has are accepted with their ids, the rest go again.
//! - A refused batch (a 4xx, or an error at `error_pointer` in a 2xx) of one document
//!   rejects it with the ERP's message. A larger one, with `all_or_nothing` (the ERP
//!   created none of it), is split in halves, each sent again, until every bad
//!   document is rejected alone and every good one accepted: about 2 log2(n) requests
//!   for one bad document in n. Without `all_or_nothing`, the ERP may have created part
//!   of it and no answer says which: every document of it is in doubt, and none is
//!   sent again (a resend could create one twice). A 413 (the request is too large)
//!   is split either way: the ERP refused it before reading it.
//! - A 2xx that does not give an id for each document (fewer ids, or none at
//!   `ids_pointer`) does not say which were created: those documents are in doubt too.

use super::answer::{error_text, not_delivery, read_body, scalar_text};
use super::url::fill;
use super::{envelope, idempotency_key, Attempt, HttpTarget};
use crate::config::BatchConfig;
use crate::deliver::{Cancel, DocContext, SubmitOutcome};
use crate::spool::SpooledDoc;
use sha2::{Digest, Sha256};

/// What the ERP said to one batch request.
enum Answer {
    /// Created, with the id of each document where the answer gives one (`Err`: why
    /// it gives none for that document).
    Created {
        status: u16,
        ids: Vec<Result<Option<String>, String>>,
    },
    /// Refused with the ERP's message.
    Refused { status: u16, message: String },
    /// No answer, and the ERP may have taken the request (a timeout after it went
    /// out): with `verify`, the ERP is asked about each document before it goes again.
    Unknown,
}

/// The `Idempotency-Key` of a batch: sha256 of its documents' keys, in order.
pub(super) fn batch_key(docs: &[&SpooledDoc], mapping: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"batch");
    for d in docs {
        h.update([0]);
        h.update(idempotency_key(d, mapping).as_bytes());
    }
    hex::encode(h.finalize())
}

impl HttpTarget {
    /// Sends creates of one group as batches (see the module's doc): an outcome for each
    /// document, in order.
    pub(super) fn send_creates(
        &self,
        b: &BatchConfig,
        ctx: &DocContext<'_>,
        docs: &[SpooledDoc],
        cancel: &Cancel<'_>,
    ) -> Vec<SubmitOutcome> {
        // a document an earlier attempt may have delivered: the ERP is asked first
        // (`verify`), and one it has already is not sent again
        let mut settled: Vec<Option<SubmitOutcome>> = Vec::new();
        if self.cfg.verify.is_some() && docs.iter().any(|d| d.resend) {
            settled = docs
                .iter()
                .map(|d| d.resend.then(|| self.verified(ctx, d, cancel)).flatten())
                .collect();
        }
        let to_send: Vec<&SpooledDoc> = docs
            .iter()
            .enumerate()
            .filter(|(i, _)| settled.get(*i).is_none_or(Option::is_none))
            .map(|(_, d)| d)
            .collect();
        let mut sent = Vec::with_capacity(to_send.len());
        for part in to_send.chunks(b.size.max(1)) {
            self.send_part(b, ctx, part, cancel, &mut sent, 1);
        }
        if settled.is_empty() {
            return sent;
        }
        let mut sent = sent.into_iter();
        settled
            .into_iter()
            .map(|s| {
                s.or_else(|| sent.next())
                    .expect("an outcome for each document")
            })
            .collect()
    }

    /// What the ERP (`verify`) says of a document that an attempt may have delivered:
    /// `Some` outcome when that settles it (it has it, or cannot say), `None` to send it.
    fn verified(
        &self,
        ctx: &DocContext<'_>,
        doc: &SpooledDoc,
        cancel: &Cancel<'_>,
    ) -> Option<SubmitOutcome> {
        let asked = self.retrying(&doc.key, true, cancel, || {
            match self.settle_unknown(ctx, doc) {
                Some(Ok(outcome)) => Attempt::Done(Some(outcome)),
                None => Attempt::Done(None),
                Some(Err(Attempt::Done(outcome))) => Attempt::Done(Some(outcome)),
                Some(Err(Attempt::Down { message })) => Attempt::Down { message },
                Some(Err(Attempt::Transient {
                    message,
                    retry_after,
                    maybe_delivered,
                })) => Attempt::Transient {
                    message,
                    retry_after,
                    maybe_delivered,
                },
            }
        });
        match asked {
            Ok(outcome) => outcome,
            Err((message, maybe_delivered)) => Some(SubmitOutcome::Unavailable {
                message,
                maybe_delivered,
            }),
        }
    }

    fn send_part(
        &self,
        b: &BatchConfig,
        ctx: &DocContext<'_>,
        docs: &[&SpooledDoc],
        cancel: &Cancel<'_>,
        out: &mut Vec<SubmitOutcome>,
        round: u32,
    ) {
        let skip = |out: &mut Vec<SubmitOutcome>, reason| {
            out.extend(docs.iter().map(|_| SubmitOutcome::Skipped { reason }));
        };
        if cancel.is_down() {
            return skip(out, "not sent: the target was unavailable");
        }
        if cancel.is_stopped() {
            return skip(out, "not sent: the run was stopped");
        }
        let what = match docs {
            [one] => one.key.clone(),
            _ => format!(
                "{} .. {} ({} documents)",
                docs[0].key,
                docs[docs.len() - 1].key,
                docs.len()
            ),
        };
        let resend = docs.iter().any(|d| d.resend);
        // with verify, a request that may have been taken is not simply sent again (an
        // ERP that ignores the key would create it twice): the ERP is asked first, a
        // few rounds at most, then the retries go on as without verify
        let ask = self.cfg.verify.is_some() && round < self.cfg.retry.attempts;
        let answer = self.retrying(&what, resend, cancel, || {
            match self.batch_attempt(b, ctx, docs) {
                Attempt::Transient {
                    maybe_delivered: true,
                    ..
                } if ask => Attempt::Done(Answer::Unknown),
                other => other,
            }
        });
        match answer {
            Ok(Answer::Unknown) => {
                let asked: Vec<Option<SubmitOutcome>> =
                    docs.iter().map(|d| self.verified(ctx, d, cancel)).collect();
                let rest: Vec<&SpooledDoc> = docs
                    .iter()
                    .zip(&asked)
                    .filter(|(_, a)| a.is_none())
                    .map(|(d, _)| *d)
                    .collect();
                let mut again = Vec::with_capacity(rest.len());
                if !rest.is_empty() {
                    self.send_part(b, ctx, &rest, cancel, &mut again, round + 1);
                }
                let mut again = again.into_iter();
                out.extend(asked.into_iter().map(|a| {
                    a.or_else(|| again.next())
                        .expect("an outcome for each document")
                }));
            }
            Ok(Answer::Created { status, ids }) => {
                out.extend(ids.into_iter().map(|id| match id {
                    Ok(id) => SubmitOutcome::Accepted {
                        id,
                        status: Some(status),
                    },
                    Err(message) => SubmitOutcome::InDoubt {
                        status: Some(status),
                        message,
                    },
                }));
            }
            Ok(Answer::Refused { status, message }) if docs.len() == 1 => {
                out.push(SubmitOutcome::Rejected {
                    status: Some(status),
                    message,
                });
            }
            // none of it was created (all or nothing; or too large a request, which the
            // ERP refused before reading it): each half again, until each bad one is
            // alone
            Ok(Answer::Refused { status, .. }) if b.all_or_nothing || status == 413 => {
                let (left, right) = docs.split_at(docs.len().div_ceil(2));
                self.send_part(b, ctx, left, cancel, out, round);
                self.send_part(b, ctx, right, cancel, out, round);
            }
            Ok(Answer::Refused { status, message }) => {
                let message = format!(
                    "the ERP refused the batch of {} documents it was in ({message}), and without target.batch.all_or_nothing it is not known which of them it created",
                    docs.len()
                );
                out.extend(docs.iter().map(|_| SubmitOutcome::InDoubt {
                    status: Some(status),
                    message: message.clone(),
                }));
            }
            Err((message, maybe_delivered)) => {
                out.extend(docs.iter().map(|_| SubmitOutcome::Unavailable {
                    message: message.clone(),
                    maybe_delivered,
                }));
            }
        }
    }

    /// One request with these documents.
    fn batch_attempt(
        &self,
        b: &BatchConfig,
        ctx: &DocContext<'_>,
        docs: &[&SpooledDoc],
    ) -> Attempt<Answer> {
        let url = fill(&self.cfg.url, ctx, "", None);
        let body = envelope::batch_body(&b.body, ctx, docs.iter().map(|d| &d.body[..]));
        let key = batch_key(docs, ctx.mapping);
        let sent = self.exchange("POST", &url, |req| {
            self.content_type_of(req)
                .set("Idempotency-Key", &key)
                .send_bytes(&body)
        });
        let sent = match sent {
            Ok(sent) => sent,
            Err(message) => return Attempt::Down { message },
        };
        let resp = match sent {
            Ok(resp) if !(200..300).contains(&resp.status()) => {
                return Attempt::Down {
                    message: not_delivery(&url, &resp),
                }
            }
            Ok(resp) => resp,
            Err(e) => {
                return self.failed(&url, e, |status, message| Answer::Refused {
                    status,
                    message,
                })
            }
        };
        let status = resp.status();
        let text = read_body(resp);
        let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        if let (Some(p), Some(j)) = (&self.cfg.error_pointer, &json) {
            if let Some(msg) = j.pointer(p).and_then(error_text) {
                return Attempt::Done(Answer::Refused {
                    status,
                    message: crate::redact::redact_string(msg),
                });
            }
        }
        Attempt::Done(Answer::Created {
            status,
            ids: ids_of(b.ids_pointer.as_deref(), json.as_ref(), docs.len()),
        })
    }
}

/// The id of each of `n` documents from a batch's answer: the array at `pointer`, one
/// id for each document in order. An answer whose array does not hold `n` ids, or an
/// element that is not an id, does not say that the document was created (`Err`, why).
fn ids_of(
    pointer: Option<&str>,
    json: Option<&serde_json::Value>,
    n: usize,
) -> Vec<Result<Option<String>, String>> {
    let Some(p) = pointer else {
        return vec![Ok(None); n];
    };
    let unknown = |why: String| vec![Err(why); n];
    let Some(found) = json.and_then(|j| j.pointer(p)) else {
        return unknown(format!(
            "the ERP accepted the batch of {n} documents it was in, but its answer has no ids at {p} (target.batch.ids_pointer)"
        ));
    };
    let Some(ids) = found.as_array() else {
        return unknown(format!(
            "the ERP accepted the batch of {n} documents it was in, but its answer has no array of ids at {p} (target.batch.ids_pointer)"
        ));
    };
    if ids.len() != n {
        return unknown(format!(
            "the ERP answered {} ids for the batch of {n} documents it was in, so the answer does not say which of them it created",
            ids.len()
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(i, v)| {
            scalar_text(v)
                .map(|id| Some(crate::redact::redact_string(id)))
                .ok_or_else(|| {
                    format!(
                        "the ERP's answer to its batch has {} at {p}/{i}, where its id should be",
                        crate::redact::redact_string(
                            crate::problem::bound(&v.to_string(), 200).into_owned()
                        )
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Operation;
    use serde_json::json;

    fn doc(key: &str) -> SpooledDoc {
        SpooledDoc {
            key: key.into(),
            line: 2,
            content_hash: format!("h-{key}"),
            operation: Operation::Create,
            erp_id: None,
            deletions: 0,
            updates: 0,
            body: Vec::new(),
            resend: false,
            ordinal: 0,
        }
    }

    #[test]
    fn a_batch_key_is_its_documents_keys_in_order() {
        let (a, b, c) = (doc("A"), doc("B"), doc("C"));
        let ab = batch_key(&[&a, &b], "m");
        assert_eq!(ab.len(), 64);
        assert_eq!(ab, batch_key(&[&a, &b], "m"));
        assert_ne!(ab, batch_key(&[&b, &a], "m"));
        assert_ne!(ab, batch_key(&[&a, &b, &c], "m"));
        assert_ne!(ab, batch_key(&[&a, &b], "n"));
        assert_ne!(batch_key(&[&a], "m"), idempotency_key(&a, "m"));
    }

    #[test]
    fn ids_are_taken_only_when_the_answer_has_one_for_each_document() {
        let ok = ids_of(Some("/result"), Some(&json!({"result": [7, "8"]})), 2);
        assert_eq!(ok, vec![Ok(Some("7".into())), Ok(Some("8".into()))]);
        // fewer ids than documents: none of them is known to be created
        let short = ids_of(Some("/result"), Some(&json!({"result": [7]})), 2);
        assert!(short.iter().all(|r| r
            .as_ref()
            .is_err_and(|m| m.contains("1 ids for the batch of 2"))));
        let none = ids_of(Some("/result"), Some(&json!({"id": 7})), 2);
        assert!(none.iter().all(Result::is_err));
        let not_json = ids_of(Some("/result"), None, 1);
        assert!(not_json[0].is_err());
        // one element that is not an id: that document alone
        let mixed = ids_of(Some("/ids"), Some(&json!({"ids": [1, null]})), 2);
        assert_eq!(mixed[0], Ok(Some("1".into())));
        assert!(mixed[1].as_ref().is_err_and(|m| m.contains("/ids/1")));
        // no ids_pointer: accepted, without ids
        assert_eq!(ids_of(None, None, 2), vec![Ok(None), Ok(None)]);
    }
}
