//! Quoting one CSV field (RFC 4180) for the CSV files Koppel writes itself
//! (reject reports, release tables); reading CSV is the `csv` crate's job.

use std::borrow::Cow;

/// The field as it must stand in a comma-separated line: quoted when it
/// holds a comma, a quote, a line feed or a carriage return (a bare `\r`
/// ends a record for most readers), with quotes doubled.
pub fn quote_field(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_they_must_be() {
        assert_eq!(quote_field("plain"), "plain");
        assert_eq!(quote_field(""), "");
        assert_eq!(quote_field("a,b"), "\"a,b\"");
        assert_eq!(quote_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(quote_field("carriage\rreturn"), "\"carriage\rreturn\"");
    }

    #[test]
    fn a_quoted_field_reads_back_whole() {
        for field in ["a,b", "x\"y", "l1\r\nl2", "\r", "plain"] {
            let line = format!("{},end\n", quote_field(field));
            let mut reader = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes());
            let record = reader.records().next().unwrap().unwrap();
            assert_eq!(record.iter().collect::<Vec<_>>(), vec![field, "end"]);
        }
    }
}
