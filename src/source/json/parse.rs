//! A streaming JSON parser: it reads one value at a time from a buffered reader and
//! knows the line and character of every byte, so that a record is built alone (memory
//! depends on the largest record, never on the file) and every error says where it is.
//! Numbers are kept as their text: `0.1` stays `0.1`, `12345678901234567890` itself.

use crate::problem::{Code, Problem};
use crate::source::decode::{encoding_error, hex_bytes};
use std::io::Read;

/// A JSON value with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: u64,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A number, as written.
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    /// Members in their order (the first of a name counts).
    Obj(Vec<(String, Node)>),
}

impl Value {
    /// "an object", "a number"... for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Num(_) => "a number",
            Value::Str(_) => "a string",
            Value::Arr(_) => "an array",
            Value::Obj(_) => "an object",
        }
    }
}

/// Nesting deeper than this is no export: it is refused, not followed down the stack.
pub const MAX_DEPTH: usize = 128;
/// The longest string or number read (64 MiB).
pub const MAX_TEXT: usize = 64 << 20;

/// The reader with its position.
pub struct Lexer<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    /// Line and character (1-based) of the next byte.
    pub line: u64,
    pub col: u64,
    scratch: Vec<u8>,
}

impl<R: Read> Lexer<R> {
    pub fn new(inner: R) -> Lexer<R> {
        Lexer {
            inner,
            buf: vec![0u8; 128 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
            eof: false,
            line: 1,
            col: 1,
            scratch: Vec::new(),
        }
    }

    /// A `malformed` problem here.
    pub fn malformed(&self, msg: impl Into<String>) -> Problem {
        malformed_at(self.line, self.col, msg)
    }

    fn fill(&mut self) -> Result<bool, Problem> {
        if self.pos < self.len {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_problem(&e, self.line)),
            }
        }
    }

    /// The next byte, not taken.
    #[inline]
    pub fn peek(&mut self) -> Result<Option<u8>, Problem> {
        if self.pos < self.len {
            return Ok(Some(self.buf[self.pos]));
        }
        Ok(if self.fill()? {
            Some(self.buf[self.pos])
        } else {
            None
        })
    }

    /// Takes the byte `peek` gave.
    #[inline]
    pub fn bump(&mut self) {
        let b = self.buf[self.pos];
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            self.col += 1;
        }
    }

    /// The next byte that is not blank, not taken; `None` at the end.
    pub fn skip_ws(&mut self) -> Result<Option<u8>, Problem> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.bump(),
                other => return Ok(other),
            }
        }
    }

    /// Takes `b` after blanks, or says what stands there instead.
    pub fn expect(&mut self, b: u8, what: &str) -> Result<(), Problem> {
        match self.skip_ws()? {
            Some(c) if c == b => {
                self.bump();
                Ok(())
            }
            Some(c) => Err(self.malformed(format!("Expected {what} but found {}", shown(c)))),
            None => Err(self.cut_off(what)),
        }
    }

    pub fn cut_off(&self, what: &str) -> Problem {
        self.malformed(format!(
            "The file ends where {what} should come: it is cut off, or a bracket is not closed"
        ))
    }

    /// Reads a value; with `build = false` it is checked and dropped (a `Null` node).
    #[inline(never)]
    pub fn value(&mut self, depth: usize, build: bool) -> Result<Node, Problem> {
        let Some(b) = self.skip_ws()? else {
            return Err(self.cut_off("a value"));
        };
        let line = self.line;
        if depth >= MAX_DEPTH {
            return Err(self.malformed(format!(
                "Values are nested deeper than {MAX_DEPTH} levels: no export does that"
            )));
        }
        let value = match b {
            b'{' => self.object(depth, build)?,
            b'[' => self.array(depth, build)?,
            b'"' => Value::Str(self.string()?),
            b'-' | b'0'..=b'9' => Value::Num(self.number()?),
            b't' => {
                self.literal("true")?;
                Value::Bool(true)
            }
            b'f' => {
                self.literal("false")?;
                Value::Bool(false)
            }
            b'n' => {
                self.literal("null")?;
                Value::Null
            }
            c => return Err(self.malformed(format!("Expected a value but found {}", shown(c)))),
        };
        Ok(Node {
            line,
            value: if build { value } else { Value::Null },
        })
    }

    /// The members of an object, its `{` not yet taken.
    #[inline(never)]
    fn object(&mut self, depth: usize, build: bool) -> Result<Value, Problem> {
        self.bump();
        let mut members = Vec::new();
        if self.skip_ws()? == Some(b'}') {
            self.bump();
            return Ok(Value::Obj(members));
        }
        loop {
            let key = self.key()?;
            self.expect(b':', "`:` after a member's name")?;
            let v = self.value(depth + 1, build)?;
            if build {
                members.push((key, v));
            }
            match self.skip_ws()? {
                Some(b',') => self.bump(),
                Some(b'}') => {
                    self.bump();
                    return Ok(Value::Obj(members));
                }
                Some(c) => {
                    return Err(self.malformed(format!(
                        "Expected `,` or `}}` in an object but found {}",
                        shown(c)
                    )))
                }
                None => return Err(self.cut_off("`}` (the end of an object)")),
            }
        }
    }

    /// The elements of an array, its `[` not yet taken.
    #[inline(never)]
    fn array(&mut self, depth: usize, build: bool) -> Result<Value, Problem> {
        self.bump();
        let mut items = Vec::new();
        if self.skip_ws()? == Some(b']') {
            self.bump();
            return Ok(Value::Arr(items));
        }
        loop {
            let v = self.value(depth + 1, build)?;
            if build {
                items.push(v);
            }
            match self.skip_ws()? {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    return Ok(Value::Arr(items));
                }
                Some(c) => {
                    return Err(self.malformed(format!(
                        "Expected `,` or `]` in an array but found {}",
                        shown(c)
                    )))
                }
                None => return Err(self.cut_off("`]` (the end of an array)")),
            }
        }
    }

    /// An object member's name.
    pub fn key(&mut self) -> Result<String, Problem> {
        match self.skip_ws()? {
            Some(b'"') => self.string(),
            Some(c) => Err(self.malformed(format!(
                "Expected a member name in double quotes but found {}",
                shown(c)
            ))),
            None => Err(self.cut_off("a member name")),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), Problem> {
        let (line, col) = (self.line, self.col);
        for &w in word.as_bytes() {
            match self.peek()? {
                Some(b) if b == w => self.bump(),
                _ => {
                    return Err(malformed_at(
                        line,
                        col,
                        format!("Expected `{word}` or another value here"),
                    ))
                }
            }
        }
        Ok(())
    }

    fn number(&mut self) -> Result<String, Problem> {
        let (line, col) = (self.line, self.col);
        let mut s = String::new();
        while let Some(b) = self.peek()? {
            if !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                break;
            }
            if s.len() >= MAX_TEXT {
                return Err(malformed_at(line, col, "A number longer than 64 MiB"));
            }
            s.push(b as char);
            self.bump();
        }
        if !is_json_number(&s) {
            let p = malformed_at(line, col, format!("{s:?} is not a JSON number"));
            return Err(p.with_value(s));
        }
        Ok(s)
    }

    /// A string, the opening quote not yet taken.
    fn string(&mut self) -> Result<String, Problem> {
        let (line, col) = (self.line, self.col);
        self.bump();
        self.scratch.clear();
        loop {
            if !self.fill()? {
                return Err(malformed_at(
                    line,
                    col,
                    "A string that starts here is not closed before the end of the file",
                ));
            }
            // the plain run up to a quote, a backslash or a control character
            let chunk = &self.buf[self.pos..self.len];
            let run = chunk
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(chunk.len());
            self.scratch.extend_from_slice(&chunk[..run]);
            self.col += chunk[..run].iter().filter(|&&b| b & 0xC0 != 0x80).count() as u64;
            self.pos += run;
            if self.scratch.len() > MAX_TEXT {
                return Err(malformed_at(line, col, "A string longer than 64 MiB"));
            }
            let Some(b) = self.peek()? else { continue };
            match b {
                b'"' => {
                    self.bump();
                    break;
                }
                b'\\' => {
                    self.bump();
                    self.escape()?;
                }
                c if c < 0x20 => {
                    let what = match c {
                        b'\n' => "a line break".to_string(),
                        0 => "the byte 0x00 (NUL)".to_string(),
                        c => format!("the control character {}", hex_bytes(&[c])),
                    };
                    return Err(self
                        .malformed(format!(
                            "A string holds {what}, which JSON allows only escaped: the file is damaged, or a string is not closed"
                        ))
                        .with_value(hex_bytes(&[c])));
                }
                _ => {}
            }
        }
        let bytes = std::mem::take(&mut self.scratch);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                let bad = &bytes[at..(at + 4).min(bytes.len())];
                Err(Problem::file(
                    Code::Encoding,
                    Some(line),
                    format!(
                        "The bytes {} are not valid UTF-8: JSON is UTF-8 (or set source.encoding in the mapping)",
                        hex_bytes(bad)
                    ),
                )
                .with_value(hex_bytes(bad)))
            }
        }
    }

    /// After a backslash.
    fn escape(&mut self) -> Result<(), Problem> {
        let Some(b) = self.peek()? else {
            return Err(self.cut_off("an escape"));
        };
        self.bump();
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let c = if (0xD800..0xDC00).contains(&hi) {
                    // a surrogate pair: \uD83D\uDE00
                    let lone =
                        "A \\u escape of a high surrogate is not followed by its low surrogate";
                    if !(self.bump_if(b'\\')? && self.bump_if(b'u')?) {
                        return Err(self.malformed(lone));
                    }
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(self.malformed(lone));
                    }
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                } else {
                    char::from_u32(hi)
                };
                c.ok_or_else(|| {
                    self.malformed("A \\u escape names a lone surrogate, which is no character")
                })?
            }
            other => {
                return Err(self.malformed(format!("\\{} is not a JSON escape", other as char)))
            }
        };
        let mut tmp = [0u8; 4];
        self.scratch
            .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        Ok(())
    }

    fn bump_if(&mut self, b: u8) -> Result<bool, Problem> {
        if self.peek()? == Some(b) {
            self.bump();
            return Ok(true);
        }
        Ok(false)
    }

    fn hex4(&mut self) -> Result<u32, Problem> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek()? {
                Some(b) => (b as char).to_digit(16),
                None => None,
            };
            let Some(d) = d else {
                return Err(self.malformed("A \\u escape needs four hexadecimal digits"));
            };
            self.bump();
            v = v * 16 + d;
        }
        Ok(v)
    }
}

