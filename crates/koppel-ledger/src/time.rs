//! Timestamps as stored: RFC 3339, UTC, whole seconds (`2024-03-01T12:00:00Z`).
//! In this form text order is time order, which the ledger's `ORDER BY`
//! relies on.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

pub(crate) fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(t))
}

pub(crate) fn serialize_opt<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&format(t)),
        None => s.serialize_none(),
    }
}
