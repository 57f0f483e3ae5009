//! The `calamus` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use calamus::{Database, StorageBackend};
use calamus_query::{Session, StatementOutput};
use clap::{Parser, Subcommand};
use datafusion::arrow::util::pretty::pretty_format_batches;

/// Calamus: a SQL database for realtime, multi-tenant apps.
#[derive(Debug, Parser)]
#[command(name = "calamus", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs SQL directly against a data directory (no server), as a user.
    Exec {
        /// The data directory.
        #[arg(long, env = "CALAMUS_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The storage backend: rocksdb or sled.
        #[arg(long, env = "CALAMUS_STORAGE", default_value = "rocksdb")]
        storage: StorageBackend,
        /// The user to run as (default root).
        #[arg(long, default_value = "root")]
        user: String,
        /// The SQL to run.
        #[arg(short = 'c', long)]
        command: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Exec {
            data_dir,
            storage,
            user,
            command,
        } => runtime.block_on(exec(&data_dir, storage, &user, &command)),
    }
}

async fn exec(data_dir: &std::path::Path, storage: StorageBackend, user: &str, sql: &str) -> ExitCode {
    let db = match Database::open(storage, data_dir) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut session = if user == "root" {
        Session::root()
    } else {
        match db.engine.session_for(user) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    match db.engine.execute(&mut session, sql, &[]).await {
        Ok(outputs) => {
            for output in outputs {
                match output {
                    StatementOutput::Rows { batches, .. } => match pretty_format_batches(&batches) {
                        Ok(table) => println!("{table}"),
                        Err(e) => eprintln!("error: {e}"),
                    },
                    StatementOutput::Affected { message, .. } => println!("{message}"),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
