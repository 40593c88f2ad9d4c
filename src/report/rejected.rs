//! `STEM.rejected.EXT`: the source rows of every failed document of a file, as read, in
//! the file's own format, so that a user fixes them and drops the file back in.
//!
//! The file is read a second time: once through the mapping's own source, to learn which
//! physical lines (CSV, fixed width), which records (XML and a JSON array under a
//! pointer, by their order) or which JSON lines belong to a failed document, and once
//! as text, to copy those rows' bytes
//! exactly (quoting, multi-line values, line ends) with one more column,
//! `erpdrop_error`, a comment before each XML record, the message after a fixed-width
//! line's last column (`rejected_fixed`) or a member of a JSON record (`rejected_json`). The text is written back in the file's encoding, with its byte-order
//! mark where it had one; a character of a message that the encoding cannot hold
//! becomes `?`.

use super::rejected_trailer::{csv_field, field_spans, invalid, Totals};
use crate::check::{open_source_for, Pass};
use crate::fsutil::{write_atomic_with, FileId};
use crate::mapping::Mapping;
use crate::problem::{Stage, MAX_VALUE_CHARS};
use crate::problem_log::ProblemLog;
use crate::source::decode::{byte_order_mark, CodePage, DecodeReader, Tap};
use crate::source::{CsvOptions, SourceError, SourceFormat};
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::rc::Rc;

/// The name of the column (CSV) that carries a failed document's problems.
pub const ERROR_COLUMN: &str = "erpdrop_error";

/// The sentence for a valid document that was not sent because others of its file
/// were invalid (`on_invalid = "reject-file"`).
const HELD_BACK: &str =
    "Not sent: other documents of this file are invalid and the mapping says on_invalid = \"reject-file\"";

/// What the rejected rows file is made from.
pub struct RejectedInput<'a> {
    /// The file as it is now (in processing/), and the file that was claimed.
    pub source: &'a Path,
    pub id: Option<FileId>,
    pub mapping: &'a Mapping,
    /// The problems of the file's report.
    pub problems: &'a ProblemLog,
    /// Valid documents were held back (not sent) because others were invalid.
    pub held_back: bool,
    /// Whether the ERP already has a document (by key): held-back documents it has
    /// are not listed.
    pub in_erp: &'a dyn Fn(&str) -> bool,
}

