//! JSON exports: one JSON value whose array of records a pointer names (`record =
//! "/invoices"`), or one record per line (newline-delimited JSON, without `record`).
//!
//! Both stream: the parser (`parse`) builds one record at a time; before the array it
//! goes down the pointer's path, checking and dropping what lies beside it, and after it
//! checks the rest of the file. Fields read paths inside a record (`customer/id`; a
//! number indexes an array: `addresses/0/city`), line fields paths inside a line of the
//! record's `lines` array. A number is its text as written, marked as a number (a
//! number field reads it whatever the mapping's separators, which are for strings such
//! as `"1.234,50"`); `null` is no value.

mod parse;

use super::decode::{DecodeReader, Tap, TapReader};
use super::keys::{document_key, duplicate, missing_key, SeenKeys};
use super::{DocumentSource, RawDocument, RawRow, Slots, SourceError, SourceOptions};
use crate::problem::{quote, Code, Problem, Stage};
use encoding_rs::UTF_8;
use parse::{Lexer, Node, Value};
use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

type Input<R> = DecodeReader<TapReader<R>>;

/// Where the reader stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// One record per line: the next value is a record.
    Lines,
    /// In the records' array, before its first element.
    First,
    /// In the records' array, after an element.
    Next,
    /// Past the last record.
    Done,
}

/// A container around the records' array, to be read to its end after it.
#[derive(Debug, Clone, Copy)]
enum Around {
    Object,
    Array,
}

/// A path inside a record: member names, or array indexes where a name is a number.
#[derive(Debug, Clone)]
struct Path {
    text: String,
    parts: Vec<String>,
}

impl Path {
    fn new(text: &str) -> Path {
        Path {
            text: text.to_string(),
            parts: text.split('/').map(str::to_string).collect(),
        }
    }
}

/// A JSON export read as a stream of documents.
pub struct JsonSource<R: Read> {
    lexer: Lexer<Input<R>>,
    state: State,
    around: Vec<Around>,
    header: Vec<Path>,
    line_paths: Vec<Path>,
    key: Vec<Path>,
    lines: Option<Path>,
    wants_lines: bool,
    keys: SeenKeys,
    tap: Rc<RefCell<Tap>>,
    /// `[[skip]]`: a record whose value at the rule's path matches makes no document.
    skip: Vec<(Path, crate::source::SkipRule)>,
    skipped: u64,
}

impl<R: Read> JsonSource<R> {
    /// Opens the file and, with a `record` pointer, goes down to the records' array. A
    /// problem here concerns the whole file.
    pub fn open(
        input: R,
        tap: Rc<RefCell<Tap>>,
        opts: &SourceOptions,
        slots: &Slots,
    ) -> Result<JsonSource<R>, Problem> {
        let encoding = opts.encoding.unwrap_or(UTF_8);
        let decoder = DecodeReader::new(TapReader::new(input, tap.clone()), encoding)
            .with_code_page(opts.code_page);
        let paths = |l: &[String]| l.iter().map(|p| Path::new(p)).collect();
        let mut src = JsonSource {
            lexer: Lexer::new(decoder),
            state: State::Lines,
            around: Vec::new(),
            header: paths(&slots.header),
            line_paths: paths(&slots.lines),
            key: paths(&slots.key),
            lines: opts.json.lines.as_deref().map(Path::new),
            wants_lines: slots.wants_lines || !slots.lines.is_empty(),
            keys: SeenKeys::new(opts.budget.key_window),
            tap,
            skip: Vec::new(),
            skipped: 0,
        };
        if let Some(pointer) = &opts.json.record {
            src.descend(pointer)?;
            src.state = State::First;
        }
        Ok(src)
    }

    /// Leaves out the records that a `[[skip]]` rule matches: the rule's `column` is a
    /// path inside the record, as a field's `from` is (a record without it is kept).
    pub fn with_skip(mut self, rules: &[crate::source::SkipRule]) -> JsonSource<R> {
        self.skip = rules
            .iter()
            .map(|r| (Path::new(&r.column), r.clone()))
            .collect();
        self
    }

    /// Whether a `[[skip]]` rule leaves the record out.
    fn skips(&self, rec: &Node) -> bool {
        self.skip.iter().any(|(path, rule)| {
            text_at(rec, path, &mut Vec::new())
                .is_some_and(|(t, ..)| rule.skips(crate::source::trim(&t)))
        })
    }

