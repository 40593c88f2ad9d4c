//! quick-xml's two readers behind one trait: the plain one (fast, for mappings without
//! namespace URIs) and the namespace-resolving one, with the namespace checks of the
//! latter copied for the former so that both refuse the same files.

use super::line_counter::LineCounter;
use super::Input;
use memchr::memmem;
use quick_xml::errors::Error as XmlError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceError, PrefixDeclaration, QName, ResolveResult};
use quick_xml::{NsReader, Reader};
use std::io::BufRead;
use std::sync::LazyLock;

pub(super) type Stack<R> = LineCounter<Input<R>>;

/// quick-xml's reader: plain when no path names a namespace URI (nothing needs to be
/// resolved), else namespace-resolving. Both give the same events; the plain one checks
/// namespace declarations as the other does ([`check_ns_declarations`]).
pub(super) enum XmlReader<S: BufRead> {
    Plain(Reader<S>),
    Ns(NsReader<S>),
}

impl<S: BufRead> XmlReader<S> {
    #[cfg(test)]
    pub(super) fn is_plain(&self) -> bool {
        matches!(self, XmlReader::Plain(_))
    }
}

/// What the event loop needs of a quick-xml reader, plain or namespace-resolving; the
/// loop is compiled once for each, so that no event pays for the choice.
pub(super) trait Events {
    type Source: BufRead;
    /// The plain reader: namespace declarations are checked by [`check_ns_declarations`].
    const PLAIN: bool;
    fn read_event_into<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError>;
    fn get_ref(&self) -> &Self::Source;
    fn get_mut(&mut self) -> &mut Self::Source;
    fn buffer_position(&self) -> u64;
    fn error_position(&self) -> u64;
    /// The namespace of an element (the plain reader is only used when no path asks).
    fn resolve_element(&self, name: QName) -> ResolveResult<'_>;
    /// The namespace of an attribute (the plain reader is only used when no path asks).
    fn resolve_attribute(&self, name: QName) -> ResolveResult<'_>;
}

impl<S: BufRead> Events for Reader<S> {
    type Source = S;
    const PLAIN: bool = true;
    #[inline]
    fn read_event_into<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError> {
        Reader::read_event_into(self, buf)
    }
    fn get_ref(&self) -> &S {
        Reader::get_ref(self)
    }
    fn get_mut(&mut self) -> &mut S {
        Reader::get_mut(self)
    }
    fn buffer_position(&self) -> u64 {
        Reader::buffer_position(self)
    }
    fn error_position(&self) -> u64 {
        Reader::error_position(self)
    }
    fn resolve_element(&self, _: QName) -> ResolveResult<'_> {
        ResolveResult::Unbound
    }
    fn resolve_attribute(&self, _: QName) -> ResolveResult<'_> {
        ResolveResult::Unbound
    }
}

impl<S: BufRead> Events for NsReader<S> {
    type Source = S;
    const PLAIN: bool = false;
    #[inline]
    fn read_event_into<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError> {
        NsReader::read_event_into(self, buf)
    }
    fn get_ref(&self) -> &S {
        let r: &Reader<S> = self;
        r.get_ref()
    }
    fn get_mut(&mut self) -> &mut S {
        NsReader::get_mut(self)
    }
    fn buffer_position(&self) -> u64 {
        let r: &Reader<S> = self;
        r.buffer_position()
    }
    fn error_position(&self) -> u64 {
        let r: &Reader<S> = self;
        r.error_position()
    }
    fn resolve_element(&self, name: QName) -> ResolveResult<'_> {
        NsReader::resolve_element(self, name).0
    }
    fn resolve_attribute(&self, name: QName) -> ResolveResult<'_> {
        NsReader::resolve_attribute(self, name).0
    }
}

const XML_NAMESPACE: &[u8] = b"http://www.w3.org/XML/1998/namespace";
const XMLNS_NAMESPACE: &[u8] = b"http://www.w3.org/2000/xmlns/";

/// Finds `xmlns` in the attributes of a start tag; built once (built at each call, it
/// cost more than the byte-by-byte look it replaces).
static XMLNS: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"xmlns"));

/// The checks quick-xml's `NsReader` makes of the namespace declarations of a start tag
/// (its `NamespaceResolver::push`), for the plain reader: the same errors, in the same
/// order.
#[inline]
pub(super) fn check_ns_declarations(e: &BytesStart) -> Result<(), NamespaceError> {
    let raw = e.attributes_raw();
    if raw.is_empty() || XMLNS.find(raw).is_none() {
        return Ok(());
    }
    for a in e.attributes().with_checks(false) {
        let Ok(a) = a else { break };
        let v = &*a.value;
        match a.key.as_namespace_binding() {
            Some(PrefixDeclaration::Named(b"xml")) => {
                if v != XML_NAMESPACE {
                    return Err(NamespaceError::InvalidXmlPrefixBind(v.to_vec()));
                }
            }
            Some(PrefixDeclaration::Named(b"xmlns")) => {
                return Err(NamespaceError::InvalidXmlnsPrefixBind(v.to_vec()));
            }
            Some(PrefixDeclaration::Named(prefix)) => {
                if v == XML_NAMESPACE {
                    return Err(NamespaceError::InvalidPrefixForXml(prefix.to_vec()));
                } else if v == XMLNS_NAMESPACE {
                    return Err(NamespaceError::InvalidPrefixForXmlns(prefix.to_vec()));
                }
            }
            Some(PrefixDeclaration::Default) | None => {}
        }
    }
    Ok(())
}
