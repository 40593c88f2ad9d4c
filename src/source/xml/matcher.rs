//! The state machine that follows the mapping's paths through quick-xml's events: which
//! paths are alive at each open element, which values are being collected, and when a
//! record or line starts and ends.

use super::line_counter::LineCounter;
use super::name_table::{NameIds, NO_ID};
use super::path::{Compiled, NameTest, NsTest, Paths, RecordPath, Role, Space, Target};
use super::reader::{check_ns_declarations, Events};
use super::row_buf::{RowBuf, CAPTURING, UNSET};
use super::syntax::{
    amp_cr_bracket, forbidden_char, is_xml_name, local_part, lossy, normalize_newlines, NAME_RULE,
};
use super::MAX_DEPTH;
use crate::problem::Problem;
use crate::source::count_newlines;
use crate::source::keys::SeenKeys;
use crate::source::{RawDocument, RawRow, Slots};
use quick_xml::errors::Error as XmlError;
use quick_xml::escape::unescape;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use std::borrow::Cow;
use std::io::Read;

/// Text being collected for a slot while its element is open.
#[derive(Debug)]
struct Capture {
    space: Space,
    slot: usize,
    depth: usize,
    own: bool,
    /// The only capture: its text goes straight into its row's buffer, from `start`
    /// on (see [`State::spill`]); else into `text`.
    direct: bool,
    start: u32,
    text: Vec<u8>,
    line: u64,
}

#[derive(Debug)]
struct LineState {
    depth: usize,
    line: u64,
}

/// The record being read; its values are in `State::header`, `State::key` and (the
/// current line's) `State::line`.
#[derive(Debug)]
pub(super) struct RecordState {
    depth: usize,
    pub(super) line: u64,
    pub(super) lines: Vec<RawRow>,
    current: Option<LineState>,
}

/// One open element.
#[derive(Debug)]
pub(super) struct Level {
    /// The element's name: the mapping's name with this number (an element whose
    /// name is one of the mapping's, unprefixed, is not copied), or, if `NO_ID`,
    /// `State::names[previous level's name_end..name_end]`.
    name: u32,
    name_end: u32,
    pub(super) line: u64,
    /// Bit k: this element matches the record path's steps up to k.
    rec: u64,
    /// The paths still matching below this element: `State::alive[alive_start..alive_end]`.
    alive_start: u32,
    alive_end: u32,
}

/// Everything but the quick-xml reader, so that events (borrowing the reader's buffer)
/// can be handled while the reader is looked at.
pub(super) struct State {
    pub(super) record: RecordPath,
    paths: Vec<Compiled>,
    record_anchored: Vec<u32>,
    line_anchored: Vec<u32>,
    pub(super) key_names: Vec<String>,
    /// The local names of the element steps.
    ids: NameIds,
    /// The values of the record being read, and of its current line.
    pub(super) header: RowBuf,
    pub(super) key: RowBuf,
    line: RowBuf,
    /// How many lines the last record had (to size the next one's).
    pub(super) last_lines: usize,
    pub(super) levels: Vec<Level>,
    /// The names of the open elements that are not the mapping's, one after the other
    /// (see `Level::name`); the element path is built from them only for a message.
    names: Vec<u8>,
    /// The paths alive at each open element (see `Level`), each with the `reach` it had
    /// before, to restore when the element closes.
    alive: Vec<(u32, u32)>,
    /// Per path: the depth of the deepest open element at which it is alive, 0 if none.
    reach: Vec<u32>,
    /// Per name number: the (path, step) pairs whose step tests that name.
    by_name: Vec<Vec<(u32, u32)>>,
    /// The (path, step) pairs whose step is `*`.
    wild: Vec<(u32, u32)>,
    pub(super) rec: Option<RecordState>,
    /// The record that has just ended, until the event loop hands it out.
    ready: Option<RawDocument>,
    captures: Vec<Capture>,
    /// Buffers of finished captures, for the next ones.
    spare: Vec<Vec<u8>>,
    /// Some element test names a namespace URI: elements must be resolved.
    uses_ns: bool,
    /// The document keys seen, with the line of their record.
    pub(super) keys: SeenKeys,
    pub(super) root_seen: bool,
    root_closed: bool,
    pub(super) root_name: String,
    pub(super) records: u64,
    /// The most record-path steps any element matched.
    pub(super) best: usize,
    pub(super) finished: bool,
}

