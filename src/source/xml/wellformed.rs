//! The well-formedness checks quick-xml leaves to its user: the attributes of a start
//! tag, and a DOCTYPE that could declare entities.

use super::line_counter::LineCounter;
use super::matcher::State;
use super::syntax::{forbidden_char, is_xml_name, lossy, NAME_RULE};
use super::MAX_ATTRIBUTES;
use crate::problem::{group_digits, Problem};
use crate::source::count_newlines;
use quick_xml::escape::unescape;
use quick_xml::events::BytesStart;
use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Read;

impl State {
    pub(super) fn doctype(&self, d: &[u8], line: u64) -> Result<(), Problem> {
        // `<!DOCTYPE Export SYSTEM "export.dtd">` names a DTD that is never read; an
        // internal subset `[...]` may declare entities, which are refused.
        if d.contains(&b'[') || d.windows(8).any(|w| w.eq_ignore_ascii_case(b"<!ENTITY")) {
            let shown: String = String::from_utf8_lossy(d).chars().take(60).collect();
            return Err(self.malformed(
                line,
                None,
                "the file has a DOCTYPE with declarations: DTDs and entity declarations are not allowed (they can make a small file expand without limit)",
                Some(format!("<!DOCTYPE {}", shown.trim())),
            ));
        }
        Ok(())
    }

    /// The attributes of a start tag: well-formed (names that are XML names, a space
    /// before each, no `<` in a value, entities that exist), each name once, at most
    /// [`MAX_ATTRIBUTES`]. Linear: past a few attributes, names are looked up in a set.
    pub(super) fn check_attributes<C: Read>(
        &self,
        e: &BytesStart,
        empty: bool,
        line: u64,
        counter: &LineCounter<C>,
    ) -> Result<(), Problem> {
        // the tag's bytes after `<`: its name, then the attributes, which borrow from it
        let tag: &[u8] = e;
        let offset = |part: &[u8]| {
            (part.as_ptr() as usize)
                .checked_sub(tag.as_ptr() as usize)
                .filter(|&o| o <= tag.len())
                .unwrap_or(0)
        };
        let place = |at: usize| {
            let line = line + count_newlines(&tag[..at]);
            counter.place_in_tag(tag, empty, at, line)
        };
        let element = || lossy(e.name().as_ref());
        const FEW: usize = 8;
        let mut few: [&[u8]; FEW] = [&[]; FEW];
        let mut set: HashSet<&[u8]> = HashSet::new();
        let mut n = 0usize;
        let mut attrs = e.attributes();
        attrs.with_checks(false);
        for a in attrs {
            let a = a.map_err(|err| {
                self.malformed(
                    line,
                    None,
                    &format!("an attribute of <{}> is malformed: {err}", element()),
                    None,
                )
            })?;
            let key = a.key.into_inner();
            let at = offset(key);
            let bad = |what: String, at: usize| {
                let (l, c) = place(at);
                self.malformed(l, c, &what, Some(lossy(key)))
            };
            if !is_xml_name(key) {
                return Err(bad(
                    format!(
                        "the attribute name `{}` in <{}> is not an XML name ({NAME_RULE})",
                        lossy(key),
                        element()
                    ),
                    at,
                ));
            }
            if at > 0 && !matches!(tag[at - 1], b' ' | b'\t' | b'\r' | b'\n') {
                return Err(bad(
                    format!(
                        "there is no space before the attribute {} of <{}>",
                        lossy(key),
                        element()
                    ),
                    at,
                ));
            }
            n += 1;
            let repeated = if n <= FEW {
                let seen = few[..n - 1].contains(&key);
                few[n - 1] = key;
                if n == FEW {
                    set.extend(few);
                }
                seen
            } else {
                !set.insert(key)
            };
            if repeated {
                return Err(bad(
                    format!(
                        "the attribute {} appears twice in <{}>",
                        lossy(key),
                        element()
                    ),
                    at,
                ));
            }
            if n > MAX_ATTRIBUTES {
                return Err(bad(
                    format!(
                        "<{}> has more than {} attributes, more than erpdrop reads on one element",
                        element(),
                        group_digits(MAX_ATTRIBUTES as u64)
                    ),
                    at,
                ));
            }
            let v: &[u8] = &a.value;
            if let Some(lt) = memchr::memchr(b'<', v) {
                return Err(bad(
                    format!(
                        "the value of the attribute {} of <{}> holds a `<` (write it &lt;)",
                        lossy(key),
                        element()
                    ),
                    offset(v) + lt,
                ));
            }
            if memchr::memchr(b'&', v).is_some() {
                let s = String::from_utf8_lossy(v);
                match unescape(&s) {
                    Err(err) => return Err(self.escape_problem(err, &s, line)),
                    Ok(Cow::Owned(u)) => {
                        if let Some(ch) = forbidden_char(&u) {
                            let at = offset(v) + s.find("&#").unwrap_or(0);
                            let (l, c) = place(at);
                            return Err(self.forbidden_reference(ch, l, c));
                        }
                    }
                    Ok(Cow::Borrowed(_)) => {}
                }
            }
        }
        Ok(())
    }
}
