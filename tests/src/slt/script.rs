//! Loading a script: the text fixes the `sqllogictest` crate's parser needs, and the
//! conditional `halt` records it does not understand.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sqllogictest::{Condition, DefaultColumnType, ParseError, Record};

/// One record of a script.
pub type SltRecord = Record<DefaultColumnType>;

/// Why a script could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("{0}")]
    Parse(#[from] ParseError),
}

/// Every file under `dir` (recursively) whose name ends with `.{extension}`, sorted, each
/// with its name: its path relative to `dir`, with `/` separators.
pub fn find_scripts(dir: &Path, extension: &str) -> std::io::Result<Vec<(PathBuf, String)>> {
    fn walk(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, extension, out)?;
            } else if path.extension().is_some_and(|e| e == extension) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut paths = Vec::new();
    walk(dir, extension, &mut paths)?;
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(dir).unwrap_or(&path);
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            (path, name)
        })
        .collect())
}

/// Reads and parses a script. `name` is how locations (and failures) name the file.
pub fn load(path: &Path, name: &str, labels: &HashSet<String>) -> Result<Vec<SltRecord>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, name, labels)
}

/// Parses a script's text (see [`load`]).
pub fn parse(text: &str, name: &str, labels: &HashSet<String>) -> Result<Vec<SltRecord>, LoadError> {
    let records = sqllogictest::parse_with_name(&strip_label_comments(text), name)?;
    Ok(resolve_conditional_halts(records, labels))
}

/// SQLite's scripts write `skipif mysql # empty RHS`; the crate's parser takes only the
/// label, so the comment after it goes.
fn strip_label_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let is_condition = line.starts_with("skipif ") || line.starts_with("onlyif ");
        match line.find('#') {
            Some(hash) if is_condition => out.push_str(line[..hash].trim_end()),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Whether `conditions` exclude an engine with `labels`.
pub fn excluded(conditions: &[Condition], labels: &HashSet<String>) -> bool {
    conditions.iter().any(|condition| match condition {
        Condition::OnlyIf { label } => !labels.contains(label),
        Condition::SkipIf { label } => labels.contains(label),
    })
}

/// `onlyif mssql` + `halt` stops a script only on that engine, but the crate's parser
/// records the `halt` unconditionally and hands its conditions to the next statement.
/// Here a halt whose conditions exclude us is dropped, its conditions are taken back
/// from the next statement. A halt that applies is kept: the runner stops there.
fn resolve_conditional_halts(records: Vec<SltRecord>, labels: &HashSet<String>) -> Vec<SltRecord> {
    let mut out = Vec::with_capacity(records.len());
    // Conditions seen since the last executable record, and how many of them (at the
    // front) belonged to dropped halts.
    let mut pending: Vec<Condition> = Vec::new();
    let mut owned_by_dropped_halts = 0;
    let mut halted = false;
    for mut record in records {
        if halted {
            out.push(record);
            continue;
        }
        match &mut record {
            Record::Condition(condition) => pending.push(condition.clone()),
            Record::Halt { .. } => {
                if excluded(&pending[owned_by_dropped_halts..], labels) {
                    owned_by_dropped_halts = pending.len();
                    continue;
                }
                halted = true;
            }
            Record::Statement { conditions, .. }
            | Record::Query { conditions, .. }
            | Record::System { conditions, .. }
            | Record::Let { conditions, .. } => {
                let taken = owned_by_dropped_halts.min(conditions.len());
                conditions.drain(..taken);
                pending.clear();
                owned_by_dropped_halts = 0;
            }
            _ => {}
        }
        out.push(record);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> HashSet<String> {
        ["postgresql".to_owned()].into()
    }

    fn statements(records: &[SltRecord]) -> Vec<(String, usize)> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Statement { sql, conditions, .. } => Some((sql.clone(), conditions.len())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_halt_for_another_engine_is_dropped_with_its_conditions() {
        let script = "onlyif mssql\nhalt\n\nonlyif oracle # a comment\nhalt\n\n\
                      skipif mysql # empty RHS\nstatement ok\nSELECT 1\n\nstatement ok\nSELECT 2\n";
        let records = parse(script, "t", &labels()).unwrap();
        assert!(!records.iter().any(|r| matches!(r, Record::Halt { .. })));
        assert_eq!(
            statements(&records),
            [("SELECT 1".to_owned(), 1), ("SELECT 2".to_owned(), 0)]
        );
    }

    #[test]
    fn a_halt_that_applies_is_kept() {
        let script = "statement ok\nSELECT 1\n\nskipif sqlite\nhalt\n\nstatement ok\nSELECT 2\n";
        let records = parse(script, "t", &labels()).unwrap();
        let halt = records.iter().position(|r| matches!(r, Record::Halt { .. })).unwrap();
        // The records after it are never run: they stay as parsed.
        let after: Vec<String> = statements(&records[halt + 1..])
            .into_iter()
            .map(|(sql, _)| sql)
            .collect();
        assert_eq!(after, ["SELECT 2"]);
    }
}
