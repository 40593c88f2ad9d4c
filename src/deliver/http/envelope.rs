//! Request bodies made of a template and payloads: the envelope of one document
//! (`body`, `{payload}`), the body of a batch (`batch.body`, `{payloads}`), and that
//! of an update or a delete (`update.body`, `delete.body`: `{id}`, `{key}`,
//! `{payload}`). Every template may use `{document}` and `{mapping}`.
//!
//! A payload goes in as it is, byte for byte (a JSON payload is JSON inside a JSON-RPC
//! envelope). An XML payload loses its XML declaration (`<?xml ...?>`), which may only
//! open a document: inside a SOAP envelope it would make the body ill-formed.

use crate::deliver::DocContext;
use crate::spool::SpooledDoc;

/// The payload as it goes into a template: without a leading byte order mark or XML
/// declaration (and the blank after it).
fn inner(payload: &[u8]) -> &[u8] {
    let p = payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload);
    if let Some(rest) = p.strip_prefix(b"<?xml") {
        if let Some(end) = rest.windows(2).position(|w| w == b"?>") {
            let after = &rest[end + 2..];
            let blank = after.iter().take_while(|b| b.is_ascii_whitespace()).count();
            return &after[blank..];
        }
    }
    p
}

/// `template` with its placeholders (`{name}`) filled in by `fill`, which writes a
/// name's value into the body and says whether it knew the name (an unknown one stays
/// as it is). One pass over the template: a value is never read for placeholders.
fn expand(template: &str, extra: usize, fill: impl Fn(&str, &mut Vec<u8>) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + extra);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..open]);
        let after = &rest[open + 1..];
        let name = after
            .find('}')
            .map(|close| &after[..close])
            .filter(|n| n.len() <= 16 && n.bytes().all(|b| b.is_ascii_lowercase()));
        match name {
            Some(n) if fill(n, &mut out) => rest = &after[n.len() + 1..],
            _ => {
                out.push(b'{');
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// A value as the content of a JSON string (quotes and backslashes escaped): a number
/// or a plain code stays as it is.
fn json_text(out: &mut Vec<u8>, v: &str) {
    let quoted = serde_json::to_string(v).unwrap_or_default();
    out.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
}

/// `{document}` and `{mapping}`, which every template may use.
fn context(name: &str, ctx: &DocContext<'_>, out: &mut Vec<u8>) -> bool {
    match name {
        "document" => out.extend_from_slice(ctx.document_type.as_bytes()),
        "mapping" => out.extend_from_slice(ctx.mapping.as_bytes()),
        _ => return false,
    }
    true
}

/// One document's envelope: `{payload}` replaced by the payload.
pub(super) fn envelope(template: &str, ctx: &DocContext<'_>, payload: &[u8]) -> Vec<u8> {
    let p = inner(payload);
    expand(template, p.len(), |name, out| match name {
        "payload" => {
            out.extend_from_slice(p);
            true
        }
        _ => context(name, ctx, out),
    })
}

/// The body of an update or a delete (`update.body`, `delete.body`): `{id}` the ERP's
/// id and `{key}` the document's key (as JSON string content: `[[{id}], ...]` gives
/// `[[42], ...]`), `{payload}` the document's payload.
pub(super) fn request_body(template: &str, ctx: &DocContext<'_>, doc: &SpooledDoc) -> Vec<u8> {
    let p = inner(&doc.body);
    expand(template, p.len(), |name, out| match name {
        "payload" => {
            out.extend_from_slice(p);
            true
        }
        "id" => match &doc.erp_id {
            Some(id) => {
                json_text(out, id);
                true
            }
            None => false,
        },
        "key" => {
            json_text(out, &doc.key);
            true
        }
        _ => context(name, ctx, out),
    })
}

/// A batch's body: `{payloads}` replaced by a JSON array of the payloads, in order.
pub(super) fn batch_body<'d>(
    template: &str,
    ctx: &DocContext<'_>,
    payloads: impl Iterator<Item = &'d [u8]> + Clone,
) -> Vec<u8> {
    let size: usize = payloads.clone().map(|p| p.len() + 1).sum();
    expand(template, size + 2, |name, out| match name {
        "payloads" => {
            out.push(b'[');
            for (i, p) in payloads.clone().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(inner(p));
            }
            out.push(b']');
            true
        }
        _ => context(name, ctx, out),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Operation;

    const CTX: DocContext<'static> = DocContext {
        mapping: "inv",
        document_type: "account.invoice",
    };

    #[test]
    fn a_json_payload_goes_into_its_envelope_as_it_is() {
        let b = envelope(
            r#"{"jsonrpc": "2.0", "method": "model.{document}.create", "params": [[{payload}], {}]}"#,
            &CTX,
            br#"{"number": "{payload}"}"#,
        );
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"jsonrpc": "2.0", "method": "model.account.invoice.create", "params": [[{"number": "{payload}"}], {}]}"#,
            "a placeholder inside the payload is data, not replaced again"
        );
        // an unknown name, or braces of the JSON itself, stay as they are
        let b = envelope("{x} {\"a\": {payload}} {", &CTX, b"1");
        assert_eq!(String::from_utf8(b).unwrap(), "{x} {\"a\": 1} {");
    }

    #[test]
    fn an_xml_payload_loses_its_declaration_inside_an_envelope() {
        let b = envelope(
            "<soap:Envelope><soap:Body>{payload}</soap:Body></soap:Envelope>",
            &CTX,
            b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<invoice><n>1</n></invoice>\n",
        );
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "<soap:Envelope><soap:Body><invoice><n>1</n></invoice>\n</soap:Body></soap:Envelope>"
        );
    }

    #[test]
    fn a_batch_body_holds_the_payloads_as_a_json_array_in_order() {
        let docs: [&[u8]; 3] = [b"{\"n\":1}", b"{\"n\":2}", b"{\"n\":3}"];
        let b = batch_body(
            r#"{"method": "create", "params": [{payloads}, {}]}"#,
            &CTX,
            docs.iter().copied(),
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v["params"][0],
            serde_json::json!([{"n": 1}, {"n": 2}, {"n": 3}])
        );
        assert_eq!(batch_body("{payloads}", &CTX, std::iter::empty()), b"[]");
    }

    #[test]
    fn an_update_body_takes_the_id_the_key_and_the_payload() {
        let doc = SpooledDoc {
            key: "C\"1".into(),
            line: 2,
            content_hash: "h".into(),
            operation: Operation::Update,
            erp_id: Some("42".into()),
            deletions: 0,
            updates: 0,
            body: br#"{"name": "ACME"}"#.to_vec(),
            resend: false,
            ordinal: 0,
        };
        let b = request_body(
            r#"{"method": "model.{document}.write", "params": [[{id}], {payload}, {"ref": "{key}"}]}"#,
            &CTX,
            &doc,
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"method": "model.account.invoice.write",
                "params": [[42], {"name": "ACME"}, {"ref": "C\"1"}]})
        );
    }
}
