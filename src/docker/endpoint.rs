//! Which daemon to talk to, decided as the docker CLI decides it (SPEC §1): `--context`,
//! else `DOCKER_HOST`, else `DOCKER_CONTEXT`, else the `currentContext` of
//! `$DOCKER_CONFIG/config.json`, else the local socket. A context's endpoint and TLS files
//! are read from the CLI's own store (`contexts/meta/` and `contexts/tls/`, each context in a
//! folder named by the sha256 of its name).

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::DockerError;

/// The local socket, when nothing names another daemon.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the endpoint came from, for every message that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--context NAME`.
    Flag(String),
    /// The `DOCKER_HOST` variable.
    DockerHost,
    /// The `DOCKER_CONTEXT` variable.
    DockerContext(String),
    /// `currentContext` in config.json (`docker context use`).
    CurrentContext { name: String, config: PathBuf },
    /// Nothing set: the local socket.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(n) => write!(f, "context {n}, from --context"),
            Origin::DockerHost => f.write_str("from DOCKER_HOST"),
            Origin::DockerContext(n) => write!(f, "context {n}, from DOCKER_CONTEXT"),
            Origin::CurrentContext { name, config } => {
                write!(f, "context {name}, the current context in {}", config.display())
            }
            Origin::Default => {
                f.write_str("the default socket: no --context, DOCKER_HOST, DOCKER_CONTEXT or current context")
            }
        }
    }
}

/// TLS material for a tcp endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The daemon to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix://…`, `tcp://…`, `ssh://…`.
    pub host: String,
    pub tls: Option<Tls>,
    pub origin: Origin,
}

/// The CLI's configuration folder: `$DOCKER_CONFIG`, else `~/.docker`.
fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env("HOME").unwrap_or_else(|| "/root".into())).join(".docker"))
}

