//! The rejected rows of an ods workbook: an OpenDocument spreadsheet (ODF 1.3) of one
//! sheet, named as the sheet that was read, with the rows that `rejected_sheet` picks
//! (title rows, header, failed rows, `erpdrop_error`), each cell typed as it was read:
//! text, a float (`office:value`, the double it held), a date (`office:date-value`), a
//! time (`office:time-value`), a boolean.
//!
//! The package is what ODF requires at least (part 2, 3.3 and 4.2): `mimetype` first,
//! stored uncompressed and without an extra field, `META-INF/manifest.xml` listing the
//! package and `content.xml`, then `content.xml`, whose rows are streamed into the zip
//! entry as they are copied (the archive goes to a temporary file, then to `w`). The zip
//! is written with the `zip` crate, which calamine and rust_xlsxwriter already build.

use super::rejected::{RejectedInput, Rows};
use super::rejected_sheet::{copy_range, open_book, Copy, SheetOut};
use crate::source::sheet::cell::number_text;
use calamine::{DataRef, Ods, Reader};
use std::fmt::Write as _;
use std::io::{self, Seek, Write};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

const MIMETYPE: &str = "application/vnd.oasis.opendocument.spreadsheet";

const MANIFEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.3" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
"#;

/// content.xml up to the table: the date, date and time, and time styles of the cells
/// that hold one, so that a spreadsheet shows them as such.
const CONTENT_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0" office:version="1.3">
<office:automatic-styles>
<number:date-style style:name="N1"><number:year number:style="long"/><number:text>-</number:text><number:month number:style="long"/><number:text>-</number:text><number:day number:style="long"/></number:date-style>
<number:date-style style:name="N2"><number:year number:style="long"/><number:text>-</number:text><number:month number:style="long"/><number:text>-</number:text><number:day number:style="long"/><number:text> </number:text><number:hours number:style="long"/><number:text>:</number:text><number:minutes number:style="long"/><number:text>:</number:text><number:seconds number:style="long"/></number:date-style>
<number:time-style style:name="N3" number:truncate-on-overflow="false"><number:hours/><number:text>:</number:text><number:minutes number:style="long"/><number:text>:</number:text><number:seconds number:style="long"/></number:time-style>
<style:style style:name="ce1" style:family="table-cell" style:data-style-name="N1"/>
<style:style style:name="ce2" style:family="table-cell" style:data-style-name="N2"/>
<style:style style:name="ce3" style:family="table-cell" style:data-style-name="N3"/>
</office:automatic-styles>
<office:body>
<office:spreadsheet>
"#;

const CONTENT_TAIL: &str =
    "</table:table>\n</office:spreadsheet>\n</office:body>\n</office:document-content>\n";

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A zip error: the disk's own stays one (the outcome says so); anything else means the
/// package cannot be written, and no rejected file is better than a broken one.
fn zipped(e: zip::result::ZipError) -> io::Error {
    match e {
        zip::result::ZipError::Io(e) => e,
        e => invalid(format!("the rejected spreadsheet cannot be written: {e}")),
    }
}

pub(super) fn copy_ods(
    input: &RejectedInput<'_>,
    rows: &Rows,
    w: &mut dyn Write,
) -> io::Result<()> {
    let source = &input.mapping.source;
    let (mut book, name) = open_book::<Ods<_>>(input)?;
    let range = book
        .worksheet_range(&name)
        .map_err(|e| invalid(format!("the sheet cannot be read again: {e}")))?;
    drop(book);
    let width = range.end().map_or(0, |(_, c)| c.saturating_add(1));

    let mut out = OdsOut::start(tempfile::tempfile()?, &name, width.saturating_add(1))?;
    let mut state = Copy::new(
        source,
        width,
        super::rejected::positions_read(input.mapping),
    );
    copy_range(&range, &mut state, &mut out, rows)?;
    let mut file = out.finish()?;
    file.rewind()?;
    io::copy(&mut file, w)?;
    Ok(())
}

/// content.xml being written, row after row, into the zip entry.
struct OdsOut<F: Write + Seek> {
    zip: ZipWriter<F>,
    /// The next row (0-based) of the table.
    next: u32,
    buf: String,
}

