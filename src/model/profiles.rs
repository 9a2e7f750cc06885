//! Image profiles: what an official image expects, as data. The built-in table
//! (`profiles.toml`, compiled in) names per image the user it creates for itself, its uid:gid
//! per variant, its data paths, an exec probe, its kind (which day it belongs to) and its
//! known gotchas; `--profiles FILE` extends or overrides it. `unroot init` decides from it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::owner::Owner;

/// The built-in profiles, each with the source of its facts in a comment beside it.
const BUILTIN: &str = include_str!("profiles.toml");

/// What a service is, for the order of the days: stateless services first, model servers
/// last (the order of the variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Stateless,
    CacheQueue,
    Database,
    SearchVector,
    ModelServer,
    /// No profile and no evidence of what it is: a day after the known kinds.
    Unknown,
}

impl Kind {
    /// How the plan's `[days]` titles a day of this kind.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Stateless => "stateless services",
            Kind::CacheQueue => "caches and queues",
            Kind::Database => "databases",
            Kind::SearchVector => "search and vector stores",
            Kind::ModelServer => "model servers",
            Kind::Unknown => "services of no known kind",
        }
    }
}

/// The flavour of an image's base, from its `/etc/os-release`: official images often come
/// in a Debian and an Alpine variant whose users have different ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    Debian,
    Alpine,
    /// Anything else (or no `/etc/os-release`).
    Other,
}

impl Variant {
    /// `ID=debian` or `ubuntu` (or an `ID_LIKE` naming debian) is Debian; `ID=alpine` is Alpine.
    pub fn from_os_release(text: &str) -> Variant {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_ascii_lowercase())
                .unwrap_or_default()
        };
        let (id, like) = (field("ID"), field("ID_LIKE"));
        match id.as_str() {
            "debian" | "ubuntu" => Variant::Debian,
            "alpine" => Variant::Alpine,
            _ if like.split_whitespace().any(|l| l == "debian" || l == "ubuntu") => Variant::Debian,
            _ => Variant::Other,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variant::Debian => "debian",
            Variant::Alpine => "alpine",
            Variant::Other => "other",
        })
    }
}

/// What one image expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The table's key (`[profile.KEY]`).
    pub key: String,
    /// The last components of the repositories it matches (default: the key).
    pub images: Vec<String>,
    /// The user the image creates for itself, by name (looked up in the image's /etc/passwd).
    pub user: Option<String>,
    /// Its uid:gid per variant, used when the image's /etc/passwd lacks the name.
    pub ids: BTreeMap<Variant, Owner>,
    pub kind: Kind,
    /// Where the image keeps its data (absolute paths in the container).
    pub data: Vec<String>,
    /// An exec probe for the health gate; used when its binary is in the image.
    pub probe: Vec<String>,
    /// HOME for the user when the image's own is `/root` or missing.
    pub home: Option<String>,
    /// Runtime paths the image writes at its start as root (temp and cache directories, the
    /// pid file's directory) that its user cannot: each one the image has gets a `tmpfs`.
    /// Paths of every layout the image comes in may be listed; those an image lacks are
    /// skipped.
    pub tmpfs: Vec<String>,
    /// Paths the server must be able to write at its start (whether the image has them or
    /// not): one no mount covers gets a tmpfs, whose contents do not survive a restart.
    pub writable: Vec<String>,
    /// Files the server writes in a directory of the image its user cannot write, where only
    /// a mount helps (a tmpfs cannot be a file): without one, the service cannot start as
    /// non-root, and init gives it a day of its own with the reason.
    pub needs_mount: Vec<String>,
    /// Environment the plan sets for the image to run as non-root (never a secret).
    pub env: BTreeMap<String, String>,
    /// Known gotchas, written as comments into a generated plan.
    pub gotchas: Vec<String>,
    /// Where the facts come from (the image's Dockerfile, entrypoint or documentation).
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    profile: BTreeMap<String, RawProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    images: Vec<String>,
    user: Option<String>,
    #[serde(default)]
    ids: BTreeMap<Variant, String>,
    kind: Kind,
    #[serde(default)]
    data: Vec<String>,
    #[serde(default)]
    probe: Vec<String>,
    home: Option<String>,
    #[serde(default)]
    tmpfs: Vec<String>,
    #[serde(default)]
    writable: Vec<String>,
    #[serde(default)]
    needs_mount: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    gotchas: Vec<String>,
    source: String,
}