    /// For a second pass: the keys (hashes) that occur more than once (see
    /// [`SourceError::Repeated`]).
    pub fn with_repeats(mut self, repeats: Vec<u64>) -> JsonSource<R> {
        self.keys = SeenKeys::known(repeats);
        self
    }

    /// Goes down `pointer` to the array of records and takes its `[`.
    fn descend(&mut self, pointer: &str) -> Result<(), Problem> {
        let segments: Vec<String> = match pointer {
            "" => Vec::new(),
            p => p[1..]
                .split('/')
                .map(|s| unescape(s).unwrap_or_default())
                .collect(),
        };
        let shown = |n: usize| -> String {
            if n == 0 {
                "the file's top level".to_string()
            } else {
                quote(&format!("/{}", segments[..n].join("/")))
            }
        };
        let nothing = |lexer: &Lexer<Input<R>>, line: u64, detail: String| {
            Problem::file(
                Code::Malformed,
                Some(line),
                format!(
                    "The record pointer {} matches nothing in the file: {detail}",
                    quote(pointer)
                ),
            )
            .with_value(pointer.to_string())
            .with_character(Some(lexer.col))
        };
        for (n, seg) in segments.iter().enumerate() {
            let Some(b) = self.lexer.skip_ws()? else {
                return Err(self.empty());
            };
            let line = self.lexer.line;
            match b {
                b'{' => {
                    self.lexer.bump();
                    self.around.push(Around::Object);
                    let mut names: Vec<String> = Vec::new();
                    loop {
                        if self.lexer.skip_ws()? == Some(b'}') {
                            let list = match names.len() {
                                0 => "it is empty".to_string(),
                                _ => format!(
                                    "its members are {}",
                                    names
                                        .iter()
                                        .map(|n| quote(n))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            };
                            let detail = format!(
                                "the object {} (line {line}) has no member {}; {list}",
                                if n == 0 {
                                    "at the top level".to_string()
                                } else {
                                    format!("at {}", shown(n))
                                },
                                quote(seg)
                            );
                            return Err(nothing(&self.lexer, line, detail));
                        }
                        let name = self.lexer.key()?;
                        self.lexer.expect(b':', "`:` after a member's name")?;
                        if name == *seg {
                            break;
                        }
                        if names.len() < 20 && !names.contains(&name) {
                            names.push(name);
                        }
                        self.lexer.value(0, false)?;
                        match self.lexer.skip_ws()? {
                            Some(b',') => self.lexer.bump(),
                            Some(b'}') => {}
                            Some(_) => {
                                return Err(self
                                    .lexer
                                    .malformed("Expected `,` or `}` in an object"))
                            }
                            None => return Err(self.lexer.cut_off("`}` (the end of an object)")),
                        }
                    }
                }
                b'[' => {
                    let Ok(index) = seg.parse::<usize>() else {
                        let detail = format!(
                            "{} is an array (line {line}), and {} is not an index",
                            shown(n),
                            quote(seg)
                        );
                        return Err(nothing(&self.lexer, line, detail));
                    };
                    self.lexer.bump();
                    self.around.push(Around::Array);
                    for i in 0..index {
                        if self.lexer.skip_ws()? == Some(b']') {
                            let detail =
                                format!("the array {} (line {line}) has {i} elements", shown(n));
                            return Err(nothing(&self.lexer, line, detail));
                        }
                        self.lexer.value(0, false)?;
                        self.lexer.expect(b',', "`,` between elements")?;
                    }
                    if self.lexer.skip_ws()? == Some(b']') {
                        let detail =
                            format!("the array {} (line {line}) has {index} elements", shown(n));
                        return Err(nothing(&self.lexer, line, detail));
                    }
                }
                _ => {
                    let v = self.lexer.value(0, true)?;
                    let detail = format!(
                        "{} is {} (line {line}), not an object",
                        shown(n),
                        v.value.kind()
                    );
                    return Err(nothing(&self.lexer, line, detail));
                }
            }
        }
        let Some(b) = self.lexer.skip_ws()? else {
            return Err(self.empty());
        };
        if b != b'[' {
            let line = self.lexer.line;
            let v = self.lexer.value(0, true)?;
            return Err(Problem::file(
                Code::Malformed,
                Some(line),
                format!(
                    "The record pointer {} names {} (line {line}), not an array of records",
                    quote(pointer),
                    v.value.kind()
                ),
            )
            .with_value(pointer.to_string()));
        }
        self.lexer.bump();
        Ok(())
    }

    fn empty(&self) -> Problem {
        Problem::file(
            Code::Empty,
            None,
            "The file is empty: it holds no JSON value",
        )
    }

    /// After the records' array: the rest of what holds it, then the end of the file.
    fn finish(&mut self) -> Result<(), Problem> {
        while let Some(a) = self.around.pop() {
            match a {
                Around::Object => loop {
                    match self.lexer.skip_ws()? {
                        Some(b',') => {
                            self.lexer.bump();
                            self.lexer.key()?;
                            self.lexer.expect(b':', "`:` after a member's name")?;
                            self.lexer.value(0, false)?;
                        }
                        Some(b'}') => {
                            self.lexer.bump();
                            break;
                        }
                        Some(_) => {
                            return Err(self.lexer.malformed("Expected `,` or `}` in an object"))
                        }
                        None => return Err(self.lexer.cut_off("`}` (the end of an object)")),
                    }
                },
                Around::Array => loop {
                    match self.lexer.skip_ws()? {
                        Some(b',') => {
                            self.lexer.bump();
                            self.lexer.value(0, false)?;
                        }
                        Some(b']') => {
                            self.lexer.bump();
                            break;
                        }
                        Some(_) => {
                            return Err(self.lexer.malformed("Expected `,` or `]` in an array"))
                        }
                        None => return Err(self.lexer.cut_off("`]` (the end of an array)")),
                    }
                },
            }
        }
        self.end_of_file()
    }

    fn end_of_file(&mut self) -> Result<(), Problem> {
        match self.lexer.skip_ws()? {
            None => Ok(()),
            Some(_) => Err(self.lexer.malformed(
                "There is more after the end of the JSON value (without `record`, each line is one record)",
            )),
        }
    }

    /// The next record, `None` after the last.
    fn next_record(&mut self) -> Result<Option<Node>, Problem> {
        match self.state {
            State::Done => Ok(None),
            State::Lines => match self.lexer.skip_ws()? {
                None => {
                    self.state = State::Done;
                    Ok(None)
                }
                Some(_) => self.lexer.value(1, true).map(Some),
            },
            State::First | State::Next => {
                let b = self.lexer.skip_ws()?;
                match (self.state, b) {
                    (_, Some(b']')) => {
                        self.lexer.bump();
                        self.state = State::Done;
                        self.finish()?;
                        return Ok(None);
                    }
                    (State::Next, Some(b',')) => self.lexer.bump(),
                    (State::Next, Some(_)) => {
                        return Err(self.lexer.malformed(
                            "Expected `,` or `]` after a record in the array of records",
                        ))
                    }
                    (_, None) => {
                        return Err(self.lexer.cut_off("`]` (the end of the array of records)"))
                    }
                    _ => {}
                }
                self.state = State::Next;
                self.lexer.value(self.around.len() + 1, true).map(Some)
            }
        }
    }

    /// A record as a document.
    fn document(&mut self, rec: Node) -> RawDocument {
        let line = rec.line;
        let mut problems = Vec::new();
        let mut doc = RawDocument {
            line,
            rows: 1,
            ..RawDocument::default()
        };
        if !matches!(rec.value, Value::Obj(_)) {
            let hint = match (&rec.value, self.state) {
                (Value::Arr(_), State::Lines) => {
                    ": a file that is one array of records needs `record = \"\"` in [source]"
                }
                _ => "",
            };
            let msg = format!(
                "A record must be an object, but this one is {}{hint}",
                rec.value.kind()
            );
            problems.push(
                Problem::new(Stage::Read, Code::Malformed, &msg)
                    .with_line(line)
                    .with_value(rec.value.kind().to_string()),
            );
        }
        let key: Vec<String> = self
            .key
            .iter()
            .map(|p| {
                text_at(&rec, p, &mut problems)
                    .map(|(t, ..)| t)
                    .unwrap_or_default()
            })
            .collect();
        let key = document_key(key);
        doc.header = row_of(&rec, &self.header, &mut problems);
        if self.wants_lines {
            if let Some(lp) = &self.lines {
                match find(&rec, &lp.parts) {
                    Found::Node(n) => match &n.value {
                        Value::Arr(items) => {
                            for (i, item) in items.iter().enumerate() {
                                if !matches!(item.value, Value::Obj(_)) {
                                    let msg = format!(
                                        "Line {} of the record ({}[{i}]) is {}, not an object",
                                        i + 1,
                                        lp.text,
                                        item.value.kind()
                                    );
                                    problems.push(
                                        Problem::new(Stage::Read, Code::Malformed, &msg)
                                            .with_line(item.line)
                                            .with_column(lp.text.clone()),
                                    );
                                    continue;
                                }
                                doc.lines
                                    .push(row_of(item, &self.line_paths, &mut problems));
                            }
                        }
                        Value::Null => {}
                        other => {
                            let msg =
                                format!("{} is {}, not an array of lines", lp.text, other.kind());
                            problems.push(
                                Problem::new(Stage::Read, Code::Malformed, &msg)
                                    .with_line(n.line)
                                    .with_column(lp.text.clone()),
                            );
                        }
                    },
                    Found::Absent => {}
                    Found::Blocked(p) => problems.push(p.problem(&lp.text)),
                }
            }
        }
        let names: Vec<String> = self.key.iter().map(|p| p.text.clone()).collect();
        if key.is_empty() {
            let msg = format!(
                "This record has no {}, the document key",
                names.join(" or ")
            );
            problems.push(missing_key(&msg, line, &names));
        } else if let Some(first) = self.keys.see(&key, line) {
            let shown = key.join("/");
            let msg = format!(
                "Document {shown} appears twice in the file: this record has the same key as the one on line {first}"
            );
            problems.push(duplicate(&msg, &shown, line, names.join(", "), &shown));
        }
        doc.key = key;
        doc.problems = problems;
        doc
    }
}

/// The values of `paths` in `node`, with their lines; a JSON number's slot is marked as
/// a number ([`RawRow::mark_number_of`]), so that a number field reads its decimal
/// whatever the mapping's separators, which are for strings (`"1.234,50"`).
fn row_of(node: &Node, paths: &[Path], problems: &mut Vec<Problem>) -> RawRow {
    let mut text = String::new();
    let mut slots = Vec::with_capacity(paths.len());
    let mut numbers = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        match text_at(node, p, problems) {
            Some((t, line, number)) => {
                let start = text.len() as u32;
                text.push_str(&t);
                slots.push(Some((start, text.len() as u32, line)));
                if number {
                    numbers.push(i);
                }
            }
            None => slots.push(None),
        }
    }
    let mut row = RawRow::from_parts(node.line, &text, slots.into_iter());
    for i in numbers {
        row.mark_number_of(i);
    }
    row
}

