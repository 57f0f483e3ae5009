//! The command line: `calamus [serve]`, `calamus sql`, `calamus exec`, `calamus restore`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use calamus_query::{Session, StatementOutput};
use clap::{Args, Parser, Subcommand};
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::client::prompt::run_prompt;
use crate::client::{ClientOptions, OutputFormat, SqlClient, run_sql};
use crate::config::{Config, ConfigFlags};
use crate::database::Database;
use crate::error::AppError;

/// Calamus: a SQL database for realtime, multi-tenant apps.
#[derive(Debug, Parser)]
#[command(name = "calamus", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; without one, `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The flags of `serve`, for `calamus` without a subcommand.
    #[command(flatten)]
    pub serve: ConfigFlags,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Starts the server (the default): config file, then environment, then these flags.
    Serve(ConfigFlags),
    /// Runs SQL on a running server over HTTP, or opens an interactive prompt.
    Sql(SqlArgs),
    /// Runs SQL directly against a data directory (no server), as a user.
    Exec(ExecArgs),
    /// Restores a backup written by `BACKUP DATABASE TO '<path>'` into a new data directory.
    Restore(RestoreArgs),
}

/// The flags of `calamus restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The backup's folder.
    pub backup: PathBuf,
    /// The data directory to restore into: new or empty. Start the server on it afterwards
    /// with the backend the backup names (printed at the end).
    #[arg(long)]
    pub data_dir: PathBuf,
}

/// The flags of `calamus sql`.
#[derive(Debug, Clone, Args)]
pub struct SqlArgs {
    /// The server's URL.
    #[arg(long, env = "CALAMUS_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The user to log in as.
    #[arg(long, env = "CALAMUS_USER", default_value = "root")]
    pub user: String,
    /// The user's password.
    #[arg(
        long,
        env = "CALAMUS_PASSWORD",
        default_value = "",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub password: String,
    /// A Bearer access token to use instead of logging in.
    #[arg(long, env = "CALAMUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The namespace unqualified table names resolve in.
    #[arg(long, env = "CALAMUS_NAMESPACE")]
    pub namespace: Option<String>,
    /// Runs these statements and exits.
    #[arg(short = 'c', long = "command", value_name = "SQL", conflicts_with = "file")]
    pub command: Option<String>,
    /// Runs the statements of this file (sent as one batch; `-` reads standard input) and exits.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How results are written.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

impl SqlArgs {
    /// The client options these flags give.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            url: self.url.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            token: self.token.clone().filter(|t| !t.is_empty()),
            namespace: self.namespace.clone().filter(|n| !n.is_empty()),
        }
    }
}

/// The flags of `calamus exec`: the server's configuration (file, environment, flags)
/// says where the data directory is and which backend holds it.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// The configuration, as `calamus serve` reads it.
    #[command(flatten)]
    pub config: ConfigFlags,
    /// The user to run as (default root).
    #[arg(long, default_value = "root")]
    pub user: String,
    /// The SQL to run.
    #[arg(short = 'c', long)]
    pub command: String,
}

/// Runs a parsed command line; the exit code says whether it succeeded.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        None => serve(&cli.serve),
        Some(Command::Serve(flags)) => serve(&flags),
        Some(Command::Sql(args)) => sql(&args),
        Some(Command::Exec(args)) => exec(&args),
        Some(Command::Restore(args)) => restore(&args),
    }
}

/// Logs to stderr at `level` (a level or an `EnvFilter` directive string).
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| "warn".into());
    // Fails only when a subscriber is already set (a test calling twice): keep that one.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// For the commands other than `serve`: quiet unless `CALAMUS_LOG` says otherwise.
fn init_client_logging() {
    init_logging(&std::env::var("CALAMUS_LOG").unwrap_or_else(|_| "warn".into()));
}

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Server {
            reason: format!("cannot start the async runtime: {e}"),
        })
}

fn failure(error: &AppError) -> ExitCode {
    match error {
        // Already "ERROR <code>: <message>".
        AppError::ServerRejected { .. } => eprintln!("{error}"),
        other => eprintln!("error: {other}"),
    }
    ExitCode::FAILURE
}