/// A profiles file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ProfileError {
    pub file: String,
    pub message: String,
}

/// The profiles in force: the built-in table, extended or overridden by the operator's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles {
    by_key: BTreeMap<String, Profile>,
}

impl Profiles {
    /// The table compiled into unroot.
    ///
    /// Panics: never for a release (a unit test parses the table).
    pub fn builtin() -> Profiles {
        Profiles::parse("profiles.toml (built in)", BUILTIN).expect("the built-in profiles parse")
    }

    /// Parses a profiles file (`[profile.KEY]` tables).
    ///
    /// Errors: TOML syntax, an unknown key or kind, a `uid:gid` that is not two numbers, a
    /// data path that is not absolute, an empty probe command; with the line where the TOML
    /// parser can tell it.
    pub fn parse(file: &str, text: &str) -> Result<Profiles, ProfileError> {
        let err = |message: String| ProfileError { file: file.to_string(), message };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
            err(match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        let mut by_key = BTreeMap::new();
        for (key, p) in raw.profile {
            let mut ids = BTreeMap::new();
            for (variant, text) in p.ids {
                let owner =
                    text.parse().map_err(|_| err(format!("profile {key}: ids.{variant} = {text:?} is not uid:gid")))?;
                ids.insert(variant, owner);
            }
            if let Some(bad) = p.data.iter().find(|d| !d.starts_with('/')) {
                return Err(err(format!("profile {key}: data path {bad:?} is not absolute")));
            }
            if let Some(bad) = p
                .tmpfs
                .iter()
                .chain(&p.writable)
                .chain(&p.needs_mount)
                .find(|d| !d.starts_with('/') || d.trim_end_matches('/').is_empty())
            {
                return Err(err(format!("profile {key}: tmpfs path {bad:?} is not an absolute path below /")));
            }
            if let Some(bad) = p.env.keys().find(|k| k.is_empty() || k.contains('=')) {
                return Err(err(format!("profile {key}: env key {bad:?} is not a variable name")));
            }
            if p.probe.first().is_some_and(|c| c.is_empty()) {
                return Err(err(format!("profile {key}: the probe's command is empty")));
            }
            let images = if p.images.is_empty() { vec![key.clone()] } else { p.images };
            let profile = Profile {
                key: key.clone(),
                images,
                user: p.user,
                ids,
                kind: p.kind,
                data: p.data,
                probe: p.probe,
                home: p.home,
                tmpfs: p.tmpfs,
                writable: p.writable,
                needs_mount: p.needs_mount,
                env: p.env,
                gotchas: p.gotchas,
                source: p.source,
            };
            by_key.insert(key, profile);
        }
        Ok(Profiles { by_key })
    }

    /// Adds `other`'s profiles; one with the key of an existing profile replaces it.
    pub fn extend(&mut self, other: Profiles) {
        self.by_key.extend(other.by_key);
    }

    /// The profile of an image reference, matched by the last component of its repository
    /// (`redis`, `library/redis:7` and `registry.example:5000/team/redis@sha256:…` alike).
    pub fn for_image(&self, image: &str) -> Option<&Profile> {
        let name = repository_name(image);
        self.by_key.values().find(|p| p.images.iter().any(|i| i.eq_ignore_ascii_case(name)))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_key.values()
    }
}

/// Ports of well-known servers, as evidence of a kind for an image without a profile.
const KNOWN_PORTS: &[(u32, Kind, &str)] = &[
    (5432, Kind::Database, "PostgreSQL"),
    (3306, Kind::Database, "MySQL/MariaDB"),
    (27017, Kind::Database, "MongoDB"),
    (7687, Kind::Database, "Neo4j (Bolt)"),
    (9042, Kind::Database, "Cassandra"),
    (6379, Kind::CacheQueue, "Redis"),
    (11211, Kind::CacheQueue, "memcached"),
    (5672, Kind::CacheQueue, "AMQP (RabbitMQ)"),
    (9092, Kind::CacheQueue, "Kafka"),
    (4222, Kind::CacheQueue, "NATS"),
    (6333, Kind::SearchVector, "Qdrant"),
    (6334, Kind::SearchVector, "Qdrant (gRPC)"),
    (9200, Kind::SearchVector, "Elasticsearch/OpenSearch"),
    (19530, Kind::SearchVector, "Milvus"),
    (8000, Kind::SearchVector, "ChromaDB"),
    (11434, Kind::ModelServer, "Ollama"),
];

/// Words in an OCI title label or a compose service name that say what a server is.
const KNOWN_NAMES: &[(&str, Kind)] = &[
    ("postgres", Kind::Database),
    ("mysql", Kind::Database),
    ("mariadb", Kind::Database),
    ("mongo", Kind::Database),
    ("neo4j", Kind::Database),
    ("redis", Kind::CacheQueue),
    ("valkey", Kind::CacheQueue),
    ("memcache", Kind::CacheQueue),
    ("rabbit", Kind::CacheQueue),
    ("kafka", Kind::CacheQueue),
    ("qdrant", Kind::SearchVector),
    ("chroma", Kind::SearchVector),
    ("weaviate", Kind::SearchVector),
    ("milvus", Kind::SearchVector),
    ("elastic", Kind::SearchVector),
    ("opensearch", Kind::SearchVector),
    ("ollama", Kind::ModelServer),
    ("vllm", Kind::ModelServer),
    ("llama", Kind::ModelServer),
];

/// The kind of a server listening on a well-known `port`, with the server's name and the
/// rank of this evidence (lower is stronger: a port many servers use ranks last).
pub fn kind_of_port(port: u32) -> Option<(Kind, &'static str, usize)> {
    KNOWN_PORTS.iter().position(|(p, _, _)| *p == port).map(|i| (KNOWN_PORTS[i].1, KNOWN_PORTS[i].2, i))
}

/// The kind a name (an OCI title, a compose service) points to, with the word that says so.
pub fn kind_of_name(name: &str) -> Option<(Kind, &'static str)> {
    let lower = name.to_ascii_lowercase();
    KNOWN_NAMES.iter().find(|(w, _)| lower.contains(w)).map(|(w, k)| (*k, *w))
}

/// Whether one word of a HEALTHCHECK switches user by itself: the official mariadb image's
/// `healthcheck.sh --su-mysql` (or `--su=USER`) runs its checks through gosu, which fails
/// with "operation not permitted" once the container is not root (MariaDB/mariadb-docker
/// #648).
fn switches_user(word: &str) -> bool {
    word == "--su-mysql" || word.starts_with("--su=")
}

/// A HEALTHCHECK test (`["CMD", …]` or `["CMD-SHELL", "…"]`) without the words that switch
/// user, or `None` when it has none: the test a non-root replacement can run.
pub fn healthcheck_without_user_switch(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, args)) if kind == "CMD" && args.iter().any(|a| switches_user(a)) => {
            Some(std::iter::once(kind.clone()).chain(args.iter().filter(|a| !switches_user(a)).cloned()).collect())
        }
        Some((kind, [line])) if kind == "CMD-SHELL" && line.split_whitespace().any(switches_user) => {
            let kept: Vec<&str> = line.split_whitespace().filter(|w| !switches_user(w)).collect();
            Some(vec![kind.clone(), kept.join(" ")])
        }
        _ => None,
    }
}

