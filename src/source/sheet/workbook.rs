//! Opening a workbook and reading one sheet's rows, on a thread of their own.
//!
//! An xlsx sheet is streamed cell by cell (calamine's `XlsxCellReader`): memory holds
//! the shared strings and a few batches of rows, whatever the number of rows. calamine
//! reads xls and ods sheets whole (`worksheet_range`); an xls sheet has at most 65,536
//! rows, and an ods file is one XML document.

use super::cell::Row;
use crate::problem::{quote, Code, Problem};
use crate::source::SourceFormat;
use calamine::{Data, Ods, Range, Reader, Xls, Xlsx, XlsxError};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// What the reading thread sends: rows, in batches, then the end, or why it stopped.
pub enum Batch {
    Rows(Vec<Row>),
    End,
    Fatal(Problem),
}

/// Rows per batch: a channel message per row would cost more than the row.
const BATCH: usize = 512;
/// Batches in flight: memory stays a few thousand rows.
const IN_FLIGHT: usize = 4;

/// Starts the thread that reads `sheet` (or the first sheet) of the workbook in `file`.
pub fn start(file: File, format: SourceFormat, sheet: Option<String>) -> Receiver<Batch> {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    std::thread::Builder::new()
        .name("erpdrop-sheet".into())
        .spawn(move || {
            let mut out = Sender {
                tx: tx.clone(),
                batch: Vec::with_capacity(BATCH),
            };
            let end = match read(file, format, sheet.as_deref(), &mut out) {
                Ok(()) => out.flush().then_some(Batch::End),
                Err(Stop::Fatal(p)) => Some(Batch::Fatal(p)),
                Err(Stop::Gone) => None,
            };
            if let Some(end) = end {
                let _ = tx.send(end);
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| {
            // no thread: the reader sees the channel closed and says the file could not
            // be read
            tracing::warn!("cannot start the thread that reads a workbook: {e}");
        });
    rx
}

/// Why reading stopped early.
enum Stop {
    Fatal(Problem),
    /// The source was dropped: nobody reads the rows any more.
    Gone,
}

impl From<Problem> for Stop {
    fn from(p: Problem) -> Stop {
        Stop::Fatal(p)
    }
}

struct Sender {
    tx: SyncSender<Batch>,
    batch: Vec<Row>,
}

impl Sender {
    fn push(&mut self, row: Row) -> Result<(), Stop> {
        self.batch.push(row);
        if self.batch.len() >= BATCH && !self.flush() {
            return Err(Stop::Gone);
        }
        Ok(())
    }

    /// Sends what is batched; `false` when nobody listens.
    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let rows = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx.send(Batch::Rows(rows)).is_ok()
    }
}

fn read(
    mut file: File,
    format: SourceFormat,
    sheet: Option<&str>,
    out: &mut Sender,
) -> Result<(), Stop> {
    let kind = sniff(&mut file)?;
    let file = BufReader::with_capacity(256 * 1024, file);
    match format {
        SourceFormat::Xls => {
            if kind != Kind::Ole {
                return Err(not_a_workbook(format, kind).into());
            }
            let mut wb = Xls::new(file).map_err(|e| damaged(format, &e.to_string()))?;
            let name = choose_sheet(&wb.sheet_names(), sheet)?;
            let range = wb
                .worksheet_range(&name)
                .map_err(|e| damaged(format, &e.to_string()))?;
            send_range(&range, out)
        }
        SourceFormat::Ods => {
            if kind != Kind::Zip {
                return Err(not_a_workbook(format, kind).into());
            }
            let mut wb = Ods::new(file).map_err(|e| match e {
                calamine::OdsError::Password => password(),
                e => damaged(format, &e.to_string()),
            })?;
            let name = choose_sheet(&wb.sheet_names(), sheet)?;
            let range = wb
                .worksheet_range(&name)
                .map_err(|e| damaged(format, &e.to_string()))?;
            send_range(&range, out)
        }
        _ => {
            if kind != Kind::Zip && kind != Kind::Ole {
                return Err(not_a_workbook(format, kind).into());
            }
            let mut wb = Xlsx::new(file).map_err(|e| match e {
                XlsxError::Password => password(),
                // an OLE2 file that is not an encrypted workbook: an xls one
                _ if kind == Kind::Ole => not_a_workbook(format, kind),
                e => damaged(format, &e.to_string()),
            })?;
            let name = choose_sheet(&wb.sheet_names(), sheet)?;
            let mut cells = wb
                .worksheet_cells_reader(&name)
                .map_err(|e| damaged(format, &e.to_string()))?;
            let mut row = Row::new(0);
            loop {
                let cell = cells
                    .next_cell()
                    .map_err(|e| damaged(format, &e.to_string()))?;
                let Some(cell) = cell else { break };
                let (r, c) = cell.get_position();
                let number = r.saturating_add(1);
                if number != row.number {
                    if !row.is_empty() {
                        out.push(std::mem::replace(&mut row, Row::new(number)))?;
                    }
                    row.number = number;
                }
                row.put(c as usize, cell.get_value());
            }
            if !row.is_empty() {
                out.push(row)?;
            }
            Ok(())
        }
    }
}

fn send_range(range: &Range<Data>, out: &mut Sender) -> Result<(), Stop> {
    let Some((top, left)) = range.start() else {
        return Ok(());
    };
    for (i, cells) in range.rows().enumerate() {
        let mut row = Row::new(top + i as u32 + 1);
        for (c, d) in cells.iter().enumerate() {
            row.put_owned(left as usize + c, d);
        }
        if !row.is_empty() {
            out.push(row)?;
        }
    }
    Ok(())
}

/// What the file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A zip archive: xlsx or ods.
    Zip,
    /// An OLE2 compound file: xls, or a password-protected xlsx.
    Ole,
    Empty,
    Other,
}