/// Whether `s` is a number as JSON writes one: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let n = digits(&mut i);
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

pub fn malformed_at(line: u64, col: u64, msg: impl Into<String>) -> Problem {
    let msg = format!("The file is not valid JSON: {}", msg.into());
    Problem::file(Code::Malformed, Some(line), msg).with_character(Some(col))
}

/// A byte for a message: `}`, or `the byte 0xFF`.
fn shown(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", b as char)
    } else {
        format!("the byte {}", hex_bytes(&[b]))
    }
}

fn read_problem(e: &std::io::Error, line: u64) -> Problem {
    if let Some(enc) = encoding_error(e) {
        return Problem::file(
            Code::Encoding,
            Some(enc.line),
            format!(
                "The bytes {} are not valid {}: the file is in another encoding (check source.encoding in the mapping)",
                hex_bytes(&enc.bytes),
                enc.encoding
            ),
        )
        .with_value(hex_bytes(&enc.bytes));
    }
    Problem::file(
        Code::Io,
        Some(line),
        format!("The file could not be read: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Node, Problem> {
        Lexer::new(s.as_bytes()).value(0, true)
    }

    #[test]
    fn numbers_keep_their_text() {
        let n =
            parse(r#"{"a": 0.1, "b": 12345678901234567890, "c": -0.0e+5, "d": 1234.50}"#).unwrap();
        let Value::Obj(m) = n.value else { panic!() };
        let texts: Vec<_> = m
            .iter()
            .map(|(_, v)| match &v.value {
                Value::Num(s) => s.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(texts, ["0.1", "12345678901234567890", "-0.0e+5", "1234.50"]);
        for bad in ["01", "1.", ".5", "-", "1e", "+1", "1.2.3"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn strings_unescape_and_control_characters_are_refused() {
        let n = parse(r#""a\"b\\c\u00e9\ud83d\ude00\n""#).unwrap();
        assert_eq!(n.value, Value::Str("a\"b\\cé😀\n".into()));
        let e = parse("\"a\u{0}b\"").unwrap_err();
        assert_eq!(e.code, Code::Malformed);
        assert!(e.message().contains("NUL"), "{}", e.message());
        let e = parse("\"\\ud83d x\"").unwrap_err();
        assert!(e.message().contains("surrogate"));
    }

    #[test]
    fn errors_name_line_and_character() {
        let e = parse("{\n  \"a\": 1,\n  \"b\" 2\n}").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message().contains("Expected `:`"), "{}", e.message());
        let e = parse("{\"a\": [1, 2").unwrap_err();
        assert!(e.message().contains("cut off"), "{}", e.message());
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep)
            .unwrap_err()
            .message()
            .contains("nested deeper"));
    }

    #[test]
    fn a_value_starts_on_its_line() {
        let n = parse("[\n {\"a\": 1},\n\n {\"a\": 2}\n]").unwrap();
        let Value::Arr(items) = n.value else { panic!() };
        assert_eq!(items.iter().map(|i| i.line).collect::<Vec<_>>(), [2, 4]);
    }
}