/// `cert.pem`, `key.pem` and `ca.pem` of a folder, when all three are there.
fn tls_in(dir: &Path) -> Option<Tls> {
    let tls = Tls { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    (tls.ca.is_file() && tls.cert.is_file() && tls.key.is_file()).then_some(tls)
}

/// Decides the endpoint. `flag` is `--context`; `env` reads the environment.
///
/// Errors: a named context that is not in the store, or whose metadata cannot be read; a
/// `DOCKER_TLS_VERIFY` without the three certificate files. Each names the context, where
/// its name came from, and the store.
pub fn resolve(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Endpoint, DockerError> {
    let config = config_dir(env);
    let named = match (flag, env("DOCKER_HOST"), env("DOCKER_CONTEXT")) {
        (Some(n), _, _) => Some((n.to_string(), Origin::Flag(n.to_string()))),
        (None, Some(_), _) => None,
        (None, None, Some(n)) => Some((n.clone(), Origin::DockerContext(n))),
        (None, None, None) => current_context(&config)
            .map(|n| (n.clone(), Origin::CurrentContext { name: n, config: config.join("config.json") })),
    };
    match named {
        Some((name, origin)) if name != "default" => from_store(&config, &name, origin),
        Some((_, origin)) => plain(env, origin),
        None if env("DOCKER_HOST").is_some() => plain(env, Origin::DockerHost),
        None => plain(env, Origin::Default),
    }
}

/// The `default` context: `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`) or
/// the local socket, also when it is named (`--context default`, `DOCKER_CONTEXT=default`,
/// `docker context use default`): the docker CLI's default context is the environment's.
fn plain(env: &dyn Fn(&str) -> Option<String>, origin: Origin) -> Result<Endpoint, DockerError> {
    let from_env = env("DOCKER_HOST").is_some();
    let host = env("DOCKER_HOST").unwrap_or_else(|| DEFAULT_HOST.to_string());
    let wants_tls = host.starts_with("https://") || (from_env && env("DOCKER_TLS_VERIFY").is_some());
    let tls = if wants_tls {
        let dir = env("DOCKER_CERT_PATH").map(PathBuf::from).unwrap_or_else(|| config_dir(env));
        Some(tls_in(&dir).ok_or_else(|| DockerError::Unreachable {
            address: format!("{host} ({origin})"),
            reason: format!("TLS is asked for, but {} lacks ca.pem, cert.pem or key.pem", dir.display()),
        })?)
    } else {
        None
    };
    Ok(Endpoint { host, tls, origin })
}

/// `currentContext` of config.json, when set.
fn current_context(config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("currentContext").and_then(serde_json::Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A context of the CLI's store: its docker endpoint and its TLS files.
fn from_store(config: &Path, name: &str, origin: Origin) -> Result<Endpoint, DockerError> {
    let id = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    let meta = config.join("contexts").join("meta").join(&id).join("meta.json");
    let unknown =
        |why: String| DockerError::UnknownContext { name: name.to_string(), origin: origin.to_string(), reason: why };
    let text = std::fs::read_to_string(&meta).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => unknown(format!(
            "it is not in {} (`docker context ls` lists the contexts)",
            config.join("contexts").display()
        )),
        _ => unknown(format!("{}: {e}", meta.display())),
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| unknown(format!("{}: {e}", meta.display())))?;
    let docker = &v["Endpoints"]["docker"];
    let host = docker["Host"]
        .as_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| unknown(format!("{} has no docker endpoint", meta.display())))?
        .to_string();
    if docker["SkipTLSVerify"].as_bool() == Some(true) {
        return Err(unknown("it skips TLS verification, which unroot does not do".into()));
    }
    let tls_dir = config.join("contexts").join("tls").join(&id).join("docker");
    let tls = tls_in(&tls_dir);
    let partial = ["ca.pem", "cert.pem", "key.pem"].iter().any(|f| tls_dir.join(f).is_file());
    if tls.is_none() && partial {
        return Err(unknown(format!(
            "{} lacks ca.pem, cert.pem or key.pem; unroot needs all three (a client certificate, its key \
             and the CA)",
            tls_dir.display()
        )));
    }
    Ok(Endpoint { host, tls, origin })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A store with contexts `remote` (tcp with TLS files) and `local` (a socket).
    fn store() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, host, tls) in [("remote", "tcp://10.0.0.9:2376", true), ("local", "unix:///run/other.sock", false)] {
            let id = hex::encode(sha2::Sha256::digest(name.as_bytes()));
            let meta = dir.path().join("contexts/meta").join(&id);
            std::fs::create_dir_all(&meta).unwrap();
            let body = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
            std::fs::write(meta.join("meta.json"), body.to_string()).unwrap();
            if tls {
                let t = dir.path().join("contexts/tls").join(&id).join("docker");
                std::fs::create_dir_all(&t).unwrap();
                for f in ["ca.pem", "cert.pem", "key.pem"] {
                    std::fs::write(t.join(f), "x").unwrap();
                }
            }
        }
        dir
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn the_order_is_the_docker_clis() {
        let s = store();
        let cfg = s.path().to_str().unwrap();
        std::fs::write(s.path().join("config.json"), r#"{"currentContext": "local"}"#).unwrap();
        let r = |flag: Option<&str>, env: &[(&str, &str)]| {
            let mut all = vec![("DOCKER_CONFIG", cfg)];
            all.extend_from_slice(env);
            resolve(flag, &env_of(&all)).unwrap()
        };
        let host = [("DOCKER_HOST", "tcp://127.0.0.1:2375"), ("DOCKER_CONTEXT", "remote")];
        // --context wins over everything.
        let e = r(Some("remote"), &host);
        assert_eq!((e.host.as_str(), e.origin.clone()), ("tcp://10.0.0.9:2376", Origin::Flag("remote".into())));
        assert!(e.tls.is_some(), "the context's TLS files");
        // Then DOCKER_HOST, over DOCKER_CONTEXT and the current context.
        let e = r(None, &host);
        assert_eq!((e.host.as_str(), e.origin, e.tls), ("tcp://127.0.0.1:2375", Origin::DockerHost, None));
        // Then DOCKER_CONTEXT.
        let e = r(None, &[("DOCKER_CONTEXT", "remote")]);
        assert_eq!(e.origin, Origin::DockerContext("remote".into()));
        // Then config.json's currentContext (`docker context use`).
        let e = r(None, &[]);
        assert_eq!(e.host, "unix:///run/other.sock");
        assert!(matches!(e.origin, Origin::CurrentContext { ref name, .. } if name == "local"));
        assert_eq!(e.tls, None);
        // `default` is the socket (or DOCKER_HOST) whatever named it.
        let e = r(Some("default"), &[]);
        assert_eq!((e.host.as_str(), e.origin), (DEFAULT_HOST, Origin::Flag("default".into())));
    }

    #[test]
    fn the_default_context_follows_docker_host_as_the_clis_does() {
        let s = store();
        let cfg = s.path().to_str().unwrap();
        let env = env_of(&[("DOCKER_CONFIG", cfg), ("DOCKER_HOST", "tcp://127.0.0.1:2375")]);
        let e = resolve(Some("default"), &env).unwrap();
        assert_eq!((e.host.as_str(), e.origin, e.tls), ("tcp://127.0.0.1:2375", Origin::Flag("default".into()), None));
        let env =
            env_of(&[("DOCKER_CONFIG", cfg), ("DOCKER_HOST", "tcp://127.0.0.1:2375"), ("DOCKER_CONTEXT", "default")]);
        assert_eq!(resolve(None, &env).unwrap().host, "tcp://127.0.0.1:2375");
        // With TLS asked for, the certificates of DOCKER_CERT_PATH.
        let env = env_of(&[
            ("DOCKER_CONFIG", cfg),
            ("DOCKER_HOST", "tcp://127.0.0.1:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", cfg),
        ]);
        let e = resolve(Some("default"), &env).unwrap_err().to_string();
        assert!(e.contains("tcp://127.0.0.1:2376") && e.contains("lacks ca.pem"), "{e}");
    }

    #[test]
    fn nothing_set_is_the_local_socket() {
        let empty = tempfile::tempdir().unwrap();
        let e = resolve(None, &env_of(&[("DOCKER_CONFIG", empty.path().to_str().unwrap())])).unwrap();
        assert_eq!((e.host.as_str(), e.origin), (DEFAULT_HOST, Origin::Default));
    }

    #[test]
    fn an_unknown_context_is_named_with_its_origin() {
        let s = store();
        let env = env_of(&[("DOCKER_CONFIG", s.path().to_str().unwrap()), ("DOCKER_CONTEXT", "prod")]);
        let e = resolve(None, &env).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("\"prod\"") && text.contains("from DOCKER_CONTEXT") && text.contains("docker context ls"),
            "{text}"
        );
        let e = resolve(Some("nope"), &env).unwrap_err().to_string();
        assert!(e.contains("\"nope\"") && e.contains("from --context"), "{e}");
    }

    #[test]
    fn tls_verify_without_certificates_says_where_it_looked() {
        let empty = tempfile::tempdir().unwrap();
        let env = env_of(&[
            ("DOCKER_HOST", "tcp://10.0.0.9:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", empty.path().to_str().unwrap()),
        ]);
        let e = resolve(None, &env).unwrap_err().to_string();
        assert!(e.contains("tcp://10.0.0.9:2376 (from DOCKER_HOST)") && e.contains("lacks ca.pem"), "{e}");
    }

    #[test]
    fn a_context_with_only_a_ca_is_refused_naming_what_lacks() {
        let s = store();
        let id = hex::encode(sha2::Sha256::digest(b"remote"));
        std::fs::remove_file(s.path().join("contexts/tls").join(&id).join("docker/key.pem")).unwrap();
        let env = env_of(&[("DOCKER_CONFIG", s.path().to_str().unwrap())]);
        let e = resolve(Some("remote"), &env).unwrap_err().to_string();
        assert!(e.contains("\"remote\"") && e.contains("needs all three"), "{e}");
    }
}