fn sniff(file: &mut File) -> Result<Kind, Problem> {
    let mut head = [0u8; 8];
    let mut n = 0;
    let io = |e: std::io::Error| {
        Problem::file(Code::Io, None, format!("The file could not be read: {e}"))
    };
    while n < head.len() {
        match file.read(&mut head[n..]).map_err(io)? {
            0 => break,
            k => n += k,
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(match &head[..n] {
        [] => Kind::Empty,
        [b'P', b'K', 3, 4, ..] => Kind::Zip,
        [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1] => Kind::Ole,
        _ => Kind::Other,
    })
}

fn not_a_workbook(format: SourceFormat, kind: Kind) -> Problem {
    let what = match format {
        SourceFormat::Xls => "an xls workbook (Excel 97-2003)",
        SourceFormat::Ods => "an ods spreadsheet (OpenDocument)",
        _ => "an xlsx workbook",
    };
    let hint = match (format, kind) {
        (_, Kind::Empty) => "it is empty".to_string(),
        (SourceFormat::Xls, Kind::Zip) => {
            "it is a zip archive: an xlsx or ods file? (set source.format to match)".into()
        }
        (SourceFormat::Xlsx, Kind::Ole) => {
            "it is an Excel 97-2003 file: set source.format = \"xls\"".into()
        }
        (SourceFormat::Ods, Kind::Ole) => {
            "it is an Excel 97-2003 file: set source.format = \"xls\"".into()
        }
        _ => format!(
            "it does not start as {} does: a CSV or text file renamed, or another kind of file?",
            match format {
                SourceFormat::Xls => "an xls file",
                _ => "a zip archive",
            }
        ),
    };
    Problem::file(
        Code::Malformed,
        None,
        format!("The file is not {what}: {hint}"),
    )
}

fn damaged(format: SourceFormat, e: &str) -> Problem {
    Problem::file(
        Code::Malformed,
        None,
        format!(
            "The {} workbook cannot be read: it is damaged or cut off ({e})",
            format.name()
        ),
    )
}

fn password() -> Problem {
    Problem::file(
        Code::Malformed,
        None,
        "The workbook is protected by a password: erpdrop cannot read it; save it without a password",
    )
}

/// The sheet to read: the one named (exactly, or else without regard to case), or the
/// first.
pub(crate) fn choose_sheet(names: &[String], wanted: Option<&str>) -> Result<String, Problem> {
    let Some(wanted) = wanted else {
        return names
            .first()
            .cloned()
            .ok_or_else(|| Problem::file(Code::Empty, None, "The workbook has no sheet"));
    };
    names
        .iter()
        .find(|n| *n == wanted)
        .or_else(|| {
            names
                .iter()
                .find(|n| n.trim().to_lowercase() == wanted.trim().to_lowercase())
        })
        .cloned()
        .ok_or_else(|| {
            let list = names
                .iter()
                .map(|n| quote(n))
                .collect::<Vec<_>>()
                .join(", ");
            Problem::file(
                Code::MissingSheet,
                None,
                format!(
                    "The workbook has no sheet {}; its sheets are {list}",
                    quote(wanted)
                ),
            )
            .with_value(wanted.to_string())
        })
}
