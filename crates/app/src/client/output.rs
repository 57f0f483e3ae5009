//! Writing results: an aligned text table, the server's JSON, or CSV.

use std::io::Write;

use serde_json::Value;

use super::SqlResponse;
use crate::error::AppError;

/// How `calamus sql` writes results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns with a header and a `(N rows)` footer; DDL and DML print their message.
    #[default]
    Table,
    /// The server's `results` array, as the server wrote it.
    Json,
    /// A header line and one line per row (RFC 4180 quoting; NULL is an empty field).
    Csv,
}

/// One statement's result, read from the server's JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementResult {
    /// A query: column names, whether each is numeric, and the rows.
    Rows {
        /// Column names in order.
        columns: Vec<String>,
        /// Whether each column holds numbers (right-aligned in tables).
        numeric: Vec<bool>,
        /// The rows, one value per column.
        rows: Vec<Vec<Value>>,
        /// Whether the server cut the result at its row limit.
        truncated: bool,
    },
    /// DDL or DML: the server's message.
    Message(String),
}

impl StatementResult {
    /// Reads one entry of the server's `results` array.
    pub fn from_json(result: &Value) -> StatementResult {
        let Some(schema) = result.get("schema").and_then(Value::as_array) else {
            let message = match (result.get("message").and_then(Value::as_str), result.get("row_count")) {
                (Some(message), _) => message.to_owned(),
                (None, Some(count)) => format!("OK, {count} row(s)"),
                (None, None) => "OK".to_owned(),
            };
            return StatementResult::Message(message);
        };
        let columns = schema
            .iter()
            .map(|c| c.get("name").and_then(Value::as_str).unwrap_or("?").to_owned())
            .collect();
        let numeric = schema.iter().map(|c| is_numeric(c.get("data_type"))).collect();
        let rows = result
            .get("rows")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .map(|row| row.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let truncated = result.get("truncated").and_then(Value::as_bool).unwrap_or(false);
        StatementResult::Rows {
            columns,
            numeric,
            rows,
            truncated,
        }
    }
}

/// Numbers are right-aligned, as in psql.
fn is_numeric(data_type: Option<&Value>) -> bool {
    match data_type {
        Some(Value::String(name)) => matches!(name.as_str(), "SmallInt" | "Int" | "BigInt" | "Float" | "Double"),
        Some(Value::Object(map)) => map.contains_key("Decimal"),
        _ => false,
    }
}

/// Writes the results of a batch to `out` in `format`. In CSV, `out` holds only rows, so a
/// statement's message (`Inserted 3 row(s)`) goes to `notes` (the caller's stderr).
pub fn write_results(
    response: &SqlResponse,
    format: OutputFormat,
    out: &mut impl Write,
    notes: &mut impl Write,
) -> Result<(), AppError> {
    if format == OutputFormat::Json {
        writeln!(out, "{}", response.results_json)?;
        return Ok(());
    }
    let mut after_rows = false;
    for result in &response.results {
        let result = StatementResult::from_json(result);
        let goes_to_out = format != OutputFormat::Csv || matches!(result, StatementResult::Rows { .. });
        // A blank line between a table and what follows it in `out` keeps results apart.
        if after_rows && goes_to_out {
            writeln!(out)?;
        }
        match result {
            StatementResult::Message(message) if format == OutputFormat::Csv => {
                writeln!(notes, "{message}")?;
            }
            StatementResult::Message(message) => {
                writeln!(out, "{message}")?;
                after_rows = false;
            }
            StatementResult::Rows {
                columns,
                numeric,
                rows,
                truncated,
            } => {
                let text = match format {
                    OutputFormat::Csv => format_csv(&columns, &rows),
                    _ => format_table(&columns, &numeric, &rows, truncated),
                };
                out.write_all(text.as_bytes())?;
                after_rows = true;
            }
        }
    }
    Ok(())
}

/// A value as a table or CSV shows it: strings raw, numbers and booleans as JSON writes
/// them, arrays and objects as compact JSON; `None` for NULL.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A cell of a text table: control characters escaped so every row stays one line.
fn table_cell(value: &Value) -> String {
    match value_text(value) {
        None => "NULL".to_owned(),
        Some(text) => text.chars().fold(String::with_capacity(text.len()), |mut cell, c| {
            match c {
                '\n' => cell.push_str("\\n"),
                '\r' => cell.push_str("\\r"),
                '\t' => cell.push_str("\\t"),
                c if c.is_control() => cell.push_str(&c.escape_unicode().to_string()),
                c => cell.push(c),
            }
            cell
        }),
    }
}

/// An aligned text table in psql's style:
///
/// ```text
///  id | name
/// ----+-------
///   1 | Alice
/// (1 row)
/// ```
pub fn format_table(columns: &[String], numeric: &[bool], rows: &[Vec<Value>], truncated: bool) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| row.get(i).map_or_else(String::new, table_cell))
                .collect()
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|row| row[i].chars().count())
            .chain([columns[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns.len()).map(width).collect();
    let line = |values: &[String], right: &dyn Fn(usize) -> bool| {
        let padded: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if right(i) {
                    format!("{v:>w$}", w = widths[i])
                } else {
                    format!("{v:<w$}", w = widths[i])
                }
            })
            .collect();
        format!(" {}", padded.join(" | ")).trim_end().to_owned() + "\n"
    };
    let mut text = String::new();
    if !columns.is_empty() {
        text.push_str(&line(columns, &|_| false));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
        text.push_str(&rule.join("+"));
        text.push('\n');
        for row in &cells {
            text.push_str(&line(row, &|i| numeric.get(i).copied().unwrap_or(false)));
        }
    }
    let count = rows.len();
    let noun = if count == 1 { "row" } else { "rows" };
    if truncated {
        text.push_str(&format!("({count} {noun}; cut at the server's row limit)\n"));
    } else {
        text.push_str(&format!("({count} {noun})\n"));
    }
    text
}

