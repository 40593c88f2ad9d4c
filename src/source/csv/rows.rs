//! A CSV file read row by row for the [`rows`](crate::source::rows) layer: record types,
//! skipped rows and the trailer work on CSV as on every row-shaped format.

use super::header::resolve_column;
use super::CsvSource;
use crate::problem::Problem;
use crate::source::rows::RowReader;
use crate::source::{RowKind, SourceError};
use std::io::Read;

impl<R: Read> RowReader for CsvSource<R> {
    fn next_row(&mut self) -> Result<bool, SourceError> {
        Ok(self.read_row()?)
    }

    fn line(&self) -> u64 {
        self.row_line()
    }

    /// A column-name row names the columns of every record type; without one, columns
    /// are numbers (`from = 3`).
    fn resolve(&self, name: &str, _kind: Option<RowKind>) -> Result<usize, String> {
        let header = !self.columns.is_empty();
        resolve_column(&self.columns, name, header).ok_or_else(|| {
            if header {
                format!("the header row has no column {name:?}")
            } else {
                format!("{name:?} is not a column number (header = false: 1, 2, 3...)")
            }
        })
    }

    fn value(&self, col: usize) -> Result<&str, Problem> {
        Ok(self.field(col).unwrap_or(""))
    }

    fn by_position(&self) -> bool {
        self.columns.is_empty()
    }

    fn column_name(&self, col: usize) -> String {
        CsvSource::column_name(self, col)
    }

    fn bytes_read(&self) -> u64 {
        self.tap.borrow().bytes
    }
}