impl<F: Write + Seek> OdsOut<F> {
    fn start(file: F, sheet: &str, columns: u32) -> io::Result<Self> {
        let mut zip = ZipWriter::new(file);
        // mimetype first, stored, no extra field: how a reader knows the package
        let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        zip.start_file("mimetype", stored).map_err(zipped)?;
        zip.write_all(MIMETYPE.as_bytes())?;
        let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        zip.start_file("META-INF/manifest.xml", deflated)
            .map_err(zipped)?;
        zip.write_all(MANIFEST.as_bytes())?;
        zip.start_file("content.xml", deflated).map_err(zipped)?;
        let mut buf = String::from(CONTENT_HEAD);
        buf.push_str("<table:table table:name=\"");
        attr(&mut buf, sheet)?;
        let _ = write!(
            buf,
            "\">\n<table:table-column table:number-columns-repeated=\"{}\"/>\n",
            columns.max(1)
        );
        zip.write_all(buf.as_bytes())?;
        buf.clear();
        Ok(OdsOut { zip, next: 0, buf })
    }

    fn finish(mut self) -> io::Result<F> {
        if self.next == 0 {
            // a table has at least one row
            self.zip
                .write_all(b"<table:table-row><table:table-cell/></table:table-row>\n")?;
        }
        self.zip.write_all(CONTENT_TAIL.as_bytes())?;
        self.zip.finish().map_err(zipped)
    }
}

