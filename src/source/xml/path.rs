//! The path language of XML mappings: `/Export/Invoice` or `//Invoice` for the record,
//! `Number`, `Customer/@code`, `c:Amount`, `Lines/Line`, `text()` below it.

use super::name_table::NO_ID;
use crate::problem::{quote, Code, Problem};
use crate::source::Slots;
use indexmap::IndexMap;
use quick_xml::name::{QName, ResolveResult};

/// The namespace part of a name test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NsTest {
    /// No prefix in the mapping: any namespace (match by local name).
    Any,
    /// A prefix declared in the mapping's `namespaces`: that namespace URI.
    Uri(Vec<u8>),
    /// A prefix the mapping does not declare: the prefix as written in the file.
    Prefix(Vec<u8>),
}

/// One step of a path: `Invoice`, `c:Amount`, `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NameTest {
    /// `None` for `*`.
    pub(super) local: Option<Vec<u8>>,
    /// The number of `local` in the reader's [`NameIds`] (element steps only).
    pub(super) id: u32,
    pub(super) ns: NsTest,
}

impl NameTest {
    /// Whether the element `name` (local part numbered `id` in [`NameIds`], namespace
    /// resolved by `res` when some test needs it) passes this test.
    #[inline]
    pub(super) fn matches_element(&self, name: QName, id: u32, res: &ResolveResult) -> bool {
        if self.local.is_some() && self.id != id {
            return false;
        }
        match &self.ns {
            NsTest::Any => true,
            NsTest::Uri(u) => matches!(res, ResolveResult::Bound(n) if n.as_ref() == u.as_slice()),
            NsTest::Prefix(p) => name.prefix().is_some_and(|x| x.as_ref() == p.as_slice()),
        }
    }
}

/// What a path reads at the element it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// The element's text content: all its text and CDATA, descendants included.
    Element,
    /// `text()`: the element's own text and CDATA, not its children's.
    OwnText,
    /// `@name`: an attribute of the element.
    Attr(NameTest),
}

/// A compiled path, relative to the record or line element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct XPath {
    pub(super) steps: Vec<NameTest>,
    pub(super) target: Target,
}

fn parse_name(s: &str, ns: &IndexMap<String, String>) -> Result<NameTest, String> {
    let (prefix, local) = match s.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, s),
    };
    let check = |part: &str| -> Result<(), String> {
        if part.is_empty() {
            return Err(format!("{s:?} is not a name"));
        }
        if part.contains('[') {
            return Err(format!(
                "{s:?}: conditions in [brackets] are not supported (the first matching element is taken)"
            ));
        }
        if part.contains('(') {
            return Err(format!(
                "{s:?}: the only function supported is text(), as the last step"
            ));
        }
        match part
            .chars()
            .find(|&c| c.is_whitespace() || "/@[]()=\"'<>&,;:|!?{}$#%^+`\\~".contains(c))
        {
            Some(c) => Err(format!("{s:?}: {c:?} cannot appear in a name")),
            None => Ok(()),
        }
    };
    let local = if local == "*" {
        None
    } else {
        check(local)?;
        Some(local.as_bytes().to_vec())
    };
    let ns = match prefix {
        None | Some("*") => NsTest::Any,
        Some(p) => {
            check(p)?;
            match ns.get(p) {
                Some(uri) => NsTest::Uri(uri.as_bytes().to_vec()),
                None => NsTest::Prefix(p.as_bytes().to_vec()),
            }
        }
    };
    Ok(NameTest {
        local,
        id: NO_ID,
        ns,
    })
}

/// Parses a field or lines path (relative to the record or line element).
pub(super) fn parse_relative(path: &str, ns: &IndexMap<String, String>) -> Result<XPath, String> {
    let p = path.trim();
    if p.is_empty() {
        return Err("the path is empty".into());
    }
    if p.starts_with('/') {
        return Err("paths of fields and lines are relative to the record (write \"Customer/Code\", not \"/Export/Invoice/Customer/Code\")".into());
    }
    let segs: Vec<&str> = p.split('/').collect();
    let mut steps = Vec::new();
    let mut target = Target::Element;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match seg.trim() {
            "" => {
                return Err(
                    "it has an empty step (`//`, any depth, is only supported at the start of `record`)"
                        .into(),
                )
            }
            "." => {}
            ".." => return Err("`..` is not supported: paths go down from the record or line".into()),
            "text()" => {
                if !last {
                    return Err("text() must be the last step".into());
                }
                target = Target::OwnText;
            }
            s if s.starts_with('@') => {
                if !last {
                    return Err("an attribute (@name) must be the last step".into());
                }
                target = Target::Attr(parse_name(&s[1..], ns)?);
            }
            s => steps.push(parse_name(s, ns)?),
        }
    }
    Ok(XPath { steps, target })
}

