//! Known differences: failures of third-party scripts that are intended semantic
//! differences of Calamus (DataFusion) from the engine that wrote the expectations.
//!
//! The list is a text file, one record per line, `FILE:LINE reason`, with `#` comments
//! and blank lines. FILE names the script by its path's last components
//! (`select1.test`, `evidence/in1.test`); LINE is the record's `statement`/`query` line.

use std::path::Path;

use super::report::FileReport;

/// One listed difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDifference {
    /// The script, by its last path components.
    pub file: String,
    /// The record's line.
    pub line: u32,
    /// Why the engine answers differently, in a few words.
    pub reason: String,
    /// The line of the list that says so.
    pub list_line: usize,
}

/// The whole list.
#[derive(Debug, Clone, Default)]
pub struct KnownDifferences {
    entries: Vec<KnownDifference>,
}

impl KnownDifferences {
    /// Reads the list at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the list's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = || format!("line {}: expected `FILE:LINE reason`, found {raw:?}", index + 1);
            let (location, reason) = line.split_once(char::is_whitespace).ok_or_else(malformed)?;
            let (file, record_line) = location.rsplit_once(':').ok_or_else(malformed)?;
            let record_line = record_line.parse().map_err(|_| malformed())?;
            let reason = reason.trim();
            if file.is_empty() || reason.is_empty() {
                return Err(malformed());
            }
            entries.push(KnownDifference {
                file: file.to_owned(),
                line: record_line,
                reason: reason.to_owned(),
                list_line: index + 1,
            });
        }
        Ok(Self { entries })
    }

    /// Every entry.
    pub fn entries(&self) -> &[KnownDifference] {
        &self.entries
    }

    /// Marks the failures of `report` that are listed, and returns the entries for its
    /// script that no longer fail (stale entries hide nothing and must go).
    pub fn apply(&self, report: &mut FileReport) -> Vec<KnownDifference> {
        let mut stale = Vec::new();
        for entry in self
            .entries
            .iter()
            .filter(|e| Path::new(&report.name).ends_with(&e.file))
        {
            match report.failures.iter_mut().find(|f| f.line == entry.line) {
                Some(failure) => failure.known = Some(entry.reason.clone()),
                None => stale.push(entry.clone()),
            }
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slt::report::Failure;

    #[test]
    fn listed_failures_are_marked_and_unlisted_entries_are_stale() {
        let list = KnownDifferences::parse("# comment\n\nevidence/in1.test:12 division by zero is an error\nevidence/in1.test:40 gone\nselect1.test:3 other file\n").unwrap();
        let mut report = FileReport {
            name: "/x/sqlite/evidence/in1.test".into(),
            ..Default::default()
        };
        report.failures.push(Failure::whole_file("boom"));
        report.failures[0].line = 12;
        report.failures.push(Failure::whole_file("bug"));
        report.failures[1].line = 13;
        let stale = list.apply(&mut report);
        assert_eq!(
            report.failures[0].known.as_deref(),
            Some("division by zero is an error")
        );
        assert_eq!(report.unexpected().count(), 1);
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].line, 40);
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(KnownDifferences::parse("select1.test reason\n").is_err());
        assert!(KnownDifferences::parse("select1.test:x reason\n").is_err());
        assert!(KnownDifferences::parse("select1.test:3\n").is_err());
    }
}
