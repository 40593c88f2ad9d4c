//! Times as erpdrop writes them: RFC 3339 in UTC, to the millisecond
//! (`2026-11-25T04:15:00.123Z`), so that they sort as text.

use chrono::{DateTime, SecondsFormat, Utc};

/// A time as reports and the ledger write it.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
