//! Matches a delivery's header to the spec's columns: case-insensitive,
//! trimmed, any order, `_P1` suffix for pre-pseudonymised identifiers.

use std::path::Path;

use crate::IngestError;
use crate::columns::IdentifierMode;
use crate::spec::SourceSpec;

/// Where each spec column sits in the file, and how identifiers arrive.
#[derive(Debug, Clone)]
pub(crate) struct HeaderMap {
    /// For each spec column, its 0-based field index in the file.
    pub field_of_column: Vec<usize>,
    pub mode: IdentifierMode,
}

/// What an error may say about a header cell. A file without a header row
/// has its first data row read as the header, so a cell that looks like a
/// value (a run of digits, a pseudonym) is not repeated: it could be an
/// identifier.
pub(crate) fn shown_header(header: &str) -> String {
    let digits = header.bytes().filter(u8::is_ascii_digit).count();
    let hexlike = header.len() >= 16 && header.bytes().all(|b| b.is_ascii_hexdigit());
    if digits >= 5 || hexlike {
        "<a value, not a header: is the header row missing?>".to_owned()
    } else {
        header.to_owned()
    }
}

pub(crate) fn map_headers(
    path: &Path,
    spec: &SourceSpec,
    headers: &[&str],
    expected_mode: Option<IdentifierMode>,
) -> Result<HeaderMap, IngestError> {
    let mut field_of_column: Vec<Option<usize>> = vec![None; spec.columns.len()];
    let mut mode_of_column: Vec<Option<IdentifierMode>> = vec![None; spec.columns.len()];
    let mut ignored_seen = vec![false; spec.ignored_columns.len()];
    for (field, raw) in headers.iter().enumerate() {
        let header = raw.trim();
        let found = spec.columns.iter().enumerate().find_map(|(i, c)| {
            if c.header.eq_ignore_ascii_case(header) {
                Some((i, IdentifierMode::Raw))
            } else if c.identifier().is_some()
                && header.len() == c.header.len() + 3
                && header.is_char_boundary(c.header.len())
                && header[..c.header.len()].eq_ignore_ascii_case(&c.header)
                && header[c.header.len()..].eq_ignore_ascii_case("_P1")
            {
                Some((i, IdentifierMode::PrePseudonymised))
            } else {
                None
            }
        });
        match found {
            Some((i, mode)) => {
                if field_of_column[i].is_some() {
                    let col = &spec.columns[i];
                    return Err(if mode_of_column[i].is_some_and(|m| m != mode) {
                        IngestError::AmbiguousIdentifier {
                            path: path.to_owned(),
                            header: col.header.clone(),
                        }
                    } else {
                        IngestError::DuplicateHeader {
                            path: path.to_owned(),
                            header: shown_header(header),
                            field: field + 1,
                        }
                    });
                }
                field_of_column[i] = Some(field);
                if spec.columns[i].identifier().is_some() {
                    mode_of_column[i] = Some(mode);
                }
            }
            None => {
                match spec
                    .ignored_columns
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(header))
                {
                    Some(k) if !ignored_seen[k] => ignored_seen[k] = true,
                    Some(_) => {
                        return Err(IngestError::DuplicateHeader {
                            path: path.to_owned(),
                            header: shown_header(header),
                            field: field + 1,
                        });
                    }
                    None => {
                        return Err(IngestError::UnknownColumn {
                            path: path.to_owned(),
                            header: shown_header(header),
                            field: field + 1,
                        });
                    }
                }
            }
        }
    }
    let modes: Vec<IdentifierMode> = mode_of_column.into_iter().flatten().collect();
    let mode = match modes.split_first() {
        None => expected_mode.unwrap_or(IdentifierMode::Raw),
        Some((first, rest)) => {
            if rest.iter().any(|m| m != first) {
                return Err(IngestError::MixedIdentifierModes {
                    path: path.to_owned(),
                });
            }
            *first
        }
    };
    if let Some(expected) = expected_mode
        && expected != mode
        && !modes.is_empty()
    {
        return Err(IngestError::IdentifierModeMismatch {
            path: path.to_owned(),
            expected: expected.as_str(),
            found: mode.as_str(),
        });
    }
    let field_of_column = field_of_column
        .into_iter()
        .zip(&spec.columns)
        .map(|(f, c)| {
            f.ok_or_else(|| IngestError::MissingColumn {
                path: path.to_owned(),
                header: match (c.identifier(), mode) {
                    (Some(_), IdentifierMode::PrePseudonymised) => format!("{}_P1", c.header),
                    _ => c.header.clone(),
                },
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(HeaderMap {
        field_of_column,
        mode,
    })
}