impl State {
    /// The matcher of a mapping's compiled paths, before the first event; `key_window`:
    /// how many document keys the key log keeps in memory.
    pub(super) fn new(compiled: Paths, slots: &Slots, key_window: usize) -> State {
        let Paths {
            mut record,
            mut paths,
        } = compiled;
        let record_anchored = (0..paths.len() as u32)
            .filter(|&i| !paths[i as usize].at_line)
            .collect();
        let line_anchored = (0..paths.len() as u32)
            .filter(|&i| paths[i as usize].at_line)
            .collect();
        let uses_ns = record
            .steps
            .iter()
            .chain(paths.iter().flat_map(|c| c.path.steps.iter()))
            .any(|t| matches!(t.ns, NsTest::Uri(_)));
        let mut ids = NameIds::default();
        for t in record
            .steps
            .iter_mut()
            .chain(paths.iter_mut().flat_map(|c| c.path.steps.iter_mut()))
        {
            if let Some(l) = &t.local {
                t.id = ids.intern(l);
            }
        }
        ids.build();
        let n_paths = paths.len();
        let mut by_name = vec![Vec::new(); ids.names.len()];
        let mut wild = Vec::new();
        for (p, c) in paths.iter().enumerate() {
            for (k, t) in c.path.steps.iter().enumerate() {
                match t.local {
                    Some(_) => by_name[t.id as usize].push((p as u32, k as u32)),
                    None => wild.push((p as u32, k as u32)),
                }
            }
        }
        State {
            record,
            paths,
            record_anchored,
            line_anchored,
            key_names: slots.key.clone(),
            ids,
            header: RowBuf::new(slots.header.len()),
            key: RowBuf::new(slots.key.len()),
            line: RowBuf::new(slots.lines.len()),
            last_lines: 0,
            levels: Vec::new(),
            names: Vec::new(),
            alive: Vec::new(),
            reach: vec![0; n_paths],
            by_name,
            wild,
            rec: None,
            ready: None,
            captures: Vec::new(),
            spare: Vec::new(),
            keys: SeenKeys::new(key_window),
            uses_ns,
            root_seen: false,
            root_closed: false,
            root_name: String::new(),
            records: 0,
            best: 0,
            finished: false,
        }
    }
}

/// How the event loop stopped.
pub(super) enum Step {
    Document(RawDocument),
    /// The end of the file, on this line.
    Eof(u64),
    Fatal(Problem),
}

/// Reads events until a record ends, the file ends, or it turns out to be unusable.
pub(super) fn pump<C: Read, Rd: Events<Source = LineCounter<C>>>(
    rd: &mut Rd,
    buf: &mut Vec<u8>,
    st: &mut State,
) -> Step {
    loop {
        let counter = rd.get_mut();
        counter.mark();
        let line = counter.mark_line();
        buf.clear();
        let step = match rd.read_event_into(buf) {
            Ok(Event::Start(e)) => match Rd::PLAIN.then(|| check_ns_declarations(&e)) {
                Some(Err(err)) => Err(st.xml_error(XmlError::Namespace(err), rd)),
                _ => st.start(&e, false, line, rd),
            },
            Ok(Event::Empty(e)) => match Rd::PLAIN.then(|| check_ns_declarations(&e)) {
                Some(Err(err)) => Err(st.xml_error(XmlError::Namespace(err), rd)),
                _ => st.start(&e, true, line, rd),
            },
            Ok(Event::End(_)) => Ok(st.end_element()),
            Ok(Event::Text(t)) => st.text(&t, false, line, rd.get_ref()).map(|_| false),
            Ok(Event::CData(t)) => st.text(&t, true, line, rd.get_ref()).map(|_| false),
            Ok(Event::DocType(d)) => st.doctype(&d, line).map(|_| false),
            Ok(Event::Eof) => return Step::Eof(line),
            Ok(Event::Decl(_) | Event::PI(_) | Event::Comment(_)) => Ok(false),
            Err(e) => Err(st.xml_error(e, rd)),
        };
        // (a finished record waits in `st.ready`: no event moves a document around)
        match step {
            Ok(true) => {
                return Step::Document(st.ready.take().expect("a finished record"));
            }
            Ok(false) => {}
            Err(p) => return Step::Fatal(p),
        }
    }
}