/// CSV (RFC 4180): a header line, then one line per row; a field is quoted when it holds
/// a comma, a quote, a line break or surrounding spaces, and NULL is an empty field.
pub fn format_csv(columns: &[String], rows: &[Vec<Value>]) -> String {
    let record = |fields: Vec<String>| fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",") + "\n";
    let mut text = record(columns.to_vec());
    for row in rows {
        let fields = (0..columns.len())
            .map(|i| row.get(i).and_then(value_text).unwrap_or_default())
            .collect();
        text.push_str(&record(fields));
    }
    text
}

fn csv_field(field: &str) -> String {
    let needs_quotes = field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn rows(value: Value) -> Vec<Vec<Value>> {
        serde_json::from_value(value).unwrap()
    }

    fn render(results: Value, format: OutputFormat) -> String {
        let response = SqlResponse {
            results: serde_json::from_value(results.clone()).unwrap(),
            results_json: results.to_string(),
            took_ms: None,
        };
        let (mut out, mut notes) = (Vec::new(), Vec::new());
        write_results(&response, format, &mut out, &mut notes).unwrap();
        let (out, notes) = (String::from_utf8(out).unwrap(), String::from_utf8(notes).unwrap());
        if notes.is_empty() {
            out
        } else {
            format!("{out}[notes]\n{notes}")
        }
    }

    #[test]
    fn a_table_is_aligned_with_header_and_footer() {
        let text = format_table(
            &names(&["id", "name", "active"]),
            &[true, false, false],
            &rows(json!([["1", "Alice", true], ["1234", null, false]])),
            false,
        );
        assert_eq!(
            text,
            " id   | name  | active\n\
             ------+-------+--------\n    \
             1 | Alice | true\n \
             1234 | NULL  | false\n\
             (2 rows)\n"
        );
    }

    #[test]
    fn footers_count_rows_and_say_when_cut() {
        let one = format_table(&names(&["a"]), &[false], &rows(json!([["x"]])), false);
        assert!(one.ends_with("(1 row)\n"), "{one}");
        let none = format_table(&names(&["a"]), &[false], &[], false);
        assert_eq!(none, " a\n---\n(0 rows)\n");
        let cut = format_table(&names(&["a"]), &[false], &rows(json!([["x"], ["y"]])), true);
        assert!(cut.ends_with("(2 rows; cut at the server's row limit)\n"), "{cut}");
    }

    #[test]
    fn table_cells_stay_on_one_line_and_count_characters() {
        let text = format_table(
            &names(&["body", "n"]),
            &[false, false],
            &rows(json!([["two\nlines\ttab", 1], ["héllo", [1, 2]], ["x", {"k": "v"}]])),
            false,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], " two\\nlines\\ttab | 1");
        assert_eq!(lines[3], " héllo           | [1,2]");
        assert_eq!(lines[4], " x               | {\"k\":\"v\"}");
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let text = format_csv(
            &names(&["id", "text", "note"]),
            &rows(json!([
                ["1", "plain", null],
                ["2", "a,b", "say \"hi\""],
                ["3", "line\nbreak", " padded"]
            ])),
        );
        assert_eq!(
            text,
            "id,text,note\n1,plain,\n2,\"a,b\",\"say \"\"hi\"\"\"\n3,\"line\nbreak\",\" padded\"\n"
        );
    }

    #[test]
    fn ddl_and_dml_print_their_message() {
        let results = json!([
            {"row_count": 0, "message": "Namespace 'app' created successfully", "as_user": "root"},
            {"row_count": 3, "message": "Inserted 3 row(s)", "as_user": "root"},
        ]);
        assert_eq!(
            render(results.clone(), OutputFormat::Table),
            "Namespace 'app' created successfully\nInserted 3 row(s)\n"
        );
        assert_eq!(
            render(results, OutputFormat::Csv),
            "[notes]\nNamespace 'app' created successfully\nInserted 3 row(s)\n",
            "CSV output holds rows only"
        );
    }

    #[test]
    fn results_of_a_batch_are_written_in_order() {
        let results = json!([
            {"row_count": 1, "message": "Inserted 1 row(s)"},
            {"schema": [{"name": "id", "data_type": "BigInt", "index": 0},
                        {"name": "price", "data_type": {"Decimal": {"precision": 10, "scale": 2}}, "index": 1}],
             "rows": [["7", "12.50"]], "row_count": 1, "as_user": "root"},
            {"row_count": 1, "message": "Deleted 1 row(s)"},
        ]);
        assert_eq!(
            render(results.clone(), OutputFormat::Table),
            "Inserted 1 row(s)\n id | price\n----+-------\n  7 | 12.50\n(1 row)\n\nDeleted 1 row(s)\n"
        );
        assert_eq!(
            render(results, OutputFormat::Csv),
            "id,price\n7,12.50\n[notes]\nInserted 1 row(s)\nDeleted 1 row(s)\n"
        );
    }

    #[test]
    fn json_is_the_servers_results() {
        let results =
            json!([{"schema": [{"name": "a", "data_type": "Int", "index": 0}], "rows": [[1]], "row_count": 1}]);
        assert_eq!(render(results.clone(), OutputFormat::Json), format!("{results}\n"));
    }
}
