//! The interactive prompt of `calamus sql`: statements end at `;` and may span lines;
//! `\q` quits, `\help` helps; history is kept in `~/.calamus_history`.

use std::io::Write;
use std::path::PathBuf;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use super::statements::split_statements;
use super::{OutputFormat, SqlClient, write_results};
use crate::error::AppError;

const PROMPT: &str = "calamus> ";
const CONTINUATION: &str = "     ... ";

const HELP: &str = "\
Type SQL and end each statement with ';' (a statement may span several lines).
  \\q, \\quit     quit (Ctrl-D too)
  \\help, \\?     this help
  Ctrl-C        discard the statement being typed
Examples: SHOW NAMESPACES;  SELECT * FROM system.tables;  CREATE NAMESPACE app;";

/// What a line that is a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Quit,
    Help,
    Unknown,
}

/// A line of its own starting with `\` is a command, whatever was typed before it.
fn command(line: &str) -> Option<Command> {
    let line = line.trim();
    if !line.starts_with('\\') {
        return None;
    }
    Some(match line {
        "\\q" | "\\quit" => Command::Quit,
        "\\help" | "\\h" | "\\?" => Command::Help,
        _ => Command::Unknown,
    })
}

/// `~/.calamus_history`, when there is a home directory.
fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".calamus_history"))
}

/// Runs the prompt until `\q` or end of input. A failed statement is reported on stderr
/// and the prompt goes on.
pub fn run_prompt(client: &mut SqlClient, format: OutputFormat) -> Result<(), AppError> {
    let mut editor = DefaultEditor::new()?;
    let history = history_file();
    if let Some(path) = &history {
        // A first run has no history file yet.
        let _ = editor.load_history(path);
    }
    eprintln!("Connected. Type \\help for help, \\q to quit.");
    let mut pending = String::new();
    let result = loop {
        let prompt = if pending.is_empty() { PROMPT } else { CONTINUATION };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break Ok(()),
            Err(e) => break Err(AppError::from(e)),
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        match command(&line) {
            Some(Command::Quit) => break Ok(()),
            Some(Command::Help) => {
                println!("{HELP}");
                continue;
            }
            Some(Command::Unknown) => {
                eprintln!("unknown command '{}'; \\help lists the commands", line.trim());
                continue;
            }
            None => {}
        }
        pending.push_str(&line);
        pending.push('\n');
        let split = split_statements(&pending);
        pending = split.rest;
        for statement in split.statements {
            run_one(client, &statement, format);
        }
    };
    if let Some(path) = &history
        && let Err(e) = editor.save_history(path)
    {
        eprintln!("warning: cannot save the history to {}: {e}", path.display());
    }
    result
}

/// Runs one statement and writes its result, or its error to stderr; the server's time
/// goes to stderr too.
fn run_one(client: &mut SqlClient, statement: &str, format: OutputFormat) {
    let mut stdout = std::io::stdout().lock();
    let outcome = client.execute(statement).and_then(|response| {
        write_results(&response, format, &mut stdout, &mut std::io::stderr())?;
        Ok(response.took_ms)
    });
    let _ = stdout.flush();
    match outcome {
        Ok(Some(took)) => eprintln!("Time: {took:.3} ms"),
        Ok(None) => {}
        Err(e) => eprintln!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslash_lines_are_commands() {
        assert_eq!(command("\\q"), Some(Command::Quit));
        assert_eq!(command("  \\quit  "), Some(Command::Quit));
        assert_eq!(command("\\help"), Some(Command::Help));
        assert_eq!(command("\\?"), Some(Command::Help));
        assert_eq!(command("\\x"), Some(Command::Unknown));
        assert_eq!(command("SELECT '\\q';"), None);
    }
}