/// Writes the rejected rows of a failed file to `to`, whole or not at all; `Ok(false)`
/// when there is no row to write (nothing failed row by row).
pub fn write_rejected(input: &RejectedInput<'_>, to: &Path) -> io::Result<bool> {
    let source = &input.mapping.source;
    if source.rows.trailer.is_some()
        && !matches!(
            source.format,
            SourceFormat::Csv
                | SourceFormat::Fixed
                | SourceFormat::Xlsx
                | SourceFormat::Xls
                | SourceFormat::Ods
        )
    {
        // the trailer row is rewritten for the rejected rows of row-shaped files (the
        // mapping takes a trailer for no other): rows as they are would disagree with
        // their trailer, and come back `incomplete`
        tracing::info!(file = %input.source.display(), "no rejected rows file: the mapping checks a trailer ([source.trailer]), which is rewritten for the failed rows of CSV, fixed-width and workbook files only");
        return Ok(false);
    }
    let failed = failed_problems(input.problems)?;
    let rows = failed_rows(input, &failed)?;
    if rows.is_empty() {
        return Ok(false);
    }
    let written = write_atomic_with(to, &mut |w| match input.mapping.source.format {
        SourceFormat::Csv => copy_csv(input, &rows, w),
        SourceFormat::Xml => super::rejected_xml::copy_xml(input, &rows, w),
        SourceFormat::Xlsx => super::rejected_sheet::copy_xlsx(input, &rows, w),
        SourceFormat::Ods => super::rejected_ods::copy_ods(input, &rows, w),
        SourceFormat::Xls => super::rejected_xls::copy_xls(input, &rows, w),
        SourceFormat::Fixed => super::rejected_fixed::copy_fixed(input, &rows, w),
        SourceFormat::Json => match &input.mapping.source.json.record {
            Some(pointer) => super::rejected_json::copy_json_array(input, pointer, &rows, w),
            None => super::rejected_json::copy_json(input, &rows, w),
        },
    });
    match written {
        Ok(()) => {
            let name = to.file_name().unwrap_or_default().to_string_lossy();
            if !input.mapping.matches(&name) {
                // `INV_????-??-??.csv` does not take `INV_2026-11-20.rejected.csv`
                tracing::warn!(
                    rejected = %name, mapping = %input.mapping.name,
                    "the rejected rows' name does not match the mapping's globs: rename the file to a name the mapping takes before dropping it back into the inbox"
                );
            }
            Ok(true)
        }
        // the records could not be told apart as the source read them: no file rather
        // than one with the wrong records
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!(file = %input.source.display(), "no rejected rows file: {e}");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The name of the rejected rows file of a file stored as `name`:
/// `INV_1.rejected.csv` for `INV_1.csv`.
pub fn rejected_name(name: &str) -> String {
    crate::fsutil::sidecar_name(name, crate::fsutil::REJECTED_SIDECAR)
}

/// The most problems one `erpdrop_error` lists; the rest are counted. Every row of a
/// document carries them: a file whose every row failed (40 lines an invoice, a
/// problem each) made a 3.7 GB rejected file of a 64 MB one, and held its million
/// messages in 330 MB of memory.
const MAX_MESSAGES: usize = 5;

/// The first problems of a document or line (no two alike), and how many more.
#[derive(Default)]
struct Kept {
    first: Vec<String>,
    more: usize,
}

impl Kept {
    fn add(&mut self, message: String) {
        if self.first.contains(&message) {
        } else if self.first.len() < MAX_MESSAGES {
            self.first.push(message);
        } else {
            self.more += 1;
        }
    }
}

/// The problems of failed documents: by document key, and by line for those without one.
#[derive(Default)]
struct Failed {
    by_key: HashMap<String, Kept>,
    by_line: HashMap<u64, Kept>,
}

fn failed_problems(problems: &ProblemLog) -> io::Result<Failed> {
    let mut f = Failed::default();
    problems.try_for_each(|p| {
        let message = crate::redact::redact_string(p.message());
        match (&p.document, p.line) {
            (Some(k), _) => match f.by_key.get_mut(k) {
                Some(kept) => kept.add(message),
                None => f.by_key.entry(k.clone()).or_default().add(message),
            },
            (None, Some(l)) if p.stage != Stage::Read || l > 0 => {
                f.by_line.entry(l).or_default().add(message)
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(f)
}

/// The problems as one `erpdrop_error`: the first [`MAX_MESSAGES`], and how many more
/// the report lists.
fn listed(messages: &[&str], more: usize) -> Rc<str> {
    let more = more + messages.len().saturating_sub(MAX_MESSAGES);
    let shown = &messages[..messages.len().min(MAX_MESSAGES)];
    if more == 0 {
        return joined(shown);
    }
    let mut all = shown.to_vec();
    let tail = format!("and {more} more problems: the file's errors.csv lists them all");
    all.push(&tail);
    joined(&all)
}

/// Where the failed documents are, and the text of their `erpdrop_error`: CSV and fixed
/// width by physical line of each row, a workbook by row number, JSON lines by the line
/// a record starts on, XML and a JSON array under a pointer by the order of the record
/// (0 the first; a JSON record skipped by `[[skip]]` counts).
///
/// Kept as runs of consecutive places with one text, whose lines follow by a step (a
/// CSV row a line, records of as many lines each) or else are listed: with
/// `on_invalid = "reject-file"` every row of a large file is there, all with the same
/// sentence, and one entry a row held a 300 MB CSV file's 5 million rows in 380 MB of
/// memory.
#[derive(Default)]
pub(super) struct Rows {
    /// By the first place of each run.
    runs: BTreeMap<u64, Run>,
    len: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum Lines {
    /// The first place's line, and how many lines on each next place starts (`None`
    /// while the run has one place).
    Step(u64, Option<u64>),
    /// The line of each place.
    Listed(Vec<u64>),
}

struct Run {
    last: u64,
    lines: Lines,
    text: Rc<str>,
}

impl Run {
    fn same_text(&self, text: &Rc<str>) -> bool {
        Rc::ptr_eq(&self.text, text) || self.text == *text
    }

    /// The line of place `at`, the run starting at `first`.
    fn line(&self, first: u64, at: u64) -> u64 {
        match &self.lines {
            Lines::Step(line, step) => {
                line.wrapping_add(step.unwrap_or(0).wrapping_mul(at - first))
            }
            Lines::Listed(v) => v[(at - first) as usize],
        }
    }

    fn listed(self, first: u64) -> Vec<u64> {
        match self.lines {
            Lines::Listed(v) => v,
            Lines::Step(..) => (first..=self.last).map(|p| self.line(first, p)).collect(),
        }
    }

    /// This run followed by `next`, which starts right after it with the same text.
    fn join(self, first: u64, next: Run, next_first: u64) -> Run {
        let last = next.last;
        let text = self.text.clone();
        let lines = match (&self.lines, &next.lines) {
            (Lines::Step(a, sa), Lines::Step(b, sb)) => {
                let step = b.wrapping_sub(self.line(first, self.last));
                let start = next_first - first;
                let fits = |s: &Option<u64>| s.is_none_or(|s| s == step);
                if fits(sa) && fits(sb) && a.wrapping_add(step.wrapping_mul(start)) == *b {
                    Some(Lines::Step(*a, Some(step)))
                } else {
                    None
                }
            }
            _ => None,
        };
        let lines = lines.unwrap_or_else(|| {
            let mut v = self.listed(first);
            v.extend(next.listed(next_first));
            Lines::Listed(v)
        });
        Run { last, lines, text }
    }
}

impl Rows {
    pub fn new() -> Rows {
        Rows::default()
    }

    /// How many places hold a text.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first place of the run that holds `at`.
    fn run_of(&self, at: u64) -> Option<u64> {
        let (&first, run) = self.runs.range(..=at).next_back()?;
        (run.last >= at).then_some(first)
    }

    /// The line and text at a place.
    pub fn get(&self, at: &u64) -> Option<(u64, Rc<str>)> {
        let first = self.run_of(*at)?;
        let run = &self.runs[&first];
        Some((run.line(first, *at), run.text.clone()))
    }

    /// Takes the text at a place away (splitting its run).
    fn remove(&mut self, at: u64) {
        let Some(first) = self.run_of(at) else {
            return;
        };
        let run = self.runs.remove(&first).expect("the run");
        let after_line = (run.last > at).then(|| run.line(first, at + 1));
        let (before, after) = match run.lines {
            Lines::Step(line, step) => (
                Lines::Step(line, step),
                Lines::Step(after_line.unwrap_or(0), step),
            ),
            Lines::Listed(mut v) => {
                let after = v.split_off((at - first) as usize + 1);
                v.pop();
                (Lines::Listed(v), Lines::Listed(after))
            }
        };
        if first < at {
            let run = Run {
                last: at - 1,
                lines: before,
                text: run.text.clone(),
            };
            self.runs.insert(first, run);
        }
        if run.last > at {
            let run = Run {
                last: run.last,
                lines: after,
                text: run.text,
            };
            self.runs.insert(at + 1, run);
        }
        self.len -= 1;
    }

    /// Sets the line and text of a place (replacing what it had).
    pub fn insert(&mut self, at: u64, line: u64, text: Rc<str>) {
        self.remove(at);
        self.len += 1;
        let mut first = at;
        let mut run = Run {
            last: at,
            lines: Lines::Step(line, None),
            text,
        };
        if let Some(f) = at.checked_sub(1).and_then(|before| self.run_of(before)) {
            if self.runs[&f].same_text(&run.text) {
                let prev = self.runs.remove(&f).expect("the run before");
                run = prev.join(f, run, at);
                first = f;
            }
        }
        if let Some(next) = at.checked_add(1) {
            if self.runs.get(&next).is_some_and(|r| r.same_text(&run.text)) {
                let after = self.runs.remove(&next).expect("the run after");
                run = run.join(first, after, next);
            }
        }
        self.runs.insert(first, run);
    }
}

fn failed_rows(input: &RejectedInput<'_>, failed: &Failed) -> io::Result<Rows> {
    let mut pass = Pass::Stream;
    'again: loop {
        let tap = Rc::new(RefCell::new(Tap::default()));
        let mut source = open_source_for(input.mapping, input.source, input.id, tap, pass)
            .map_err(|p| io::Error::other(p.message()))?;
        let mut rows = Rows::new();
        let mut ordinal = 0u64;
        let by_ordinal = input.mapping.source.format == SourceFormat::Json
            && input.mapping.source.json.record.is_some();
        // the last record without a key: its line, number and own problems
        let mut last_keyless: Option<(u64, u64, Rc<str>)> = None;
        while let Some(doc) = source.next_document() {
            let doc = match doc {
                Ok(d) => d,
                Err(SourceError::Ungrouped) => {
                    pass = Pass::Ungrouped;
                    continue 'again;
                }
                Err(SourceError::Repeated(r)) => {
                    pass = Pass::Repeats(r);
                    continue 'again;
                }
                Err(SourceError::Fatal(p)) => return Err(io::Error::other(p.message())),
                Err(SourceError::Environment(e)) => return Err(io::Error::other(e)),
            };
            let key = doc.key_display();
            let mut lines: Vec<u64> = std::iter::once(doc.header.line)
                .chain(doc.lines.iter().map(|l| l.line))
                .collect();
            lines.sort_unstable();
            lines.dedup();
            // a record under a pointer: by its place in the array, skipped ones counted
            let record_no = ordinal + source.skipped();
            let keyless = doc.key.is_empty()
                || (key.len() > MAX_VALUE_CHARS && key.chars().count() > MAX_VALUE_CHARS);
            let mut messages: Vec<&str> = Vec::new();
            let mut more = 0;
            if !keyless {
                if let Some(m) = failed.by_key.get(&key) {
                    messages.extend(m.first.iter().map(String::as_str));
                    more += m.more;
                }
            }
            // under a pointer the problems of a line belong to the records without a key
            // (a keyed record's problems name it); records share lines (a minified file)
            let by_line = !by_ordinal || keyless;
            for l in lines.iter().filter(|_| by_line) {
                if let Some(m) = failed.by_line.get(l) {
                    messages.extend(m.first.iter().map(String::as_str));
                    more += m.more;
                }
            }
            let mut seen = std::collections::HashSet::new();
            messages.retain(|m| seen.insert(*m));
            let mut text: Option<Rc<str>> = if !messages.is_empty() {
                Some(listed(&messages, more))
            } else if input.held_back && !(input.in_erp)(&key) {
                Some(HELD_BACK.into())
            } else {
                None
            };
            if by_ordinal && keyless && text.is_some() {
                // two records without a key on one line: the line's problems are
                // theirs together, so each gets those the reader found in it
                let own: Vec<String> = doc
                    .problems
                    .iter()
                    .map(|p| crate::redact::redact_string(p.message()))
                    .collect();
                let own: Vec<&str> = own.iter().map(String::as_str).collect();
                if let Some((line, at, prev_own)) = &last_keyless {
                    if *line == doc.line && !own.is_empty() && !prev_own.is_empty() {
                        if let Some((line, _)) = rows.get(at) {
                            rows.insert(*at, line, prev_own.clone());
                        }
                        text = Some(listed(&own, 0));
                    }
                }
                last_keyless = Some((doc.line, record_no, listed(&own, 0)));
            }
            if let Some(text) = text {
                match input.mapping.source.format {
                    // a record of an array at a pointer by its order
                    SourceFormat::Json if by_ordinal => {
                        rows.insert(record_no, doc.line, text);
                    }
                    // a workbook's rows by their number in the sheet
                    SourceFormat::Csv
                    | SourceFormat::Fixed
                    | SourceFormat::Xlsx
                    | SourceFormat::Xls
                    | SourceFormat::Ods => {
                        for l in lines {
                            rows.insert(l, l, text.clone());
                        }
                    }
                    // a JSON record by the line it starts on
                    SourceFormat::Json => {
                        rows.insert(doc.line, doc.line, text);
                    }
                    _ => {
                        rows.insert(ordinal, doc.line, text);
                    }
                }
            }
            ordinal += 1;
        }
        return Ok(rows);
    }
}

/// Messages as one `erpdrop_error`: an ERP's message may hold control characters (a
/// NUL, line breaks), written escaped so that the file reads back as it was.
fn joined(messages: &[&str]) -> Rc<str> {
    crate::ui::escape_controls(&messages.join(" | "), false).into()
}

/// The file opened as text: its encoding, whether it had a byte-order mark, and a
/// reader of its text as UTF-8.
pub(super) struct Text {
    pub encoding: &'static Encoding,
    pub bom: bool,
    /// The mapping's code page (CP437), unless a byte-order mark won over it.
    pub code_page: Option<CodePage>,
    pub reader: BufReader<DecodeReader<std::fs::File>>,
}

pub(super) fn open_text(
    input: &RejectedInput<'_>,
    named: Option<&'static Encoding>,
) -> io::Result<Text> {
    let mut file = crate::fsutil::open_regular(input.source, input.id)?;
    let mut head = [0u8; 1024];
    let mut n = 0;
    while n < head.len() {
        let got = file.read(&mut head[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    let bom = byte_order_mark(&head[..n]);
    let file = crate::fsutil::open_regular(input.source, input.id)?;
    let declared = match input.mapping.source.format {
        // an XML file's own declaration counts, as when it was read
        SourceFormat::Xml => crate::source::xml::encoding_of(&head[..n], named),
        _ => named,
    }
    .unwrap_or(UTF_8);
    let code_page = input.mapping.source.code_page.filter(|_| bom.is_none());
    let mut reader = BufReader::with_capacity(
        64 * 1024,
        DecodeReader::new(file, declared).with_code_page(code_page),
    );
    // the first read settles the encoding (a byte-order mark wins)
    reader.fill_buf()?;
    let encoding = bom.map(|(e, _)| e).unwrap_or(reader.get_ref().encoding());
    Ok(Text {
        encoding,
        bom: bom.is_some(),
        code_page,
        reader,
    })
}

/// Writes text in a file's encoding or code page; characters it cannot hold become `?`.
pub(super) struct Encoded<'w> {
    out: &'w mut dyn Write,
    encoding: &'static Encoding,
    encoder: Option<encoding_rs::Encoder>,
    code_page: Option<CodePage>,
    buf: Vec<u8>,
}

impl<'w> Encoded<'w> {
    /// Writes in the file's own encoding, byte-order mark and code page.
    pub fn for_text(out: &'w mut dyn Write, text: &Text) -> io::Result<Self> {
        let mut e = Encoded::new(out, text.encoding, text.bom)?;
        e.code_page = text.code_page;
        Ok(e)
    }

    pub fn new(out: &'w mut dyn Write, encoding: &'static Encoding, bom: bool) -> io::Result<Self> {
        if bom {
            if encoding == UTF_16LE {
                out.write_all(&[0xFF, 0xFE])?;
            } else if encoding == UTF_16BE {
                out.write_all(&[0xFE, 0xFF])?;
            } else {
                out.write_all(&[0xEF, 0xBB, 0xBF])?;
            }
        }
        let plain = encoding == UTF_8 || encoding == UTF_16LE || encoding == UTF_16BE;
        Ok(Encoded {
            out,
            encoding,
            encoder: (!plain).then(|| encoding.new_encoder()),
            code_page: None,
            buf: vec![0; 16 * 1024],
        })
    }

    pub fn write_str(&mut self, mut s: &str) -> io::Result<()> {
        if let Some(cp) = self.code_page {
            self.buf.clear();
            self.buf
                .extend(s.chars().map(|c| cp.byte_of(c).unwrap_or(b'?')));
            return self.out.write_all(&self.buf);
        }
        if self.encoding == UTF_8 {
            return self.out.write_all(s.as_bytes());
        }
        if self.encoding == UTF_16LE || self.encoding == UTF_16BE {
            let le = self.encoding == UTF_16LE;
            let mut b = Vec::with_capacity(s.len() * 2);
            for u in s.encode_utf16() {
                b.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
            }
            return self.out.write_all(&b);
        }
        let enc = self.encoder.as_mut().expect("an encoder");
        loop {
            let (result, read, written) =
                enc.encode_from_utf8_without_replacement(s, &mut self.buf, false);
            self.out.write_all(&self.buf[..written])?;
            s = &s[read..];
            match result {
                encoding_rs::EncoderResult::InputEmpty => return Ok(()),
                encoding_rs::EncoderResult::OutputFull => {}
                encoding_rs::EncoderResult::Unmappable(_) => self.out.write_all(b"?")?,
            }
        }
    }

    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(enc) = self.encoder.as_mut() {
            let (_, _, written) = enc.encode_from_utf8_without_replacement("", &mut self.buf, true);
            self.out.write_all(&self.buf[..written])?;
        }
        Ok(())
    }
}

/// One CSV record as it stands in the text: its bytes with the line end, the line
/// where it starts, where its last field starts and how many fields it has.
struct Record {
    raw: Vec<u8>,
    line: u64,
    last_field: usize,
    fields: usize,
}

impl Record {
    /// The record without its line end, and the line end.
    fn split(&self) -> (&[u8], &[u8]) {
        let r = &self.raw[..];
        if r.ends_with(b"\r\n") {
            r.split_at(r.len() - 2)
        } else if r.ends_with(b"\n") {
            r.split_at(r.len() - 1)
        } else {
            (r, &[])
        }
    }

    fn is_blank(&self) -> bool {
        self.raw.iter().all(|b| b.is_ascii_whitespace())
    }
}

/// Reads the next record as the CSV reader sees it (a line feed outside quotes ends it;
/// a quote opens a quoted value only at the start of a field).
fn next_record<R: BufRead>(
    r: &mut R,
    opts: &CsvOptions,
    line: &mut u64,
) -> io::Result<Option<Record>> {
    #[derive(PartialEq)]
    enum S {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut rec = Record {
        raw: Vec::new(),
        line: *line,
        last_field: 0,
        fields: 1,
    };
    let mut s = S::FieldStart;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((!rec.raw.is_empty()).then_some(rec));
        }
        let mut used = 0;
        let mut end = false;
        for &b in buf {
            used += 1;
            if b == b'\n' {
                *line += 1;
            }
            match s {
                S::Quoted => {
                    if b == opts.quote {
                        s = S::QuoteInQuoted;
                    }
                    continue;
                }
                S::QuoteInQuoted if b == opts.quote => {
                    s = S::Quoted;
                    continue;
                }
                S::FieldStart if b == opts.quote => {
                    s = S::Quoted;
                    continue;
                }
                _ => {}
            }
            if b == b'\n' {
                end = true;
                break;
            }
            if b == opts.delimiter {
                s = S::FieldStart;
                rec.last_field = rec.raw.len() + used;
                rec.fields += 1;
            } else {
                s = S::Unquoted;
            }
        }
        rec.raw.extend_from_slice(&buf[..used]);
        r.consume(used);
        if end {
            return Ok(Some(rec));
        }
    }
}

/// A value as the file's dialect writes it: quoted where it holds the delimiter, the
/// quote or a line end.
fn quoted(value: &str, opts: &CsvOptions) -> String {
    let d = opts.delimiter as char;
    let q = opts.quote as char;
    if value.contains([d, q, '\r', '\n']) || value.starts_with(' ') || value.ends_with(' ') {
        let doubled = value.replace(q, &format!("{q}{q}"));
        format!("{q}{doubled}{q}")
    } else {
        value.to_string()
    }
}

fn copy_csv(input: &RejectedInput<'_>, rows: &Rows, w: &mut dyn Write) -> io::Result<()> {
    let opts = &input.mapping.source.csv;
    let mut text = open_text(input, input.mapping.source.encoding)?;
    let mut out = Encoded::for_text(w, &text)?;
    let r = &mut text.reader;
    let mut line = 1u64;
    // title rows above the header stay: the mapping skips them when the file comes back
    let mut scratch = Vec::new();
    for _ in 0..opts.skip_lines {
        scratch.clear();
        if r.read_until(b'\n', &mut scratch)? == 0 {
            break;
        }
        line += 1;
        out.write_str(&String::from_utf8_lossy(&scratch))?;
    }
    let mut header: Option<Record> = None;
    let mut default_end: Vec<u8> = Vec::new();
    let rules = &input.mapping.source.rows;
    let mut totals = rules.trailer.as_ref().map(|t| Totals::new(t, rules));
    // the column names, for the trailer's columns and the one it sums
    let mut columns: Vec<String> = Vec::new();
    // the last row not copied: at the end, the trailer
    let mut last: Option<Record> = None;
    // the file's header already ends with erpdrop_error (a rejected file that failed
    // again): that column is replaced, not added twice
    let mut replace_last = None;
    // without a header row: how many columns the mapping reads by position
    let headerless = (!opts.header).then(|| positions_read(input.mapping));
    while let Some(rec) = next_record(r, opts, &mut line)? {
        let (body, end) = rec.split();
        if default_end.is_empty() && !end.is_empty() {
            default_end = end.to_vec();
        }
        if opts.header && header.is_none() {
            if rec.is_blank() {
                out.write_str(&String::from_utf8_lossy(&rec.raw))?;
                continue;
            }
            columns = csv_fields(body, opts)
                .iter()
                .map(|c| c.trim().trim_start_matches('\u{feff}').to_string())
                .collect();
            let last = String::from_utf8_lossy(&body[rec.last_field..]);
            if last.trim().trim_matches(opts.quote as char) == ERROR_COLUMN {
                replace_last = Some(rec.fields);
                out.write_str(&String::from_utf8_lossy(&rec.raw))?;
            } else {
                out.write_str(&String::from_utf8_lossy(body))?;
                out.write_str(&format!("{}{ERROR_COLUMN}", opts.delimiter as char))?;
                let end = if end.is_empty() { b"\n" as &[u8] } else { end };
                out.write_str(&String::from_utf8_lossy(end))?;
            }
            header = Some(rec);
            continue;
        }
        if rec.is_blank() {
            continue;
        }
        let Some((_, message)) = rows.get(&rec.line) else {
            last = Some(rec);
            continue;
        };
        last = None;
        if let Some(t) = totals.as_mut() {
            let of = match &t.rule.sum {
                Some((_, of)) => {
                    let at = csv_column(&columns, of, opts)?;
                    let fields = csv_fields(body, opts);
                    // columns by position: a header row's field there is no amount of
                    // the sum, as the check reads it
                    let header_row = match (&headerless, &rules.record_type) {
                        (Some(_), Some(rt)) if rt.line.is_some() => {
                            let col = csv_column(&columns, &rt.column, opts)?;
                            fields
                                .get(col)
                                .is_some_and(|c| crate::source::trim(c) == rt.header)
                        }
                        _ => false,
                    };
                    if header_row {
                        None
                    } else {
                        fields.get(at).cloned()
                    }
                }
                None => None,
            };
            t.add(of.as_deref(), false, rec.line)?;
        }
        if let Some(reads) = headerless {
            // no header names the column: the message goes past every column the
            // mapping reads (a short row's would else be read as a value when the fixed
            // file comes back), marked `erpdrop_error: ` so that a rejected file that
            // fails again gets it replaced
            let again = rec.fields > reads
                && csv_fields(body, opts)
                    .last()
                    .is_some_and(|f| f.starts_with(HEADERLESS_PREFIX.as_str()));
            let (kept, fields) = if again {
                (&body[..rec.last_field], rec.fields - 1)
            } else {
                (body, rec.fields)
            };
            out.write_str(&String::from_utf8_lossy(kept))?;
            let delimiter = (opts.delimiter as char).to_string();
            if !again {
                out.write_str(&delimiter)?;
            }
            for _ in fields..reads {
                out.write_str(&delimiter)?;
            }
            out.write_str(&quoted(&format!("{}{message}", *HEADERLESS_PREFIX), opts))?;
        } else {
            let kept = if replace_last == Some(rec.fields) {
                &body[..rec.last_field]
            } else {
                out.write_str(&String::from_utf8_lossy(body))?;
                out.write_str(&(opts.delimiter as char).to_string())?;
                &[][..]
            };
            out.write_str(&String::from_utf8_lossy(kept))?;
            out.write_str(&quoted(&message, opts))?;
        }
        let end = if end.is_empty() {
            if default_end.is_empty() {
                b"\n".to_vec()
            } else {
                default_end.clone()
            }
        } else {
            end.to_vec()
        };
        out.write_str(&String::from_utf8_lossy(&end))?;
    }
    if let Some(t) = &totals {
        let rec =
            last.ok_or_else(|| invalid("the trailer row is not the file's last row".into()))?;
        let add_column = headerless.is_none();
        out.write_str(&csv_trailer(
            &rec,
            t,
            &columns,
            opts,
            replace_last,
            add_column,
        )?)?;
    }
    out.finish()
}

/// What a headerless CSV file's `erpdrop_error` starts with: no header row names that
/// column, so the value says what it is.
pub(super) static HEADERLESS_PREFIX: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{ERROR_COLUMN}: "));

/// How many columns a mapping of a file without a header row reads: the highest
/// position (1-based) that a field, the key, the record type, a `[[skip]]` rule or the
/// trailer names.
pub(super) fn positions_read(mapping: &Mapping) -> usize {
    let rows = &mapping.source.rows;
    let slots = &mapping.slots;
    let trailer = rows.trailer.iter().flat_map(|t| {
        t.count
            .iter()
            .chain(t.sum.iter().flat_map(|(c, of)| [c, of]))
    });
    slots
        .header
        .iter()
        .chain(&slots.lines)
        .chain(&slots.key)
        .chain(rows.record_type.iter().map(|r| &r.column))
        .chain(rows.skip.iter().map(|r| &r.column))
        .chain(trailer)
        .filter_map(|name| name.trim().parse::<usize>().ok())
        .max()
        .unwrap_or(0)
}

/// The fields of a CSV record, unquoted.
fn csv_fields(body: &[u8], opts: &CsvOptions) -> Vec<String> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .quote(opts.quote)
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = csv::StringRecord::new();
    match rdr.read_record(&mut record) {
        Ok(true) => record.iter().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// A column the trailer rule names, as the CSV reader resolves it.
fn csv_column(columns: &[String], name: &str, opts: &CsvOptions) -> io::Result<usize> {
    crate::source::csv::resolve_column(columns, name, opts.header)
        .ok_or_else(|| invalid(format!("the file has no column {name:?} for its trailer")))
}

/// The trailer row with the rejected rows' count and sum, and an empty `erpdrop_error`.
fn csv_trailer(
    rec: &Record,
    totals: &Totals<'_>,
    columns: &[String],
    opts: &CsvOptions,
    replace_last: Option<usize>,
    add_column: bool,
) -> io::Result<String> {
    let (body, end) = rec.split();
    let text = String::from_utf8_lossy(body).into_owned();
    let spans = field_spans(text.as_bytes(), opts.delimiter, opts.quote);
    let quote = opts.quote as char;
    let mut edits: Vec<((usize, usize), String)> = Vec::new();
    let short = || invalid("the trailer row is too short for its control totals".into());
    if let Some(name) = &totals.rule.count {
        let (s, e) = *spans
            .get(csv_column(columns, name, opts)?)
            .ok_or_else(short)?;
        let new = csv_field(&text[s..e], quote, |o| totals.count_text(o, None))?;
        edits.push(((s, e), new));
    }
    if let Some((name, _)) = &totals.rule.sum {
        let (s, e) = *spans
            .get(csv_column(columns, name, opts)?)
            .ok_or_else(short)?;
        let new = csv_field(&text[s..e], quote, |o| totals.sum_text(o, None))?;
        edits.push(((s, e), new));
    }
    edits.sort_by_key(|e| e.0);
    let mut row = String::new();
    let mut at = 0;
    for ((s, e), new) in edits {
        if s < at {
            return Err(invalid("the trailer's count and sum are one column".into()));
        }
        row.push_str(&text[at..s]);
        row.push_str(&new);
        at = e;
    }
    let (last_start, _) = spans.last().copied().unwrap_or((0, 0));
    if !add_column {
        // no header row: nothing to keep the column count of, and the trailer of a
        // rejected file that fails again stays as it is
        row.push_str(&text[at..]);
    } else if replace_last == Some(rec.fields) && at <= last_start {
        // a rejected file's trailer: its erpdrop_error stays empty
        row.push_str(&text[at..last_start]);
    } else {
        row.push_str(&text[at..]);
        row.push(opts.delimiter as char);
    }
    row.push_str(&String::from_utf8_lossy(end));
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> CsvOptions {
        CsvOptions {
            delimiter: b';',
            quote: b'"',
            header: true,
            skip_lines: 0,
        }
    }

    #[test]
    fn rows_of_one_text_are_kept_as_one_run_whatever_the_order() {
        let held: Rc<str> = HELD_BACK.into();
        let mut rows = Rows::new();
        // a grouped file's rows, then an ungrouped one's in any order, each its own Rc
        for l in (2..500_000).chain([600_000, 500_001, 500_000]) {
            rows.insert(l, l, HELD_BACK.into());
        }
        assert_eq!(rows.len(), 500_001);
        assert_eq!(rows.runs.len(), 2, "2..=500001 and 600000");
        assert_eq!(rows.get(&250_000), Some((250_000, held.clone())));
        assert_eq!(rows.get(&1), None);
        assert_eq!(rows.get(&500_002), None);
        // another text in the middle splits the run, and back it joins again
        rows.insert(300_000, 300_000, "bad".into());
        assert_eq!(rows.runs.len(), 4);
        assert_eq!(rows.get(&300_000).unwrap().1.as_ref(), "bad");
        assert_eq!(rows.get(&300_001), Some((300_001, held.clone())));
        assert_eq!(rows.len(), 500_001);
        rows.insert(300_000, 300_000, held.clone());
        assert_eq!(rows.runs.len(), 2);
        assert_eq!(rows.len(), 500_001);
    }

    #[test]
    fn rows_answer_as_a_map_of_every_place_would() {
        // places, lines and texts set and set again at random (a fixed LCG)
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let texts: [Rc<str>; 3] = ["a".into(), "b".into(), "c".into()];
        let (mut rows, mut map) = (Rows::new(), BTreeMap::new());
        for _ in 0..20_000 {
            let at = next(300);
            // mostly lines that follow a step, sometimes not
            let line = if next(4) == 0 { next(5000) } else { 2 + 3 * at };
            let text = texts[next(3) as usize].clone();
            rows.insert(at, line, text.clone());
            map.insert(at, (line, text));
        }
        assert_eq!(rows.len(), map.len());
        for at in 0..310 {
            assert_eq!(rows.get(&at), map.get(&at).cloned(), "place {at}");
        }
    }

    #[test]
    fn records_by_order_keep_the_line_each_starts_on() {
        let mut rows = Rows::new();
        // records 0..3 on lines 2, 3, 4 (one a line), then record 3 on line 9
        for (at, line) in [(0, 2), (1, 3), (2, 4), (3, 9)] {
            rows.insert(at, line, "m".into());
        }
        assert_eq!(rows.runs.len(), 1);
        let lines =
            |rows: &Rows| -> Vec<u64> { (0..4).map(|at| rows.get(&at).unwrap().0).collect() };
        assert_eq!(lines(&rows), [2, 3, 4, 9]);
        assert!(matches!(rows.runs[&0].lines, Lines::Listed(_)));
        // another text splits the list, and back it joins
        rows.insert(1, 3, "other".into());
        assert_eq!(rows.runs.len(), 3);
        assert_eq!(lines(&rows), [2, 3, 4, 9]);
        rows.insert(1, 3, "m".into());
        assert_eq!(rows.runs.len(), 1);
        assert_eq!(lines(&rows), [2, 3, 4, 9]);
        assert_eq!(rows.len(), 4);
        assert!(!rows.is_empty() && Rows::new().is_empty());
        // records of six lines each: one run of a step, however many
        let mut rows = Rows::new();
        for at in 0..100_000 {
            rows.insert(at, 3 + 6 * at, "held".into());
        }
        assert_eq!(rows.runs.len(), 1);
        assert_eq!(rows.runs[&0].lines, Lines::Step(3, Some(6)));
        assert_eq!(rows.get(&99_999).unwrap().0, 3 + 6 * 99_999);
        rows.insert(50_000, 3 + 6 * 50_000, "bad".into());
        assert_eq!(rows.get(&50_001).unwrap().0, 3 + 6 * 50_001);
        assert_eq!(rows.get(&49_999).unwrap().0, 3 + 6 * 49_999);
        rows.insert(50_000, 3 + 6 * 50_000, "held".into());
        assert_eq!(rows.runs.len(), 1);
        assert_eq!(rows.runs[&0].lines, Lines::Step(3, Some(6)));
    }

    #[test]
    fn an_error_lists_five_problems_and_counts_the_rest() {
        assert_eq!(&*listed(&["a", "b"], 0), "a | b");
        let many = ["1", "2", "3", "4", "5", "6", "7"];
        assert_eq!(
            &*listed(&many, 3),
            "1 | 2 | 3 | 4 | 5 | and 5 more problems: the file's errors.csv lists them all"
        );
        let mut kept = Kept::default();
        for m in ["x", "y", "x", "1", "2", "3", "4"] {
            kept.add(m.to_string());
        }
        assert_eq!(kept.first, ["x", "y", "1", "2", "3"]);
        assert_eq!(kept.more, 1);
    }

    #[test]
    fn records_end_at_line_feeds_outside_quotes_only() {
        let text = "a;\"x\ny\";c\r\nb;q\"r;s\n\"e\"\"f\";g";
        let mut r = io::Cursor::new(text.as_bytes());
        let mut line = 1;
        let first = next_record(&mut r, &opts(), &mut line).unwrap().unwrap();
        assert_eq!(first.raw, b"a;\"x\ny\";c\r\n");
        assert_eq!((first.line, first.fields), (1, 3));
        assert_eq!(&first.raw[first.last_field..], b"c\r\n");
        let second = next_record(&mut r, &opts(), &mut line).unwrap().unwrap();
        // a quote inside an unquoted value is a character, not a quote
        assert_eq!(second.raw, b"b;q\"r;s\n");
        assert_eq!(second.line, 3);
        let third = next_record(&mut r, &opts(), &mut line).unwrap().unwrap();
        assert_eq!(third.raw, b"\"e\"\"f\";g");
        assert_eq!(third.split().1, b"");
        assert!(next_record(&mut r, &opts(), &mut line).unwrap().is_none());
    }

    #[test]
    fn a_message_is_quoted_where_the_dialect_needs() {
        assert_eq!(quoted("plain text", &opts()), "plain text");
        assert_eq!(quoted("a; b", &opts()), "\"a; b\"");
        assert_eq!(quoted("say \"x\"", &opts()), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn characters_the_encoding_cannot_hold_become_question_marks() {
        let mut v = Vec::new();
        let mut e = Encoded::new(&mut v, encoding_rs::WINDOWS_1252, false).unwrap();
        e.write_str("é Ж €").unwrap();
        e.finish().unwrap();
        assert_eq!(v, b"\xe9 ? \x80");
    }

    #[test]
    fn a_code_page_writes_its_own_bytes_and_question_marks_for_the_rest() {
        let mut v = Vec::new();
        let mut e = Encoded::new(&mut v, UTF_8, false).unwrap();
        e.code_page = Some(crate::source::decode::CP437);
        e.write_str("Müller ╔═╗ € x").unwrap();
        e.finish().unwrap();
        assert_eq!(v, b"M\x81ller \xC9\xCD\xBB ? x");
    }
}