impl State {
    /// The open elements as a path, `/Export/Invoice/Lines`.
    pub(super) fn element_path(&self) -> Option<String> {
        if self.levels.is_empty() {
            return None;
        }
        let mut path = Vec::new();
        for i in 0..self.levels.len() {
            path.push(b'/');
            path.extend_from_slice(self.level_name(i));
        }
        Some(lossy(&path))
    }

    /// The name of the open element `levels[i]`.
    pub(super) fn level_name(&self, i: usize) -> &[u8] {
        let l = &self.levels[i];
        if l.name != NO_ID {
            return &self.ids.names[l.name as usize];
        }
        let start = i.checked_sub(1).map_or(0, |j| self.levels[j].name_end);
        &self.names[start as usize..l.name_end as usize]
    }

    fn start<C: Read, Rd: Events<Source = LineCounter<C>>>(
        &mut self,
        e: &BytesStart,
        empty: bool,
        line: u64,
        rd: &Rd,
    ) -> Result<bool, Problem> {
        let depth = self.levels.len() + 1;
        let qname = e.name();
        if self.root_closed {
            return Err(self.malformed(
                line,
                None,
                &format!(
                    "a second root element <{}> follows the end of <{}>",
                    lossy(qname.as_ref()),
                    self.root_name
                ),
                Some(lossy(qname.as_ref())),
            ));
        }
        if depth > MAX_DEPTH {
            return Err(self.malformed(
                line,
                None,
                &format!("elements are nested more than {MAX_DEPTH} deep"),
                None,
            ));
        }
        if !self.root_seen {
            self.root_seen = true;
            self.root_name = lossy(qname.as_ref());
        }
        // the paths that may continue below the parent
        let (from, to) = match self.levels.last() {
            Some(parent) if self.rec.is_some() => (parent.alive_start, parent.alive_end),
            _ => (0, 0),
        };
        // the element's name is looked up (and its namespace resolved) once, and only
        // when some path may match it
        let test = self.rec.is_none() || from < to;
        let local = local_part(qname.as_ref());
        let local_len = local.len();
        let id = if test { self.ids.get(local) } else { NO_ID };
        // a name of the mapping's was checked once
        let mapped = id != NO_ID && local_len == qname.as_ref().len();
        let named = if mapped {
            self.ids.xml[id as usize]
        } else {
            is_xml_name(qname.as_ref())
        };
        if !named {
            let (l, c) = rd.get_ref().place_in_tag(e, empty, 0, line);
            return Err(self.malformed(
                l,
                c,
                &format!(
                    "the element name `{}` is not an XML name ({NAME_RULE})",
                    lossy(qname.as_ref())
                ),
                Some(lossy(qname.as_ref())),
            ));
        }
        if !e.attributes_raw().is_empty() {
            self.check_attributes(e, empty, line, rd.get_ref())?;
        }
        let res = if test && self.uses_ns {
            rd.resolve_element(qname)
        } else {
            ResolveResult::Unbound
        };

        let mut rec_bits = 0u64;
        let mut starts_record = false;
        if self.rec.is_none() {
            let parent = self.levels.last().map_or(0, |l| l.rec);
            let n = self.record.steps.len();
            for k in 0..n {
                let prev = if k == 0 {
                    self.record.anywhere || depth == 1
                } else {
                    parent & (1 << (k - 1)) != 0
                };
                if prev && self.record.steps[k].matches_element(qname, id, &res) {
                    rec_bits |= 1 << k;
                    self.best = self.best.max(k + 1);
                }
            }
            starts_record = rec_bits & (1 << (n - 1)) != 0;
        }

        // a name of the mapping is kept as its number, any other is copied
        let name = if id != NO_ID && local_len == qname.as_ref().len() {
            id
        } else {
            self.names.extend_from_slice(qname.as_ref());
            NO_ID
        };
        let alive_start = self.alive.len() as u32;
        self.levels.push(Level {
            name,
            name_end: self.names.len() as u32,
            line,
            rec: rec_bits,
            alive_start,
            alive_end: alive_start,
        });
        if starts_record {
            self.records += 1;
            self.rec = Some(RecordState {
                depth,
                line,
                lines: Vec::with_capacity(self.last_lines),
                current: None,
            });
            self.header.reset();
            self.key.reset();
            for i in 0..self.record_anchored.len() {
                let p = self.record_anchored[i];
                self.make_alive(p, depth);
                if self.paths[p as usize].path.steps.is_empty() {
                    self.full_match(p, e, line, depth, rd)?;
                }
            }
        } else if from < to {
            let Some(rec) = &self.rec else {
                unreachable!("paths are alive only inside a record")
            };
            let record_depth = rec.depth;
            let line_depth = rec.current.as_ref().map_or(usize::MAX, |l| l.depth);
            // Only the steps that test this name (or `*`) can match: for each, whether
            // its path is alive at the parent and this element is its step's depth.
            let named = self.by_name.get(id as usize).map_or(0, Vec::len);
            for i in 0..named + self.wild.len() {
                let (p, k) = match i.checked_sub(named) {
                    None => self.by_name[id as usize][i],
                    Some(w) => self.wild[w],
                };
                if self.reach[p as usize] as usize != depth - 1 {
                    continue;
                }
                let c = &self.paths[p as usize];
                let base = if c.at_line { line_depth } else { record_depth };
                let r = depth.saturating_sub(base);
                let steps = &c.path.steps;
                if r == k as usize + 1 && steps[k as usize].matches_element(qname, id, &res) {
                    let full = r == steps.len();
                    self.make_alive(p, depth);
                    if full {
                        self.full_match(p, e, line, depth, rd)?;
                    }
                }
            }
        }
        if let Some(l) = self.levels.last_mut() {
            l.alive_end = self.alive.len() as u32;
        }
        if empty {
            return Ok(self.end_element());
        }
        Ok(false)
    }