/// A scalar's text at `path`, its line and whether it is a number (its text as
/// written, `1234.50`); `None` where there is none (absent, `null`, or not a scalar:
/// then a problem says so).
fn text_at(node: &Node, path: &Path, problems: &mut Vec<Problem>) -> Option<(String, u64, bool)> {
    match find(node, &path.parts) {
        Found::Absent => None,
        Found::Blocked(b) => {
            problems.push(b.problem(&path.text));
            None
        }
        Found::Node(n) => match &n.value {
            Value::Null => None,
            Value::Bool(b) => Some((b.to_string(), n.line, false)),
            Value::Num(s) => Some((s.clone(), n.line, true)),
            Value::Str(s) => Some((s.clone(), n.line, false)),
            Value::Arr(_) | Value::Obj(_) => {
                let msg = format!(
                    "{} is {}, not a value: read one of its {} ({}/...)",
                    path.text,
                    n.value.kind(),
                    if matches!(n.value, Value::Arr(_)) {
                        "elements"
                    } else {
                        "members"
                    },
                    path.text
                );
                problems.push(
                    Problem::new(Stage::Read, Code::Type, &msg)
                        .with_line(n.line)
                        .with_column(path.text.clone())
                        .with_value(n.value.kind().to_string()),
                );
                None
            }
        },
    }
}

