use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, AppError> {
    Config::from_toml(text, Path::new("calamus.toml"))
}

/// An environment holding exactly `vars`.
fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let vars: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
    move |name| vars.get(name).cloned()
}

/// The key, origin and reason of a `ConfigValue` error.
fn value_error(result: Result<Config, AppError>) -> (String, String, String) {
    match result {
        Err(AppError::ConfigValue { key, origin, reason }) => (key, origin, reason),
        other => panic!("expected a ConfigValue error, got {other:?}"),
    }
}

#[test]
fn defaults_match_the_documentation() {
    let config = Config::default();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.body_limit_bytes, 10_485_760);
    assert_eq!(config.server.max_connections, 1024);
    assert_eq!(config.server.max_result_rows, None);
    assert!(config.server.metrics_loopback_only);
    assert_eq!(config.storage.backend, StorageBackend::RocksDb);
    assert_eq!(config.storage.data_dir, PathBuf::from("./data"));
    assert_eq!(config.auth.jwt_secret, None);
    assert_eq!(config.auth.root_password, None);
    assert_eq!(config.auth.access_token_ttl_secs, 3600);
    assert_eq!(config.auth.refresh_token_ttl_secs, 604_800);
    assert_eq!(config.auth.login_max_failures, 5);
    assert_eq!(config.log.level, "info");
}

#[test]
fn an_empty_file_is_the_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
    assert_eq!(parse("[server]\n[storage]\n").unwrap(), Config::default());
}

