//! Known differences: failures of third-party scripts that are intended semantic
//! differences of Calamus (DataFusion) from the engine that wrote the expectations.
//!
//! The list is a text file, one record per line, `FILE:LINE reason`, with `#` comments
//! and blank lines. FILE names the script by its path's last components
//! (`select1.test`, `evidence/in1.test`); LINE is the record's `statement`/`query` line.
//!
//! A feature Calamus does not have fails many records with one clear error; it is listed
//! once as `ERROR "text of the error" reason`, and every failure whose error contains the
//! text is known. Such an entry is stale when no failure of a whole run matches it.

use std::path::Path;

use super::report::{Failure, FileReport};

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

/// An unsupported feature, known by the error it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownError {
    /// Text the failure's error contains.
    pub error: String,
    /// Why, in a few words.
    pub reason: String,
    /// The line of the list that says so.
    pub list_line: usize,
}

impl KnownError {
    /// Whether `failure` is this feature's error (not a wrong result that mentions it).
    pub fn matches(&self, failure: &Failure) -> bool {
        failure
            .actual
            .strip_prefix("error: ")
            .is_some_and(|error| error.contains(&self.error))
    }
}

/// The whole list.
#[derive(Debug, Clone, Default)]
pub struct KnownDifferences {
    entries: Vec<KnownDifference>,
    errors: Vec<KnownError>,
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
        let mut errors = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("ERROR ") {
                let malformed = || format!("line {}: expected `ERROR \"text\" reason`, found {raw:?}", index + 1);
                let rest = rest.trim_start().strip_prefix('"').ok_or_else(malformed)?;
                let (error, reason) = rest.split_once('"').ok_or_else(malformed)?;
                if error.is_empty() || reason.trim().is_empty() {
                    return Err(malformed());
                }
                errors.push(KnownError {
                    error: error.to_owned(),
                    reason: reason.trim().to_owned(),
                    list_line: index + 1,
                });
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
        Ok(Self { entries, errors })
    }

    /// The `FILE:LINE` entries whose file none of `reports` ran (a renamed or misspelled
    /// script): stale after a whole run.
    pub fn entries_of_missing_files(&self, reports: &[FileReport]) -> Vec<KnownDifference> {
        self.entries
            .iter()
            .filter(|entry| !reports.iter().any(|r| Path::new(&r.name).ends_with(&entry.file)))
            .cloned()
            .collect()
    }

    /// Every entry.
    pub fn entries(&self) -> &[KnownDifference] {
        &self.entries
    }

    /// Every unsupported feature listed by its error.
    pub fn errors(&self) -> &[KnownError] {
        &self.errors
    }

    /// The `ERROR` entries no failure of `reports` matched (stale after a whole run).
    pub fn unmatched_errors(&self, reports: &[FileReport]) -> Vec<KnownError> {
        self.errors
            .iter()
            .filter(|known| !reports.iter().flat_map(|r| &r.failures).any(|f| known.matches(f)))
            .cloned()
            .collect()
    }

    /// Marks the failures of `report` that are listed, and returns the entries for its
    /// script that no longer fail (stale entries hide nothing and must go).
    pub fn apply(&self, report: &mut FileReport) -> Vec<KnownDifference> {
        for failure in &mut report.failures {
            if let Some(known) = self.errors.iter().find(|k| k.matches(failure)) {
                failure.known = Some(known.reason.clone());
            }
        }
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
    fn failures_with_a_listed_error_are_known() {
        let list = KnownDifferences::parse("ERROR \"cannot run this subquery\" correlated subqueries\n").unwrap();
        let mut report = FileReport {
            name: "select1.test".into(),
            ..Default::default()
        };
        report.failures.push(Failure::whole_file(
            "error: not supported: cannot run this subquery yet",
        ));
        report.failures.push(Failure::whole_file("error: something else"));
        // A wrong result that happens to mention the text is not the feature's error.
        report
            .failures
            .push(Failure::whole_file("row 2: expected cannot run this subquery, got 3"));
        assert!(list.apply(&mut report).is_empty());
        assert_eq!(report.failures[0].known.as_deref(), Some("correlated subqueries"));
        assert!(report.failures[1].known.is_none());
        assert!(report.failures[2].known.is_none());
        assert!(list.unmatched_errors(std::slice::from_ref(&report)).is_empty());
        assert_eq!(list.unmatched_errors(&[]).len(), 1);
        assert!(KnownDifferences::parse("ERROR no quotes\n").is_err());
        assert!(KnownDifferences::parse("ERROR \"text\"\n").is_err());
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(KnownDifferences::parse("select1.test reason\n").is_err());
        assert!(KnownDifferences::parse("select1.test:x reason\n").is_err());
        assert!(KnownDifferences::parse("select1.test:3\n").is_err());
    }
}