impl<F: Write + Seek> SheetOut for OdsOut<F> {
    fn row(&mut self, at: u32, cells: &[(u16, DataRef<'_>)]) -> io::Result<()> {
        if at < self.next {
            return Err(invalid("the rows of the rejected sheet are out of order"));
        }
        let b = &mut self.buf;
        b.clear();
        if at > self.next {
            // the empty rows between (a blank row under the titles)
            let gap = at - self.next;
            b.push_str("<table:table-row");
            if gap > 1 {
                let _ = write!(b, " table:number-rows-repeated=\"{gap}\"");
            }
            b.push_str("><table:table-cell/></table:table-row>\n");
        }
        // no white space between the cells of a row: calamine takes none there
        b.push_str("<table:table-row>");
        let mut sorted: Vec<&(u16, DataRef<'_>)> = cells.iter().collect();
        sorted.sort_by_key(|(c, _)| *c);
        let mut next_col = 0u32;
        let mut any = false;
        for (col, value) in sorted {
            let col = u32::from(*col);
            if matches!(value, DataRef::Empty) || col < next_col {
                continue;
            }
            if col > next_col {
                empty_cells(b, col - next_col);
            }
            cell(b, value)?;
            any = true;
            next_col = col + 1;
        }
        if !any {
            b.push_str("<table:table-cell/>");
        }
        b.push_str("</table:table-row>\n");
        self.zip.write_all(b.as_bytes())?;
        self.next = at + 1;
        Ok(())
    }
}

fn empty_cells(b: &mut String, n: u32) {
    b.push_str("<table:table-cell");
    if n > 1 {
        let _ = write!(b, " table:number-columns-repeated=\"{n}\"");
    }
    b.push_str("/>");
}

/// One cell, typed as calamine read it.
fn cell(b: &mut String, value: &DataRef<'_>) -> io::Result<()> {
    match value {
        DataRef::Empty => empty_cells(b, 1),
        DataRef::String(s) => string_cell(b, s)?,
        DataRef::SharedString(s) => string_cell(b, s)?,
        DataRef::Float(f) => float_cell(b, *f)?,
        DataRef::Int(i) => {
            // a number cell that holds it exactly, else its digits
            if i.unsigned_abs() <= 1 << 53 {
                float_cell(b, *i as f64)?
            } else {
                string_cell(b, &i.to_string())?
            }
        }
        DataRef::Bool(v) => {
            let _ = write!(
                b,
                "<table:table-cell office:value-type=\"boolean\" office:boolean-value=\"{v}\"><text:p>{}</text:p></table:table-cell>",
                if *v { "TRUE" } else { "FALSE" }
            );
        }
        DataRef::DateTimeIso(s) => {
            // as the file held it (`2026-11-20`, `2026-11-20T13:45:00`)
            iso(s)?;
            let style = if s.contains('T') { "ce2" } else { "ce1" };
            let _ = write!(
                b,
                "<table:table-cell table:style-name=\"{style}\" office:value-type=\"date\" office:date-value=\"{s}\"><text:p>{}</text:p></table:table-cell>",
                s.replacen('T', " ", 1)
            );
        }
        DataRef::DurationIso(s) => {
            // `PT13H45M00S`
            iso(s)?;
            let _ = write!(
                b,
                "<table:table-cell table:style-name=\"ce3\" office:value-type=\"time\" office:time-value=\"{s}\"><text:p>{s}</text:p></table:table-cell>"
            );
        }
        // calamine reads an ods date as its ISO text and an error cell as its text;
        // anything else would not read back as it was
        DataRef::DateTime(_) | DataRef::Error(_) => {
            return Err(invalid(format!(
                "a cell {value:?} cannot be written to an ods sheet as it was read"
            )))
        }
    }
    Ok(())
}

/// An ISO 8601 date, time or duration as calamine gives it: nothing to escape.
fn iso(s: &str) -> io::Result<()> {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b':' | b'.' | b'+'))
    {
        Ok(())
    } else {
        Err(invalid(format!("a date or time {s:?} cannot be written")))
    }
}

fn float_cell(b: &mut String, f: f64) -> io::Result<()> {
    if !f.is_finite() {
        return Err(invalid(format!("a number {f} cannot be written")));
    }
    // `{f}` is the shortest text that reads back as the same double: 0.1 stays 0.1
    let _ = write!(
        b,
        "<table:table-cell office:value-type=\"float\" office:value=\"{f}\"><text:p>{}</text:p></table:table-cell>",
        number_text(f)
    );
    Ok(())
}

/// A text cell: its value in `office:string-value` (exactly, whatever the white
/// space), and as paragraphs for the eye (ODF collapses white space in them, so runs of
/// spaces, tabs and line breaks are written as `text:s`, `text:tab`, paragraphs).
fn string_cell(b: &mut String, s: &str) -> io::Result<()> {
    b.push_str("<table:table-cell office:value-type=\"string\" office:string-value=\"");
    attr(b, s)?;
    b.push_str("\">");
    for line in s.split('\n') {
        b.push_str("<text:p>");
        let chars: Vec<char> = line.chars().filter(|c| *c != '\r').collect();
        for (i, c) in chars.iter().enumerate() {
            match c {
                ' ' if i == 0 || i + 1 == chars.len() || chars[i - 1] == ' ' => {
                    b.push_str("<text:s/>")
                }
                '\t' => b.push_str("<text:tab/>"),
                c => escape_char(b, *c),
            }
        }
        b.push_str("</text:p>");
    }
    b.push_str("</table:table-cell>");
    Ok(())
}

/// Whether XML 1.0 can hold the character at all.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape_char(b: &mut String, c: char) {
    match c {
        '&' => b.push_str("&amp;"),
        '<' => b.push_str("&lt;"),
        '>' => b.push_str("&gt;"),
        c => b.push(c),
    }
}