#[test]
fn a_file_sets_what_it_names_and_keeps_the_rest() {
    let config = parse(
        r#"
        [server]
        listen = "0.0.0.0:9000"
        max_result_rows = 5000
        metrics_loopback_only = false
        [storage]
        backend = "sled"
        [auth]
        login_max_failures = 3
        [log]
        level = "info,calamus_query=debug"
        "#,
    )
    .unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(config.server.max_result_rows, Some(5000));
    assert!(!config.server.metrics_loopback_only);
    assert_eq!(config.server.body_limit_bytes, 10_485_760);
    assert_eq!(config.storage.backend, StorageBackend::Sled);
    assert_eq!(config.storage.data_dir, PathBuf::from("./data"));
    assert_eq!(config.auth.login_max_failures, 3);
    assert_eq!(config.log.level, "info,calamus_query=debug");
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("calamus.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:1000\"\n[storage]\ndata_dir = \"/from/file\"\nbackend = \"sled\"\n[log]\nlevel = \"warn\"\n",
    )
    .unwrap();
    let flags = ConfigFlags {
        config: Some(file.clone()),
        ..ConfigFlags::default()
    };

    let from_file = Config::load_with_env(&flags, env(&[])).unwrap();
    assert_eq!(from_file.server.listen.port(), 1000);
    assert_eq!(from_file.storage.data_dir, PathBuf::from("/from/file"));

    let environment = env(&[
        ("CALAMUS_LISTEN", "127.0.0.1:2000"),
        ("CALAMUS_DATA_DIR", "/from/env"),
        ("CALAMUS_LOG", "debug"),
        ("CALAMUS_BODY_LIMIT", "1024"),
        ("CALAMUS_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("CALAMUS_ROOT_PASSWORD", "root-pw"),
    ]);
    let from_env = Config::load_with_env(&flags, &environment).unwrap();
    assert_eq!(from_env.server.listen.port(), 2000);
    assert_eq!(from_env.storage.data_dir, PathBuf::from("/from/env"));
    assert_eq!(from_env.storage.backend, StorageBackend::Sled, "kept from the file");
    assert_eq!(from_env.log.level, "debug");
    assert_eq!(from_env.server.body_limit_bytes, 1024);
    assert_eq!(
        from_env.auth.jwt_secret.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(from_env.auth.root_password.as_deref(), Some("root-pw"));

    let flags = ConfigFlags {
        config: Some(file),
        listen: Some("127.0.0.1:3000".into()),
        data_dir: Some("/from/flag".into()),
        storage: Some("RocksDB".into()),
        log_level: Some("trace".into()),
    };
    let from_flags = Config::load_with_env(&flags, &environment).unwrap();
    assert_eq!(from_flags.server.listen.port(), 3000);
    assert_eq!(from_flags.storage.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(from_flags.storage.backend, StorageBackend::RocksDb);
    assert_eq!(from_flags.log.level, "trace");
    assert_eq!(from_flags.server.body_limit_bytes, 1024, "kept from the environment");
}

#[test]
fn the_file_may_be_named_by_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("from-env.toml");
    std::fs::write(&file, "[server]\nmax_connections = 7\n").unwrap();
    let file = file.to_str().unwrap();
    let config = Config::load_with_env(&ConfigFlags::default(), env(&[("CALAMUS_CONFIG", file)])).unwrap();
    assert_eq!(config.server.max_connections, 7);
    let flags = ConfigFlags {
        config: Some(PathBuf::from("/nonexistent/flag.toml")),
        ..ConfigFlags::default()
    };
    match Config::load_with_env(&flags, env(&[("CALAMUS_CONFIG", file)])) {
        Err(AppError::ConfigFile { path, .. }) => assert_eq!(path, "/nonexistent/flag.toml", "the flag wins"),
        other => panic!("expected the flag's file to be read, got {other:?}"),
    }
}

#[test]
fn without_a_file_environment_and_flags_apply_over_defaults() {
    let flags = ConfigFlags {
        storage: Some("sled".into()),
        ..ConfigFlags::default()
    };
    let config = Config::load_with_env(
        &flags,
        env(&[("CALAMUS_STORAGE", "rocksdb"), ("CALAMUS_LISTEN", "[::1]:8081")]),
    )
    .unwrap();
    assert_eq!(config.storage.backend, StorageBackend::Sled);
    assert_eq!(config.server.listen.to_string(), "[::1]:8081");
}

#[test]
fn empty_environment_variables_are_ignored() {
    let config = Config::load_with_env(
        &ConfigFlags::default(),
        env(&[("CALAMUS_LISTEN", ""), ("CALAMUS_JWT_SECRET", "")]),
    )
    .unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let (key, origin, reason) = value_error(parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n"));
    assert_eq!(key, "server.lisen");
    assert!(origin.starts_with("config file 'calamus.toml'"), "{origin}");
    assert!(origin.contains("line 3"), "{origin}");
    assert!(reason.contains("unknown field `lisen`"), "{reason}");
    assert!(reason.contains("listen"), "the reason lists the known keys: {reason}");
}

#[test]
fn an_unknown_section_is_an_error_naming_it() {
    let (key, _, reason) = value_error(parse("[sever]\nlisten = \"127.0.0.1:1\"\n"));
    assert_eq!(key, "sever");
    assert!(reason.contains("server"), "{reason}");
    let (key, _, _) = value_error(parse("verbose = true\n"));
    assert_eq!(key, "verbose");
}

#[test]
fn a_value_of_the_wrong_type_names_key_and_line() {
    let (key, origin, reason) = value_error(parse("[server]\n\nmax_connections = \"many\"\n"));
    assert_eq!(key, "server.max_connections");
    assert!(origin.contains("line 3"), "{origin}");
    assert_eq!(
        reason,
        "invalid type: string \"many\", expected a whole number (0 or more)"
    );

    let (key, _, _) = value_error(parse("[server]\nbody_limit_bytes = -1\n"));
    assert_eq!(key, "server.body_limit_bytes");
}

#[test]
fn a_bad_backend_names_its_source() {
    let (key, origin, reason) = value_error(parse("[storage]\nbackend = \"leveldb\"\n"));
    assert_eq!(key, "storage.backend");
    assert!(origin.starts_with("config file 'calamus.toml'"), "{origin}");
    assert!(reason.contains("'leveldb'") && reason.contains("sled"), "{reason}");

    let (key, origin, _) = value_error(Config::load_with_env(
        &ConfigFlags::default(),
        env(&[("CALAMUS_STORAGE", "leveldb")]),
    ));
    assert_eq!(key, "storage.backend");
    assert_eq!(origin, "environment variable CALAMUS_STORAGE");

    let flags = ConfigFlags {
        storage: Some("leveldb".into()),
        ..ConfigFlags::default()
    };
    let (key, origin, _) = value_error(Config::load_with_env(&flags, env(&[])));
    assert_eq!(key, "storage.backend");
    assert_eq!(origin, "flag --storage");
}

#[test]
fn a_bad_listen_address_names_its_source() {
    let (key, origin, reason) = value_error(Config::load_with_env(
        &ConfigFlags::default(),
        env(&[("CALAMUS_LISTEN", "localhost")]),
    ));
    assert_eq!(
        (key.as_str(), origin.as_str()),
        ("server.listen", "environment variable CALAMUS_LISTEN")
    );
    assert!(reason.contains("'localhost'"), "{reason}");
    let (key, _, _) = value_error(parse("[server]\nlisten = \"nowhere\"\n"));
    assert_eq!(key, "server.listen");
    let (_, _, reason) = value_error(Config::load_with_env(
        &ConfigFlags::default(),
        env(&[("CALAMUS_BODY_LIMIT", "10MB")]),
    ));
    assert!(reason.contains("'10MB'"), "{reason}");
}

#[test]
fn a_short_jwt_secret_is_refused_without_echoing_it() {
    let (key, origin, reason) = value_error(Config::load_with_env(
        &ConfigFlags::default(),
        env(&[("CALAMUS_JWT_SECRET", "hunter2")]),
    ));
    assert_eq!(key, "auth.jwt_secret");
    assert_eq!(origin, "environment variable CALAMUS_JWT_SECRET");
    assert!(!reason.contains("hunter2"), "{reason}");
    let (key, origin, _) = value_error(parse("[auth]\njwt_secret = \"hunter2\"\n"));
    assert_eq!(key, "auth.jwt_secret");
    assert_eq!(origin, "config file 'calamus.toml'");
}

#[test]
fn zero_limits_and_inconsistent_lifetimes_are_refused() {
    for (text, expected) in [
        ("[server]\nmax_connections = 0", "server.max_connections"),
        ("[server]\nbody_limit_bytes = 0", "server.body_limit_bytes"),
        ("[server]\nmax_result_rows = 0", "server.max_result_rows"),
        ("[auth]\naccess_token_ttl_secs = 0", "auth.access_token_ttl_secs"),
        ("[auth]\nlogin_max_failures = 0", "auth.login_max_failures"),
        ("[auth]\nroot_password = \"\"", "auth.root_password"),
        ("[storage]\ndata_dir = \"\"", "storage.data_dir"),
        (
            "[auth]\naccess_token_ttl_secs = 7200\nrefresh_token_ttl_secs = 3600",
            "auth.refresh_token_ttl_secs",
        ),
    ] {
        let (key, _, _) = value_error(parse(text));
        assert_eq!(key, expected, "{text}");
    }
}

#[test]
fn log_levels_are_checked() {
    for good in ["info", "WARN", "off", "info,calamus_query=debug", "calamus=trace"] {
        assert!(parse(&format!("[log]\nlevel = \"{good}\"")).is_ok(), "{good}");
    }
    let flags = ConfigFlags {
        log_level: Some("verbose".into()),
        ..ConfigFlags::default()
    };
    let (key, origin, reason) = value_error(Config::load_with_env(&flags, env(&[])));
    assert_eq!((key.as_str(), origin.as_str()), ("log.level", "flag --log-level"));
    assert!(reason.contains("'verbose'"), "{reason}");
}

#[test]
fn a_syntax_error_names_file_and_line() {
    match parse("[server]\nlisten = \n") {
        Err(AppError::ConfigFile { path, reason }) => {
            assert_eq!(path, "calamus.toml");
            assert!(reason.starts_with("line 2"), "{reason}");
        }
        other => panic!("expected a ConfigFile error, got {other:?}"),
    }
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let flags = ConfigFlags {
        config: Some(PathBuf::from("/nonexistent/calamus.toml")),
        ..ConfigFlags::default()
    };
    match Config::load_with_env(&flags, env(&[])) {
        Err(AppError::ConfigFile { path, .. }) => assert_eq!(path, "/nonexistent/calamus.toml"),
        other => panic!("expected a ConfigFile error, got {other:?}"),
    }
}

#[test]
fn debug_output_hides_secrets() {
    let mut config = Config::default();
    config.auth.jwt_secret = Some("0123456789abcdef0123456789abcdef-secret".into());
    config.auth.root_password = Some("root-password".into());
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("secret\"") && !shown.contains("root-password"),
        "{shown}"
    );
    assert!(shown.contains("<hidden>"), "{shown}");
}

#[test]
fn the_example_file_is_the_defaults() {
    let text = include_str!("../../../../calamus.example.toml");
    assert_eq!(parse(text).unwrap(), Config::default());
}

#[test]
fn the_documented_example_parses() {
    let doc = include_str!("../../../../docs/config.md");
    let start = doc.find("```toml\n").expect("docs/config.md has a ```toml example") + "```toml\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let config = parse(&doc[start..end]).unwrap();
    assert_eq!(config.storage.backend, StorageBackend::Sled);
    assert_eq!(config.server.max_result_rows, Some(100_000));
}
