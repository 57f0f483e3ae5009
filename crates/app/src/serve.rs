//! Running the server: open the data directory, settle the secrets, serve HTTP until
//! SIGINT or SIGTERM, then finish the requests in flight and make the store durable.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use calamus_api_http::{ApiServer, HttpConfig};
use calamus_domain::UserId;
use calamus_domain::model::verify_password;
use calamus_query::jobs;
use calamus_query::statement::UserChange;
use datafusion::sql::sqlparser::ast::Ident;
use tokio::sync::watch;

use crate::config::{Config, MIN_JWT_SECRET_BYTES};
use crate::database::{Database, StoreLayer};
use crate::error::AppError;

/// How often expired STREAM rows are removed (TTLs are whole seconds).
const STREAM_EVICTION_TICK: Duration = Duration::from_secs(1);

/// How often tables' flush policies are checked.
const FLUSH_POLICY_TICK: Duration = Duration::from_secs(1);

/// The file in the data directory keeping the token secret generated at the first start.
const JWT_SECRET_FILE: &str = "jwt.secret";

/// Runs the server with `config` until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), AppError> {
    run_until(config, shutdown_signal(), |_| {}).await
}

/// Runs the server until `shutdown` completes; `on_listening` is told the bound address
/// (port 0 in the config picks a free port: tests use this).
pub async fn run_until(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), AppError> {
    run_layered(config, Box::new(|store| store), shutdown, on_listening).await
}

/// [`run_until`], with `layer` over the store (see [`StoreLayer`]).
pub async fn run_layered(
    config: Config,
    layer: StoreLayer,
    shutdown: impl Future<Output = ()>,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), AppError> {
    let database = Database::open_layered(&config.storage, layer)?;
    let interrupted = jobs::recover_interrupted(database.engine.catalog().as_ref()).await?;
    if interrupted > 0 {
        tracing::warn!(interrupted, "jobs left running by the last run are marked failed");
    }
    let leftovers = calamus_query::cold::remove_interrupted_flush_files(&database.engine)?;
    if leftovers > 0 {
        tracing::warn!(leftovers, "files of flushes the last run did not finish were removed");
    }
    let jwt_secret = match &config.auth.jwt_secret {
        Some(secret) => secret.as_bytes().to_vec(),
        None => stored_jwt_secret(&config.storage.data_dir)?,
    };
    if let Some(password) = &config.auth.root_password {
        set_root_password(&database, password).await?;
    }
    let http = http_config(&config, jwt_secret);
    let server = ApiServer::bind(Arc::clone(&database.engine), http)
        .await
        .map_err(|e| AppError::Server {
            reason: format!(
                "cannot listen on {} (server.listen): {e}; is another server running there? \
                 choose another address with --listen or CALAMUS_LISTEN",
                config.server.listen
            ),
        })?;
    let address = server
        .local_addr()
        .map_err(|e| AppError::Server { reason: e.to_string() })?;
    tracing::info!(
        %address,
        backend = %database.backend,
        data_dir = %database.data_dir.display(),
        "Calamus is listening"
    );
    on_listening(address);
    let (stop_jobs, jobs_stopping) = watch::channel(false);
    let eviction = tokio::spawn(jobs::stream_eviction::run(
        Arc::clone(database.engine.catalog()),
        Arc::clone(database.engine.rows()),
        STREAM_EVICTION_TICK,
        jobs_stopping,
    ));
    let flushes = tokio::spawn(jobs::flush_policy::run(
        Arc::clone(&database.engine),
        Arc::clone(&database.hot_rows),
        FLUSH_POLICY_TICK,
        stop_jobs.subscribe(),
    ));
    let cleanup = tokio::spawn(jobs::deleted_cleanup::run(
        Arc::clone(&database.engine),
        jobs::deleted_cleanup::CLEANUP_EVERY,
        stop_jobs.subscribe(),
    ));
    let pruning = tokio::spawn(prune_jobs(
        Arc::clone(database.engine.catalog()),
        Duration::from_secs(config.jobs.retention_hours.saturating_mul(3600)),
        stop_jobs.subscribe(),
    ));
    server.serve(shutdown).await;
    // The jobs stop; the flush job first flushes every table that has a policy.
    let _ = stop_jobs.send(true);
    if let Err(error) = eviction.await {
        tracing::error!(%error, "the stream eviction job ended abnormally");
    }
    if let Err(error) = flushes.await {
        tracing::error!(%error, "the flush job ended abnormally");
    }
    let _ = pruning.await;
    let _ = cleanup.await;
    database.kv.sync()?;
    tracing::info!("store synced; stopped");
    Ok(())
}