enum Found<'a> {
    Node(&'a Node),
    Absent,
    /// The path goes through a value that is not an object or array.
    Blocked(Blocked),
}

struct Blocked {
    at: String,
    kind: &'static str,
    line: u64,
}

impl Blocked {
    fn problem(&self, path: &str) -> Problem {
        let msg = format!(
            "{} is {}, not an object: {} cannot be read",
            self.at, self.kind, path
        );
        Problem::new(Stage::Read, Code::Type, &msg)
            .with_line(self.line)
            .with_column(path.to_string())
            .with_value(self.kind.to_string())
    }
}

/// The node at `parts` below `node` (the first member of a name counts; a number
/// indexes an array).
fn find<'a>(node: &'a Node, parts: &[String]) -> Found<'a> {
    let mut cur = node;
    for (i, part) in parts.iter().enumerate() {
        let next = match &cur.value {
            Value::Obj(members) => members.iter().find(|(k, _)| k == part).map(|(_, v)| v),
            Value::Arr(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            Value::Null => return Found::Absent,
            other => {
                if i == 0 {
                    // the record itself is no object: said once, for the record
                    return Found::Absent;
                }
                return Found::Blocked(Blocked {
                    at: parts[..i].join("/"),
                    kind: other.kind(),
                    line: cur.line,
                });
            }
        };
        match next {
            Some(n) => cur = n,
            None => return Found::Absent,
        }
    }
    Found::Node(cur)
}