    /// Path `p` is alive at the element being opened, at `depth`.
    #[inline]
    fn make_alive(&mut self, p: u32, depth: usize) {
        let r = &mut self.reach[p as usize];
        self.alive.push((p, *r));
        *r = depth as u32;
    }

    /// Where the values of `space` go, while its record (or line) is being read.
    #[inline]
    fn row_buf(&mut self, space: Space) -> Option<&mut RowBuf> {
        let rec = self.rec.as_ref()?;
        match space {
            Space::Header => Some(&mut self.header),
            Space::Key => Some(&mut self.key),
            Space::Line => {
                rec.current.as_ref()?;
                Some(&mut self.line)
            }
        }
    }

    /// Moves the text of a direct capture (there is at most one, and its text is at the
    /// end of its row's buffer) into a buffer of its own, before anything else is
    /// written into a row.
    fn spill(&mut self) {
        let Some(i) = self.captures.iter().position(|c| c.direct) else {
            return;
        };
        let mut text = self.spare.pop().unwrap_or_default();
        let (space, start) = (self.captures[i].space, self.captures[i].start as usize);
        if let Some(b) = self.row_buf(space) {
            text.extend_from_slice(&b.text[start..]);
            b.text.truncate(start);
        }
        let c = &mut self.captures[i];
        c.direct = false;
        c.text = text;
    }