/// `s` escaped as the value of an attribute in double quotes; its tabs and line breaks
/// as character references, which attribute normalisation keeps.
fn attr(b: &mut String, s: &str) -> io::Result<()> {
    for c in s.chars() {
        match c {
            '"' => b.push_str("&quot;"),
            '\t' => b.push_str("&#9;"),
            '\n' => b.push_str("&#10;"),
            '\r' => b.push_str("&#13;"),
            c if !xml_char(c) => {
                return Err(invalid(format!(
                    "the character U+{:04X} cannot be written to an ods sheet",
                    c as u32
                )))
            }
            c => escape_char(b, c),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::Data;
    use std::io::{Cursor, Read};

    fn book(rows: &[(u32, Vec<(u16, DataRef<'_>)>)]) -> Vec<u8> {
        let mut out = OdsOut::start(Cursor::new(Vec::new()), "Blatt & 1", 4).unwrap();
        for (at, cells) in rows {
            out.row(*at, cells).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    #[test]
    fn the_package_starts_with_its_mimetype_stored_and_lists_its_content() {
        let bytes = book(&[(0, vec![(0, DataRef::SharedString("a"))])]);
        // the local header of the first entry: PK\3\4, method 0 (stored) at 8, the name
        // "mimetype" at 30, no extra field (length at 28), the media type right after
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 0);
        assert_eq!(u16::from_le_bytes([bytes[26], bytes[27]]), 8);
        assert_eq!(u16::from_le_bytes([bytes[28], bytes[29]]), 0);
        assert_eq!(&bytes[30..38], b"mimetype");
        assert_eq!(&bytes[38..38 + MIMETYPE.len()], MIMETYPE.as_bytes());
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<String> = (0..zip.len())
            .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        assert_eq!(names, ["mimetype", "META-INF/manifest.xml", "content.xml"]);
        let mut manifest = String::new();
        zip.by_name("META-INF/manifest.xml")
            .unwrap()
            .read_to_string(&mut manifest)
            .unwrap();
        assert!(
            manifest.contains(r#"manifest:full-path="content.xml""#),
            "{manifest}"
        );
        assert!(manifest.contains(MIMETYPE), "{manifest}");
    }

    #[test]
    fn cells_read_back_through_calamine_as_written() {
        let bytes = book(&[
            (0, vec![(0, DataRef::SharedString("Title"))]),
            (
                2,
                vec![
                    (
                        0,
                        DataRef::SharedString("  two  spaces\tand\na <line> & \"more\""),
                    ),
                    (1, DataRef::Float(0.1)),
                    (3, DataRef::Bool(false)),
                ],
            ),
            (
                3,
                vec![
                    (3, DataRef::Float(-1234.5e-9)),
                    (1, DataRef::DateTimeIso("2026-11-20".into())),
                    (2, DataRef::DateTimeIso("2026-11-20T13:45:00".into())),
                    (0, DataRef::DurationIso("PT13H45M00S".into())),
                ],
            ),
            (4, vec![(0, DataRef::Int(1 << 60)), (1, DataRef::Int(12))]),
        ]);
        let mut ods = Ods::new(Cursor::new(bytes)).unwrap();
        assert_eq!(ods.sheet_names(), ["Blatt & 1"]);
        let range = ods.worksheet_range("Blatt & 1").unwrap();
        assert_eq!(range.start(), Some((0, 0)));
        let get = |r, c| range.get_value((r, c)).cloned().unwrap_or(Data::Empty);
        assert_eq!(get(0, 0), Data::String("Title".into()));
        assert_eq!(get(1, 0), Data::Empty);
        assert_eq!(
            get(2, 0),
            Data::String("  two  spaces\tand\na <line> & \"more\"".into())
        );
        assert_eq!(get(2, 1), Data::Float(0.1));
        assert_eq!(get(2, 2), Data::Empty);
        assert_eq!(get(2, 3), Data::Bool(false));
        assert_eq!(get(3, 0), Data::DurationIso("PT13H45M00S".into()));
        assert_eq!(get(3, 1), Data::DateTimeIso("2026-11-20".into()));
        assert_eq!(get(3, 2), Data::DateTimeIso("2026-11-20T13:45:00".into()));
        assert_eq!(get(3, 3), Data::Float(-1234.5e-9));
        assert_eq!(get(4, 0), Data::String((1i64 << 60).to_string()));
        assert_eq!(get(4, 1), Data::Float(12.0));
    }

    #[test]
    fn what_would_not_read_back_is_refused() {
        let mut b = String::new();
        assert!(cell(&mut b, &DataRef::Float(f64::NAN)).is_err());
        assert!(cell(&mut b, &DataRef::SharedString("a\u{1}b")).is_err());
        assert!(cell(&mut b, &DataRef::DateTimeIso("2026\"/>".into())).is_err());
        let mut out = OdsOut::start(Cursor::new(Vec::new()), "S", 1).unwrap();
        out.row(3, &[]).unwrap();
        assert!(out.row(2, &[]).is_err(), "rows go down only");
    }
}