/// Removes the rows of jobs finished longer than `retention` ago: at start, then hourly.
async fn prune_jobs(catalog: Arc<dyn calamus_domain::Catalog>, retention: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match jobs::prune_finished(catalog.as_ref(), retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "old job rows removed from system.jobs"),
            Err(error) => tracing::warn!(%error, "pruning old job rows failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(JOB_PRUNE_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// How often old job rows are pruned.
const JOB_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The server's HTTP settings from the configuration.
fn http_config(config: &Config, jwt_secret: Vec<u8>) -> HttpConfig {
    let mut http = HttpConfig::new(config.server.listen, jwt_secret);
    http.body_limit_bytes = config.server.body_limit_bytes;
    http.max_connections = config.server.max_connections;
    http.max_result_rows = config.server.max_result_rows;
    http.metrics_loopback_only = config.server.metrics_loopback_only;
    http.access_token_ttl = Duration::from_secs(config.auth.access_token_ttl_secs);
    http.refresh_token_ttl = Duration::from_secs(config.auth.refresh_token_ttl_secs);
    http.login_max_failures = config.auth.login_max_failures;
    http.rate_limit_per_user = config.server.rate_limit_per_user;
    http.live_queue_capacity = config.server.live_queue_capacity;
    http.live_max_subscriptions = config.server.live_max_subscriptions;
    http.max_statements_per_request = config.server.max_statements_per_request;
    http
}

/// The token secret kept in the data directory, generated (256 random bits) on first use.
fn stored_jwt_secret(data_dir: &Path) -> Result<Vec<u8>, AppError> {
    let path = data_dir.join(JWT_SECRET_FILE);
    let failure = |e: std::io::Error| AppError::DataDirectory {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= MIN_JWT_SECRET_BYTES => return Ok(secret.trim().as_bytes().to_vec()),
        Ok(secret) if !secret.trim().is_empty() => {
            return Err(AppError::DataDirectory {
                path: path.display().to_string(),
                reason: format!(
                    "the token secret in it is {} bytes long, shorter than {MIN_JWT_SECRET_BYTES}: delete the file to \
                     have a new one generated (tokens signed with the old one stop working)",
                    secret.trim().len()
                ),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failure(e)),
    }
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let temporary = data_dir.join(format!("{JWT_SECRET_FILE}.tmp"));
    write_private(&temporary, secret.as_bytes()).map_err(failure)?;
    std::fs::rename(&temporary, &path).map_err(failure)?;
    Ok(secret.into_bytes())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes `password` root's password (as `ALTER USER root SET PASSWORD` does), unless it
/// already is.
async fn set_root_password(database: &Database, password: &str) -> Result<(), AppError> {
    let engine = &database.engine;
    let current = engine
        .catalog()
        .snapshot()
        .users
        .get(&UserId::root())
        .and_then(|root| root.password_hash.clone());
    if let Some(hash) = current
        && verify_password(password, &hash)?
    {
        return Ok(());
    }
    let change = UserChange::Password(password.to_owned());
    calamus_query::ddl::user::alter(engine, &Ident::new(UserId::root().as_str()), change)
        .await
        .map_err(AppError::Query)?;
    tracing::info!("root's password set from the configuration");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_secret_is_generated_once_and_a_short_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = stored_jwt_secret(dir.path()).unwrap();
        assert_eq!(first.len(), 64, "256 bits as hex");
        assert_eq!(stored_jwt_secret(dir.path()).unwrap(), first, "kept across starts");

        std::fs::write(dir.path().join(JWT_SECRET_FILE), "short").unwrap();
        let error = stored_jwt_secret(dir.path()).unwrap_err().to_string();
        assert!(error.contains("5 bytes long"), "{error}");

        std::fs::write(dir.path().join(JWT_SECRET_FILE), "\n").unwrap();
        assert_eq!(
            stored_jwt_secret(dir.path()).unwrap().len(),
            64,
            "an empty file is replaced"
        );
    }
}