    /// Path `p` reaches element `e`.
    fn full_match<Rd: Events>(
        &mut self,
        p: u32,
        e: &BytesStart,
        line: u64,
        depth: usize,
        rd: &Rd,
    ) -> Result<(), Problem> {
        let role = self.paths[p as usize].role;
        match role {
            Role::Lines => {
                let Some(rec) = self.rec.as_mut() else {
                    return Ok(());
                };
                if rec.current.is_some() {
                    return Ok(());
                }
                rec.current = Some(LineState { depth, line });
                self.line.reset();
                for j in 0..self.line_anchored.len() {
                    let q = self.line_anchored[j];
                    self.make_alive(q, depth);
                    if self.paths[q as usize].path.steps.is_empty() {
                        self.full_match(q, e, line, depth, rd)?;
                    }
                }
            }
            Role::Slot(space, slot) => {
                let unset = self
                    .row_buf(space)
                    .and_then(|b| b.vals.get(slot))
                    .is_some_and(|v| v.state == UNSET);
                if !unset {
                    return Ok(());
                }
                match &self.paths[p as usize].path.target {
                    Target::Element | Target::OwnText => {
                        let own = self.paths[p as usize].path.target == Target::OwnText;
                        // the only capture writes into its row directly; a second one
                        // takes the first one's text out of the row
                        let direct = self.captures.is_empty();
                        let (text, start) = if direct {
                            let start = self.row_buf(space).map_or(0, |b| b.text.len() as u32);
                            (Vec::new(), start)
                        } else {
                            self.spill();
                            (self.spare.pop().unwrap_or_default(), 0)
                        };
                        self.captures.push(Capture {
                            space,
                            slot,
                            depth,
                            own,
                            direct,
                            start,
                            text,
                            line,
                        });
                        if let Some(v) = self.row_buf(space).and_then(|b| b.vals.get_mut(slot)) {
                            v.state = CAPTURING;
                        }
                    }
                    Target::Attr(test) => {
                        if let Some(v) = self.find_attr(e, test, rd, line)? {
                            self.spill();
                            if let Some(b) = self.row_buf(space) {
                                b.set(slot, v.as_bytes(), line);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The value of the attribute of `e` that `test` names; an unprefixed attribute wins
    /// over a prefixed one with the same local name.
    fn find_attr<Rd: Events>(
        &self,
        e: &BytesStart,
        test: &NameTest,
        rd: &Rd,
        line: u64,
    ) -> Result<Option<String>, Problem> {
        let mut found = None;
        // (checked when the element was opened: no need to look for duplicates again)
        let mut attrs = e.attributes();
        attrs.with_checks(false);
        for a in attrs.flatten() {
            let key = a.key;
            let prefix = key.prefix();
            if key.as_ref() == b"xmlns" || prefix.is_some_and(|p| p.as_ref() == b"xmlns") {
                continue;
            }
            if let Some(l) = &test.local {
                if key.local_name().as_ref() != l.as_slice() {
                    continue;
                }
            }
            let ok = match &test.ns {
                NsTest::Any => true,
                NsTest::Uri(u) => matches!(rd.resolve_attribute(key),
                    ResolveResult::Bound(n) if n.as_ref() == u.as_slice()),
                NsTest::Prefix(p) => prefix.is_some_and(|x| x.as_ref() == p.as_slice()),
            };
            if !ok {
                continue;
            }
            let unprefixed = prefix.is_none();
            if found.is_none() || unprefixed {
                found = Some(a);
            }
            if unprefixed {
                break;
            }
        }
        let Some(a) = found else {
            return Ok(None);
        };
        // Attribute-value normalisation: each line end or tab is a space.
        let raw = String::from_utf8_lossy(&a.value);
        let norm = raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
        match unescape(&norm) {
            Ok(v) => Ok(Some(v.into_owned())),
            Err(err) => Err(self.escape_problem(err, &norm, line)),
        }
    }

    fn text<C: Read>(
        &mut self,
        raw: &[u8],
        cdata: bool,
        line: u64,
        counter: &LineCounter<C>,
    ) -> Result<(), Problem> {
        if self.levels.is_empty() {
            if raw.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let lead = raw.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let line = line + count_newlines(&raw[..lead]);
            let shown: String = String::from_utf8_lossy(&raw[lead..])
                .chars()
                .take(40)
                .collect();
            let what = if self.root_closed {
                "there is text after the end of the root element"
            } else {
                "there is text before the first element: this is not an XML file"
            };
            return Err(self.malformed(line, None, what, Some(shown.trim().to_string())));
        }
        let (amp, has_cr, bracket) = amp_cr_bracket(raw);
        if bracket && !cdata {
            if let Some(at) = memchr::memmem::find(raw, b"]]>") {
                let (l, c) = counter.place_in_text(at, line + count_newlines(&raw[..at]));
                return Err(self.malformed(
                    l,
                    c,
                    "`]]>` stands in text, outside a CDATA section (write it ]]&gt;)",
                    Some("]]>".to_string()),
                ));
            }
        }
        let has_amp = !cdata && amp;
        if self.captures.is_empty() && !has_amp {
            return Ok(());
        }
        let depth = self.levels.len();
        if !has_amp && !has_cr {
            // the usual value: taken as it is (UTF-8, checked with its row)
            self.append(raw, depth);
            return Ok(());
        }
        let s = String::from_utf8_lossy(raw);
        let s = normalize_newlines(&s);
        let unescaped;
        let text: &str = if has_amp {
            unescaped = unescape(&s).map_err(|e| self.escape_problem(e, &s, line))?;
            if let Cow::Owned(u) = &unescaped {
                if let Some(ch) = forbidden_char(u) {
                    let at = memchr::memmem::find(raw, b"&#").unwrap_or(0);
                    let (l, c) = counter.place_in_text(at, line + count_newlines(&raw[..at]));
                    return Err(self.forbidden_reference(ch, l, c));
                }
            }
            &unescaped
        } else {
            &s
        };
        self.append(text.as_bytes(), depth);
        Ok(())
    }

    /// Adds text (of an element at `depth`) to the captures that take it.
    #[inline]
    fn append(&mut self, text: &[u8], depth: usize) {
        for c in &mut self.captures {
            if !c.own || c.depth == depth {
                if c.direct {
                    let b = match c.space {
                        Space::Header => &mut self.header,
                        Space::Key => &mut self.key,
                        Space::Line => &mut self.line,
                    };
                    b.text.extend_from_slice(text);
                } else {
                    c.text.extend_from_slice(text);
                }
            }
        }
    }

    /// Closes the innermost element; true when it was a record (then in `ready`).
    fn end_element(&mut self) -> bool {
        let depth = self.levels.len();
        let mut i = 0;
        while i < self.captures.len() {
            if self.captures[i].depth == depth {
                let mut c = self.captures.swap_remove(i);
                if c.direct {
                    if let Some(b) = self.row_buf(c.space) {
                        b.close(c.slot, c.start, c.line);
                    }
                    continue;
                }
                if let Some(b) = self.row_buf(c.space) {
                    b.set(c.slot, &c.text, c.line);
                }
                c.text.clear();
                if c.text.capacity() <= 1 << 20 {
                    self.spare.push(c.text);
                }
            } else {
                i += 1;
            }
        }
        let mut done = false;
        if let Some(rec) = self.rec.as_mut() {
            if rec.current.as_ref().is_some_and(|l| l.depth == depth) {
                let l = rec.current.take().expect("a current line");
                rec.lines.push(self.line.row(l.line));
            }
            if rec.depth == depth {
                let doc = self.finish_record();
                self.ready = Some(doc);
                done = true;
            }
        }
        if let Some(lvl) = self.levels.pop() {
            for &(p, prev) in self.alive[lvl.alive_start as usize..].iter().rev() {
                self.reach[p as usize] = prev;
            }
            self.alive.truncate(lvl.alive_start as usize);
        }
        self.names
            .truncate(self.levels.last().map_or(0, |l| l.name_end as usize));
        if self.levels.is_empty() {
            self.root_closed = true;
        }
        done
    }
}
