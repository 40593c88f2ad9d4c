//! The values of the record or line being read, in one buffer reused from row to row.

use crate::source::RawRow;
use std::borrow::Cow;

pub(super) const UNSET: u8 = 0;
pub(super) const CAPTURING: u8 = 1;
const SET: u8 = 2;

/// A slot's value: not found yet, being collected, or found: `text[start..end]` of its
/// row's [`RowBuf`], found on `line`.
#[derive(Debug, Clone, Copy)]
pub(super) struct SlotVal {
    pub(super) state: u8,
    start: u32,
    end: u32,
    line: u64,
}

const UNSET_VAL: SlotVal = SlotVal {
    state: UNSET,
    start: 0,
    end: 0,
    line: 0,
};

/// The values of the record (header or key slots) or line being read, in one buffer
/// reused from row to row: values are written into it as they are found. The bytes are
/// UTF-8 (LineCounter hands out nothing else, and text is cut at `<`), checked once per
/// row.
#[derive(Debug, Default)]
pub(super) struct RowBuf {
    pub(super) text: Vec<u8>,
    pub(super) vals: Vec<SlotVal>,
}

impl RowBuf {
    pub(super) fn new(n: usize) -> RowBuf {
        RowBuf {
            text: Vec::new(),
            vals: vec![UNSET_VAL; n],
        }
    }

    pub(super) fn reset(&mut self) {
        self.text.clear();
        if self.text.capacity() > 1 << 20 {
            // after a huge value, do not keep its buffer for the rest of the file
            self.text.shrink_to(1 << 12);
        }
        self.vals.fill(UNSET_VAL);
    }

    pub(super) fn set(&mut self, slot: usize, value: &[u8], line: u64) {
        if let Some(v) = self.vals.get_mut(slot) {
            let start = self.text.len() as u32;
            self.text.extend_from_slice(value);
            *v = SlotVal {
                state: SET,
                start,
                end: self.text.len() as u32,
                line,
            };
        }
    }

    /// The value of `slot` is `text[start..]`, written there by a direct capture.
    #[inline]
    pub(super) fn close(&mut self, slot: usize, start: u32, line: u64) {
        if let Some(v) = self.vals.get_mut(slot) {
            *v = SlotVal {
                state: SET,
                start,
                end: self.text.len() as u32,
                line,
            };
        }
    }

    pub(super) fn get(&self, slot: usize) -> Option<Cow<'_, str>> {
        let v = self.vals.get(slot)?;
        (v.state == SET)
            .then(|| String::from_utf8_lossy(&self.text[v.start as usize..v.end as usize]))
    }

    pub(super) fn row(&self, line: u64) -> RawRow {
        match std::str::from_utf8(&self.text) {
            Ok(text) => RawRow::from_parts(
                line,
                text,
                self.vals
                    .iter()
                    .map(|v| (v.state == SET).then_some((v.start, v.end, v.line))),
            ),
            Err(_) => {
                // not reached (the bytes are checked as they are read); each value
                // on its own, lossily, if it were
                let mut text = String::new();
                let mut ranges = Vec::with_capacity(self.vals.len());
                for v in &self.vals {
                    ranges.push((v.state == SET).then(|| {
                        let start = text.len() as u32;
                        text.push_str(&String::from_utf8_lossy(
                            &self.text[v.start as usize..v.end as usize],
                        ));
                        (start, text.len() as u32, v.line)
                    }));
                }
                RawRow::from_parts(line, &text, ranges.into_iter())
            }
        }
    }
}
