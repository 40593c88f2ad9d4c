//! XML 1.0's rules for characters and names, and the byte scans of text events.

use std::borrow::Cow;

/// What an XML name is, for messages.
pub(super) const NAME_RULE: &str =
    "a name starts with a letter, `_` or `:`, then letters, digits, `-`, `.`, `_` or `:`";

/// The first character of `s` that XML 1.0 does not allow (see [`index_newlines`]); for
/// text that character references produced.
pub(super) fn forbidden_char(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        matches!(c, '\0'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
    })
}

/// Whether `b` holds a `&`, a `\r` and a `]`, in one pass, eight bytes at a time. Kept
/// by hand rather than `memchr3`: text events are short (7 bytes on average in an
/// export), and reading an XML export with `memchr3` took 1.6% more instructions
/// (callgrind, 100k rows) and no less time (1M rows).
#[inline]
pub(super) fn amp_cr_bracket(b: &[u8]) -> (bool, bool, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES << 7;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let (mut amp, mut cr, mut bracket) = (0u64, 0u64, 0u64);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        amp |= zero(w ^ (ONES * u64::from(b'&')));
        cr |= zero(w ^ (ONES * u64::from(b'\r')));
        bracket |= zero(w ^ (ONES * u64::from(b']')));
    }
    // the last bytes, padded with zeros (which are none of them)
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    let w = u64::from_le_bytes(last);
    amp |= zero(w ^ (ONES * u64::from(b'&')));
    cr |= zero(w ^ (ONES * u64::from(b'\r')));
    bracket |= zero(w ^ (ONES * u64::from(b']')));
    (amp != 0, cr != 0, bracket != 0)
}

/// How a byte may stand in an XML name: 2 anywhere, 1 not first, 0 never (XML 1.0,
/// `NameStartChar` and `NameChar`); 3: a byte of a character outside ASCII.
const NAME_BYTES: [u8; 256] = {
    let mut t = [3u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            2
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            1
        } else {
            0
        };
        b += 1;
    }
    t
};

/// Whether a character outside ASCII may start an XML name (`NameStartChar`), or stand
/// in one after the first (`NameChar`, with `first` false).
fn name_char(c: char, first: bool) -> bool {
    let start = matches!(c,
        '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}'
        | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}'
        | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}'
        | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}');
    start || (!first && matches!(c, '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}'))
}

/// Whether `name` (checked UTF-8) is an XML name: `Invoice`, `b:Amount`, `x-id`, `Счёт`;
/// not `,status`, `1st` or the empty name.
#[inline]
pub(super) fn is_xml_name(name: &[u8]) -> bool {
    // the usual name is ASCII: a table look per byte
    let Some(&first) = name.first() else {
        return false;
    };
    match NAME_BYTES[first as usize] {
        2 => {}
        3 => return is_xml_name_beyond_ascii(name),
        _ => return false,
    }
    for &b in &name[1..] {
        match NAME_BYTES[b as usize] {
            0 => return false,
            3 => return is_xml_name_beyond_ascii(name),
            _ => {}
        }
    }
    true
}

/// [`is_xml_name`] of a name with characters outside ASCII.
fn is_xml_name_beyond_ascii(name: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    s.chars().enumerate().all(|(i, c)| match u8::try_from(c) {
        Ok(b) if b < 128 => NAME_BYTES[b as usize] > u8::from(i == 0),
        _ => name_char(c, i == 0),
    })
}

/// The local part of an element or attribute name (after the prefix's `:`). A plain
/// look: on names this short (under 8 bytes on average) memchr measured slower.
#[inline]
pub(super) fn local_part(name: &[u8]) -> &[u8] {
    match name.iter().position(|&c| c == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// XML line-end handling: `\r\n` and a lone `\r` become `\n`.
pub(super) fn normalize_newlines(s: &str) -> Cow<'_, str> {
    if s.contains('\r') {
        Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ampersands_carriage_returns_and_brackets_are_found_anywhere() {
        for len in [0usize, 1, 5, 8, 15, 16, 17, 40] {
            let plain = "a".repeat(len);
            assert_eq!(amp_cr_bracket(plain.as_bytes()), (false, false, false));
            for at in 0..len {
                for (c, want) in [
                    ('&', (true, false, false)),
                    ('\r', (false, true, false)),
                    (']', (false, false, true)),
                ] {
                    let mut t = plain.clone();
                    t.replace_range(at..=at, &c.to_string());
                    assert_eq!(amp_cr_bracket(t.as_bytes()), want, "{t:?}");
                }
            }
        }
        assert_eq!(amp_cr_bracket(b"]]&\r&"), (true, true, true));
    }

    #[test]
    fn xml_names() {
        for good in [
            "Invoice", "b:Amount", "x-id", "_a", "a.b", "Счёт", "a·b", "A1", ":x", "日付",
        ] {
            assert!(is_xml_name(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "",
            ",status",
            "1st",
            "-a",
            ".a",
            "a b",
            "a,b",
            "·a",
            "a\u{2000}",
            "a\"",
            "a=b",
        ] {
            assert!(!is_xml_name(bad.as_bytes()), "{bad:?}");
        }
    }
}
