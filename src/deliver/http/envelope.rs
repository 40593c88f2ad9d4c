//! Request bodies made of a template and payloads: the envelope of one document
//! (`body`, `{payload}`) and the body of a batch (`batch.body`, `{payloads}`).
//!
//! A payload goes in as it is, byte for byte (a JSON payload is JSON inside a JSON-RPC
//! envelope). An XML payload loses its XML declaration (`<?xml ...?>`), which may only
//! open a document: inside a SOAP envelope it would make the body ill-formed.

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

/// `template` with every `placeholder` replaced by `fill` (called once per
/// occurrence, writing into the body).
fn expand(template: &str, placeholder: &str, extra: usize, fill: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + extra);
    let mut rest = template;
    while let Some(at) = rest.find(placeholder) {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        fill(&mut out);
        rest = &rest[at + placeholder.len()..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// One document's envelope: `{payload}` replaced by the payload.
pub(super) fn envelope(template: &str, payload: &[u8]) -> Vec<u8> {
    let p = inner(payload);
    expand(template, "{payload}", p.len(), |out| {
        out.extend_from_slice(p)
    })
}

/// A batch's body: `{payloads}` replaced by a JSON array of the payloads, in order.
pub(super) fn batch_body<'d>(
    template: &str,
    payloads: impl Iterator<Item = &'d [u8]> + Clone,
) -> Vec<u8> {
    let size: usize = payloads.clone().map(|p| p.len() + 1).sum();
    expand(template, "{payloads}", size + 2, |out| {
        out.push(b'[');
        for (i, p) in payloads.clone().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(inner(p));
        }
        out.push(b']');
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_payload_goes_into_its_envelope_as_it_is() {
        let b = envelope(
            r#"{"jsonrpc": "2.0", "method": "create", "params": [[{payload}], {}]}"#,
            br#"{"number": "{payload}"}"#,
        );
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"jsonrpc": "2.0", "method": "create", "params": [[{"number": "{payload}"}], {}]}"#,
            "a placeholder inside the payload is data, not replaced again"
        );
    }

    #[test]
    fn an_xml_payload_loses_its_declaration_inside_an_envelope() {
        let b = envelope(
            "<soap:Envelope><soap:Body>{payload}</soap:Body></soap:Envelope>",
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
            docs.iter().copied(),
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v["params"][0],
            serde_json::json!([{"n": 1}, {"n": 2}, {"n": 3}])
        );
        assert_eq!(batch_body("{payloads}", std::iter::empty()), b"[]");
    }
}