fn serve(flags: &ConfigFlags) -> ExitCode {
    let config = match Config::load(flags) {
        Ok(config) => config,
        Err(e) => return failure(&e),
    };
    init_logging(&config.log.level);
    let result = runtime().and_then(|rt| rt.block_on(crate::serve::run(config)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(&e),
    }
}

fn sql(args: &SqlArgs) -> ExitCode {
    init_client_logging();
    let options = args.client_options();
    let batch = match (&args.command, &args.file) {
        (Some(sql), _) => Some(Ok(sql.clone())),
        (None, Some(path)) => Some(read_sql_file(path)),
        (None, None) => None,
    };
    let result = match batch {
        Some(Ok(sql)) => run_sql(&options, &sql, args.format, &mut std::io::stdout().lock()),
        Some(Err(e)) => Err(e),
        None => SqlClient::connect(&options).and_then(|mut client| run_prompt(&mut client, args.format)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(&e),
    }
}

/// The text of a `-f` file; `-` is standard input.
fn read_sql_file(path: &Path) -> Result<String, AppError> {
    let read_error = |source| AppError::ReadFile {
        path: path.display().to_string(),
        source,
    };
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(read_error)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(read_error)
    }
}

fn exec(args: &ExecArgs) -> ExitCode {
    init_client_logging();
    let result = runtime().and_then(|rt| rt.block_on(exec_sql(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(&e),
    }
}

fn restore(args: &RestoreArgs) -> ExitCode {
    init_client_logging();
    match crate::backup::restore(&args.backup, &args.data_dir) {
        Ok(summary) => {
            println!(
                "Restored {} table(s) and {} segment file(s) into {}; start the server with --data-dir {} --storage {}",
                summary.tables,
                summary.segments,
                args.data_dir.display(),
                args.data_dir.display(),
                summary.backend
            );
            ExitCode::SUCCESS
        }
        Err(e) => failure(&e),
    }
}

/// Runs `args.command` in-process and prints each statement's output.
async fn exec_sql(args: &ExecArgs) -> Result<(), AppError> {
    let storage = Config::load(&args.config)?.storage;
    let db = Database::open(storage.backend, &storage.data_dir)?;
    let mut session = if args.user == "root" {
        Session::root()
    } else {
        db.engine.session_for(&args.user).map_err(AppError::Query)?
    };
    let outputs = db
        .engine
        .execute(&mut session, &args.command, &[])
        .await
        .map_err(AppError::Query)?;
    let mut stdout = std::io::stdout().lock();
    for output in outputs {
        match output {
            StatementOutput::Rows { batches, .. } => {
                let table = pretty_format_batches(&batches).map_err(|e| AppError::Query(e.into()))?;
                writeln!(stdout, "{table}")?;
            }
            StatementOutput::Affected { message, .. } => writeln!(stdout, "{message}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::database::StorageBackend;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_is_serve() {
        let cli = parse(&["calamus", "--listen", "0.0.0.0:9000", "--storage", "sled"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(cli.serve.storage.as_deref(), Some("sled"));
        let cli = parse(&["calamus", "serve", "--data-dir", "/tmp/d", "--log-level", "debug"]);
        match cli.command {
            Some(Command::Serve(flags)) => {
                assert_eq!(flags.data_dir.as_deref(), Some("/tmp/d"));
                assert_eq!(flags.log_level.as_deref(), Some("debug"));
            }
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn sql_flags_become_client_options() {
        let cli = parse(&[
            "calamus",
            "sql",
            "--url",
            "http://db:8080",
            "--user",
            "alice",
            "--password",
            "pw",
            "--namespace",
            "chat",
            "--format",
            "csv",
            "-c",
            "SELECT 1",
        ]);
        let Some(Command::Sql(args)) = cli.command else {
            panic!("expected sql");
        };
        assert_eq!(args.command.as_deref(), Some("SELECT 1"));
        assert_eq!(args.format, OutputFormat::Csv);
        let options = args.client_options();
        assert_eq!(options.url, "http://db:8080");
        assert_eq!((options.user.as_str(), options.password.as_str()), ("alice", "pw"));
        assert_eq!(options.namespace.as_deref(), Some("chat"));
        assert!(Cli::try_parse_from(["calamus", "sql", "-c", "SELECT 1", "-f", "x.sql"]).is_err());
    }

    #[test]
    fn restore_needs_a_backup_and_a_data_directory() {
        let cli = parse(&["calamus", "restore", "/backups/monday", "--data-dir", "/srv/calamus"]);
        let Some(Command::Restore(args)) = cli.command else {
            panic!("expected restore");
        };
        assert_eq!(args.backup, PathBuf::from("/backups/monday"));
        assert_eq!(args.data_dir, PathBuf::from("/srv/calamus"));
        assert!(Cli::try_parse_from(["calamus", "restore", "/backups/monday"]).is_err());
    }

    #[test]
    fn exec_keeps_its_flags() {
        let cli = parse(&[
            "calamus",
            "exec",
            "--storage",
            "sled",
            "--user",
            "bob",
            "-c",
            "SELECT 1",
        ]);
        let Some(Command::Exec(args)) = cli.command else {
            panic!("expected exec");
        };
        let config = Config::load_with_env(&args.config, |_| None).unwrap();
        assert_eq!(config.storage.backend, StorageBackend::Sled);
        assert_eq!(args.user, "bob");
        assert_eq!(args.command, "SELECT 1");
    }
}