impl<R: Read> DocumentSource for JsonSource<R> {
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
        let mut next = self.next_record();
        while let Ok(Some(rec)) = &next {
            if !self.skips(rec) {
                break;
            }
            self.skipped += 1;
            next = self.next_record();
        }
        match next {
            Ok(Some(rec)) => Some(Ok(self.document(rec))),
            Ok(None) => match std::mem::take(&mut self.keys).finish() {
                Ok(Some(r)) => Some(Err(SourceError::Repeated(r))),
                Ok(None) => None,
                Err(e) => Some(Err(SourceError::Environment(format!(
                    "cannot read back a temporary file of document keys (is the temporary folder full?): {e}"
                )))),
            },
            Err(p) => {
                self.state = State::Done;
                Some(Err(SourceError::Fatal(p)))
            }
        }
    }

    fn bytes_read(&self) -> u64 {
        self.tap.borrow().bytes
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// Checks a `record` pointer (RFC 6901): `""` for a file that is one array, or
/// `/member/...` with `~0` for `~` and `~1` for `/`.
pub fn check_pointer(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Ok(());
    }
    if !p.starts_with('/') {
        return Err(format!("{p:?} is not a JSON pointer: it starts with / (e.g. \"/invoices\", or \"\" for a file that is one array)"));
    }
    for seg in p[1..].split('/') {
        unescape(seg).ok_or_else(|| {
            format!("{p:?} is not a JSON pointer: `~` must be followed by 0 (for ~) or 1 (for /)")
        })?;
    }
    Ok(())
}

/// Checks a path inside a record (`customer/id`, `lines`, `addresses/0/city`).
pub fn check_path(p: &str) -> Result<(), String> {
    if p.starts_with('/') {
        return Err(format!(
            "{p:?}: a path inside a record does not start with / (write \"customer/id\")"
        ));
    }
    if p.is_empty() || p.split('/').any(str::is_empty) {
        return Err(format!(
            "{p:?} is not a path: its names are separated by single slashes (\"customer/id\")"
        ));
    }
    Ok(())
}

/// A pointer segment with `~1` and `~0` undone; `None` for another `~`.
fn unescape(seg: &str) -> Option<String> {
    if !seg.contains('~') {
        return Some(seg.to_string());
    }
    let mut out = String::new();
    let mut chars = seg.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_marked_and_a_string_or_a_boolean_is_not() {
        let rec = Lexer::new(
            r#"{"a": 1234.5, "b": "1.234,50", "c": true, "d": null, "e": {"f": 0.1}}"#.as_bytes(),
        )
        .value(0, true)
        .unwrap();
        let paths: Vec<Path> = ["a", "b", "c", "d", "e/f", "x"]
            .iter()
            .map(|p| Path::new(p))
            .collect();
        let row = row_of(&rec, &paths, &mut Vec::new());
        let got: Vec<_> = (0..paths.len())
            .map(|i| (row.get(i), row.is_number(i)))
            .collect();
        assert_eq!(
            got,
            [
                (Some("1234.5"), true),
                (Some("1.234,50"), false),
                (Some("true"), false),
                (None, false),
                (Some("0.1"), true),
                (None, false),
            ]
        );
        // the mark survives a temporary file
        let mut buf = Vec::new();
        row.encode(&mut buf);
        let back = RawRow::decode(&mut buf.as_slice()).unwrap();
        assert!(back.is_number(0) && back.is_number(4) && !back.is_number(1));
    }
}