/// The record path: `/Export/Invoice` (from the root), or `//Invoice` or `Invoice` (at
/// any depth).
#[derive(Debug, Clone)]
pub(super) struct RecordPath {
    pub(super) text: String,
    pub(super) anywhere: bool,
    pub(super) steps: Vec<NameTest>,
    /// The steps as written, for messages.
    pub(super) names: Vec<String>,
}

pub(super) fn parse_record(
    path: &str,
    ns: &IndexMap<String, String>,
) -> Result<RecordPath, String> {
    let p = path.trim();
    let (anywhere, rest) = if let Some(r) = p.strip_prefix("//") {
        (true, r)
    } else if let Some(r) = p.strip_prefix('/') {
        (false, r)
    } else {
        (true, p)
    };
    if rest.trim().is_empty() {
        return Err(
            "the record path needs at least one element name, e.g. \"/Export/Invoice\"".into(),
        );
    }
    let xp = parse_relative(rest, ns)?;
    if xp.target != Target::Element {
        return Err("the record path names elements only (no @attribute or text())".into());
    }
    if xp.steps.is_empty() {
        return Err("the record path needs at least one element name".into());
    }
    if xp.steps.len() > 64 {
        return Err("the record path is longer than 64 steps".into());
    }
    let names = rest
        .split('/')
        .map(str::trim)
        .filter(|s| *s != ".")
        .map(str::to_string)
        .collect();
    Ok(RecordPath {
        text: p.to_string(),
        anywhere,
        steps: xp.steps,
        names,
    })
}

/// Checks an XML path of a mapping: `record` when `is_record`, else a `lines` or field
/// path. `Err` is a sentence saying what is wrong (for `erpdrop check`).
pub fn check_path(
    path: &str,
    is_record: bool,
    namespaces: &IndexMap<String, String>,
) -> Result<(), String> {
    if is_record {
        parse_record(path, namespaces).map(|_| ())
    } else {
        parse_relative(path, namespaces).map(|_| ())
    }
}

/// Which list of slots a path fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Space {
    Header,
    Key,
    Line,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Role {
    Slot(Space, usize),
    /// The `lines` path: each match starts a line.
    Lines,
}

#[derive(Debug, Clone)]
pub(super) struct Compiled {
    pub(super) path: XPath,
    pub(super) role: Role,
    /// Relative to the line element (else to the record).
    pub(super) at_line: bool,
}

/// Every path of a mapping, parsed: the record's, and those of the slots and the lines
/// (relative to the record or to the line element).
#[derive(Debug, Clone)]
pub(super) struct Paths {
    pub(super) record: RecordPath,
    pub(super) paths: Vec<Compiled>,
}

impl Paths {
    /// Parses the record and lines paths and each slot's; a path that is not valid is
    /// a problem of the whole file.
    pub(super) fn compile(
        record: Option<&str>,
        lines: Option<&str>,
        ns: &IndexMap<String, String>,
        slots: &Slots,
    ) -> Result<Paths, Problem> {
        let bad_path = |path: &str, what: &str, msg: String| {
            Problem::file(
                Code::MissingColumn,
                None,
                format!(
                    "The mapping's {what} {} is not a valid XML path: {msg}",
                    quote(path)
                ),
            )
            .with_column(path)
            .with_value(path)
        };
        let record_text = record.unwrap_or("");
        let record =
            parse_record(record_text, ns).map_err(|m| bad_path(record_text, "source.record", m))?;
        let mut paths = Vec::new();
        let mut add = |list: &[String], space: Space, at_line: bool| -> Result<(), Problem> {
            for (i, p) in list.iter().enumerate() {
                let path = parse_relative(p, ns).map_err(|m| bad_path(p, "field path", m))?;
                paths.push(Compiled {
                    path,
                    role: Role::Slot(space, i),
                    at_line,
                });
            }
            Ok(())
        };
        add(&slots.header, Space::Header, false)?;
        add(&slots.key, Space::Key, false)?;
        add(&slots.lines, Space::Line, true)?;
        if let Some(l) = lines {
            let path = parse_relative(l, ns).map_err(|m| bad_path(l, "source.lines", m))?;
            if path.target != Target::Element || path.steps.is_empty() {
                return Err(bad_path(
                    l,
                    "source.lines",
                    "it must name elements below the record, e.g. \"Lines/Line\"".into(),
                ));
            }
            paths.push(Compiled {
                path,
                role: Role::Lines,
                at_line: false,
            });
        }
        Ok(Paths { record, paths })
    }

    /// Whether some path names a namespace URI (for an element or an attribute): the
    /// namespace-resolving reader is needed.
    pub(super) fn need_namespaces(&self) -> bool {
        let uri = |t: &NameTest| matches!(t.ns, NsTest::Uri(_));
        self.record.steps.iter().any(uri)
            || self.paths.iter().any(|c| {
                c.path.steps.iter().any(uri) || matches!(&c.path.target, Target::Attr(t) if uri(t))
            })
    }
}
