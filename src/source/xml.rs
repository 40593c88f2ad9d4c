//! XML exports (issue #4): placeholder until the streaming reader lands.

use super::decode::Tap;
use super::{DocumentSource, RawDocument, Slots, SourceError};
use crate::mapping::SourceOptions;
use crate::problem::{Code, Problem};
use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

pub struct XmlSource;

impl XmlSource {
    pub fn open<R: Read>(
        _input: R,
        _tap: Rc<RefCell<Tap>>,
        _opts: &SourceOptions,
        _slots: &Slots,
    ) -> Result<XmlSource, Problem> {
        Err(Problem::file(
            Code::Malformed,
            None,
            "XML sources are not supported by this build",
        ))
    }
}

impl DocumentSource for XmlSource {
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
        None
    }
    fn bytes_read(&self) -> u64 {
        0
    }
}
