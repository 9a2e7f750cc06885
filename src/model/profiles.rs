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
        ] {
            let profile = p.for_image(image).unwrap_or_else(|| panic!("no profile for {image}"));
            assert!(!profile.source.is_empty(), "{image} cites its source");
        }
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