/// The last component of an image reference's repository: no registry, path, tag or digest.
pub fn repository_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_parses_and_covers_the_images_of_the_spec() {
        let p = Profiles::builtin();
        for image in [
            "postgres",
            "redis",
            "rabbitmq",
            "mongo",
            "mysql",
            "mariadb",
            "neo4j",
            "qdrant",
            "chromadb",
            "ollama",
            "grafana",
            "prometheus",
            "loki",
            "elasticsearch",
            "minio",
            "nginx",
            "memcached",
            "httpd",
            "php",
            "wordpress",
            "drupal",
            "haproxy",
            "jetty",
            "keycloak",
            "quay.io/keycloak/keycloak:26.0",
            "clickhouse",
            "clickhouse/clickhouse-server:25.4",
        ] {
            let profile = p.for_image(image).unwrap_or_else(|| panic!("no profile for {image}"));
            assert!(!profile.source.is_empty(), "{image} cites its source");
        }
        for profile in p.iter() {
            assert!(
                profile.tmpfs.iter().all(|t| !profile.data.contains(t)),
                "{}: a data path is never a tmpfs",
                profile.key
            );
            assert!(
                !profile.env.keys().any(|k| k.contains("PASSWORD") || k.contains("SECRET")),
                "{}: no secret",
                profile.key
            );
        }
    }

    #[test]
    fn the_builtin_table_keeps_the_facts_of_its_sources() {
        let p = Profiles::builtin();
        let ids = |image: &str, variant: Variant| p.for_image(image).unwrap().ids.get(&variant).copied();
        // nginx: both layouts' runtime paths (nginxinc's and Debian's package), never data.
        let nginx = p.for_image("nginx:1.27-alpine").unwrap();
        assert_eq!(nginx.tmpfs, ["/var/cache/nginx", "/var/lib/nginx", "/run"]);
        assert!(nginx.data.is_empty());
        assert!(nginx.gotchas[0].contains("10-listen-on-ipv6-by-default.sh"), "{}", nginx.gotchas[0]);
        // grafana runs as 472 with gid 0, and its plugins live under the data path.
        assert_eq!(ids("grafana/grafana", Variant::Debian), Some(Owner::new(472, 0)));
        assert_eq!(ids("grafana/grafana", Variant::Alpine), Some(Owner::new(472, 0)));
        assert_eq!(p.for_image("grafana/grafana").unwrap().data, ["/var/lib/grafana"]);
        // php: www-data is 33 on Debian, 82 on Alpine.
        assert_eq!(p.for_image("php:8.3-apache").unwrap().user.as_deref(), Some("www-data"));
        assert_eq!(ids("php:8.3-apache", Variant::Debian), Some(Owner::new(33, 33)));
        assert_eq!(ids("php:8.3-fpm-alpine", Variant::Alpine), Some(Owner::new(82, 82)));
        assert_eq!(ids("php", Variant::Other), None, "no number is guessed for other bases");
        // qdrant's snapshots are data; chroma and qdrant need no tmpfs.
        assert!(p.for_image("qdrant/qdrant").unwrap().data.contains(&"/qdrant/snapshots".to_string()));
        assert!(p.for_image("qdrant/qdrant").unwrap().tmpfs.is_empty());
        // ollama finds its models where the moved volume is, whatever HOME the uid has.
        let ollama = p.for_image("ollama/ollama").unwrap();
        assert_eq!(ollama.env["HOME"], "/var/lib/ollama");
        assert_eq!(ollama.env["OLLAMA_MODELS"], "/var/lib/ollama/.ollama/models");
        // mariadb's probe never switches user (it fails as non-root).
        assert!(!p.for_image("mariadb").unwrap().probe.iter().any(|a| a == "--su-mysql"));
        // elasticsearch: no name lookup (it would give 1000:1000), so the ids give 1000:0.
        let es = p.for_image("elasticsearch").unwrap();
        assert_eq!((es.user.as_deref(), es.ids.get(&Variant::Debian).copied()), (None, Some(Owner::new(1000, 0))));
        // new profiles: the pinned numbers and the kinds.
        assert_eq!(ids("haproxy", Variant::Alpine), Some(Owner::new(99, 99)));
        assert_eq!(ids("clickhouse/clickhouse-server", Variant::Debian), Some(Owner::new(101, 101)));
        assert_eq!(ids("keycloak", Variant::Other), Some(Owner::new(1000, 0)));
        assert!(p.for_image("jetty").unwrap().ids.is_empty(), "jetty's useradd -r pins no number");
        for (image, kind) in [
            ("httpd", Kind::Stateless),
            ("haproxy", Kind::Stateless),
            ("keycloak", Kind::Stateless),
            ("clickhouse", Kind::Database),
            ("mysql", Kind::Database),
            ("mongo", Kind::Database),
            ("elasticsearch", Kind::SearchVector),
        ] {
            assert_eq!(p.for_image(image).unwrap().kind, kind, "{image}");
        }
    }

    #[test]
    fn a_healthcheck_that_switches_user_loses_only_that_word() {
        let v = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            healthcheck_without_user_switch(&v(&[
                "CMD",
                "healthcheck.sh",
                "--su-mysql",
                "--connect",
                "--innodb_initialized"
            ])),
            Some(v(&["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]))
        );
        assert_eq!(
            healthcheck_without_user_switch(&v(&["CMD-SHELL", "healthcheck.sh --su=mysql --connect"])),
            Some(v(&["CMD-SHELL", "healthcheck.sh --connect"]))
        );
        assert_eq!(healthcheck_without_user_switch(&v(&["CMD", "healthcheck.sh", "--connect"])), None);
        assert_eq!(healthcheck_without_user_switch(&v(&["NONE"])), None);
    }

    #[test]
    fn a_repository_matches_by_its_last_component() {
        for image in [
            "redis",
            "redis:7",
            "library/redis",
            "docker.io/library/redis:7.2-alpine",
            "registry.example:5000/team/redis@sha256:abcd",
            "REDIS",
        ] {
            assert_eq!(repository_name(image).to_ascii_lowercase(), "redis", "{image}");
        }
        let p = Profiles::parse(
            "t",
            "[profile.pg]\nimages = [\"postgres\", \"postgis\"]\nkind = \"database\"\nsource = \"s\"\n",
        )
        .unwrap();
        assert_eq!(p.for_image("postgis/postgis:15").unwrap().key, "pg");
        assert_eq!(p.for_image("registry.example:5000/postgres:15").unwrap().key, "pg");
        assert!(p.for_image("mypostgres").is_none());
        assert!(p.for_image("postgres-exporter").is_none());
    }

    #[test]
    fn the_variant_comes_from_os_release() {
        assert_eq!(Variant::from_os_release("PRETTY_NAME=\"Debian GNU/Linux 12\"\nID=debian\n"), Variant::Debian);
        assert_eq!(Variant::from_os_release("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n"), Variant::Alpine);
        assert_eq!(Variant::from_os_release("ID=ubuntu\nID_LIKE=debian\n"), Variant::Debian);
        assert_eq!(Variant::from_os_release("ID=\"linuxmint\"\nID_LIKE=\"ubuntu debian\"\n"), Variant::Debian);
        assert_eq!(Variant::from_os_release("ID=\"rhel\"\nID_LIKE=\"fedora\"\n"), Variant::Other);
        assert_eq!(Variant::from_os_release(""), Variant::Other);
    }

    #[test]
    fn an_operator_file_extends_and_overrides() {
        let mut p = Profiles::builtin();
        let theirs = Profiles::parse(
            "mine.toml",
            "[profile.redis]\nuser = \"cache\"\nkind = \"cache-queue\"\nsource = \"our fork\"\n\
             [profile.vault]\nuser = \"vault\"\nids = { alpine = \"100:1000\" }\nkind = \"database\"\ndata = [\"/vault/file\"]\nsource = \"hashicorp/vault\"\n",
        )
        .unwrap();
        p.extend(theirs);
        assert_eq!(p.for_image("redis:7").unwrap().user.as_deref(), Some("cache"));
        assert_eq!(p.for_image("hashicorp/vault").unwrap().ids[&Variant::Alpine], Owner::new(100, 1000));
        assert!(p.for_image("postgres").is_some(), "the others stay");
    }

    #[test]
    fn a_bad_profiles_file_says_where() {
        let e =
            Profiles::parse("mine.toml", "[profile.x]\nkind = \"database\"\nsource = \"s\"\ncolour = 1\n").unwrap_err();
        assert!(e.to_string().starts_with("mine.toml: line 4:"), "{e}");
        let e = Profiles::parse("m", "[profile.x]\nkind = \"db\"\nsource = \"s\"\n").unwrap_err();
        assert!(e.message.contains("line 2"), "{e}");
        let e =
            Profiles::parse("m", "[profile.x]\nkind = \"database\"\nids = { debian = \"postgres\" }\nsource = \"s\"\n")
                .unwrap_err();
        assert_eq!(e.message, "profile x: ids.debian = \"postgres\" is not uid:gid");
        let e =
            Profiles::parse("m", "[profile.x]\nkind = \"database\"\ndata = [\"data\"]\nsource = \"s\"\n").unwrap_err();
        assert_eq!(e.message, "profile x: data path \"data\" is not absolute");
    }
}
