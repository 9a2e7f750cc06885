//! Users as Docker and the plan write them: `uid`, `uid:gid`, `name`, `name:group`.

use std::collections::HashMap;
use std::fmt;

use crate::model::owner::Owner;
use crate::model::passwd::{self, PasswdEntry};

/// One half of a user spec: a number or a name to look up in the image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(untagged)]
pub enum IdOrName {
    Id(u32),
    Name(String),
}

impl IdOrName {
    fn parse(text: &str) -> Self {
        match text.parse::<u32>() {
            Ok(n) => IdOrName::Id(n),
            Err(_) => IdOrName::Name(text.to_string()),
        }
    }
}

impl fmt::Display for IdOrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdOrName::Id(n) => write!(f, "{n}"),
            IdOrName::Name(s) => f.write_str(s),
        }
    }
}

/// A user as written in a plan or in a container's `Config.User`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserSpec {
    pub user: IdOrName,
    pub group: Option<IdOrName>,
}

impl UserSpec {
    /// Parses `uid`, `uid:gid`, `name` or `name:group`.
    ///
    /// Errors: an empty user or group part, or more than one `:`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let mut parts = text.split(':');
        let user = parts.next().unwrap_or_default();
        let group = parts.next();
        if parts.next().is_some() {
            return Err(format!("`{text}` has more than one `:`"));
        }
        if user.is_empty() {
            return Err("the user part is empty".into());
        }
        if group == Some("") {
            return Err(format!("`{text}` has an empty group after `:`"));
        }
        Ok(UserSpec { user: IdOrName::parse(user), group: group.map(IdOrName::parse) })
    }

    /// Whether the user part is root without needing the image: uid 0 or the name `root`.
    pub fn is_root_literal(&self) -> bool {
        matches!(&self.user, IdOrName::Id(0)) || matches!(&self.user, IdOrName::Name(n) if n == "root")
    }
}

impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.user)?;
        if let Some(g) = &self.group {
            write!(f, ":{g}")?;
        }
        Ok(())
    }
}

/// A container's configured user (`Config.User`), where the empty string means root.
///
/// Returns `None` for the empty string (the image default, root unless the image says
/// otherwise) and for text that does not parse.
pub fn configured(text: &str) -> Option<UserSpec> {
    if text.trim().is_empty() { None } else { UserSpec::parse(text).ok() }
}

/// The users and groups of an image, by name, from its `/etc/passwd` and `/etc/group`:
/// the one place a user spec is turned into ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    pub users: HashMap<String, PasswdEntry>,
    pub groups: HashMap<String, u32>,
}

/// Why a plan's user cannot be the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user `{0}` is not in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("group `{0}` is not in the image's /etc/group")]
    UnknownGroup(String),
    #[error("user `{0}` is uid 0 in the image; use keep_root to keep it on root")]
    Root(String),
}

/// A plan's user resolved in the image: the owner unroot runs the service as, and the
/// user's name when the image has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub owner: Owner,
    pub name: Option<String>,
}

impl fmt::Display for Target {
    /// `name (uid:gid)`, or `uid:gid` for a uid the image does not name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} ({})", self.owner),
            None => write!(f, "{}", self.owner),
        }
    }
}

/// A user as the preview shows it: name and numbers, before and after.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct UserChange {
    pub from: String,
    pub to: String,
}

impl Accounts {
    /// From the two files' text; a missing file is an empty table.
    pub fn parse(passwd_text: Option<&str>, group_text: Option<&str>) -> Accounts {
        Accounts {
            users: passwd_text.map(passwd::parse_passwd).unwrap_or_default(),
            groups: group_text.map(passwd::parse_group).unwrap_or_default(),
        }
    }

    /// The passwd entry of a uid (the first name for it when there are several).
    pub fn uid_entry(&self, uid: u32) -> Option<(&str, &PasswdEntry)> {
        self.users.iter().filter(|(_, e)| e.uid == uid).min_by_key(|(n, _)| n.as_str()).map(|(n, e)| (n.as_str(), e))
    }

    /// The uid a spec stands for (root allowed); `None` for a name the image lacks.
    pub fn uid_of(&self, spec: &UserSpec) -> Option<u32> {
        match &spec.user {
            IdOrName::Id(n) => Some(*n),
            IdOrName::Name(n) if n == "root" => Some(0),
            IdOrName::Name(n) => Some(self.users.get(n)?.uid),
        }
    }

    /// The gid a spec's group part names: `Some(None)` when it names none, `None` for a
    /// group name the image lacks.
    pub fn named_gid(&self, spec: &UserSpec) -> Option<Option<u32>> {
        match &spec.group {
            None => Some(None),
            Some(IdOrName::Id(g)) => Some(Some(*g)),
            Some(IdOrName::Name(g)) => Some(Some(*self.groups.get(g)?)),
        }
    }

    /// What Docker runs a configured user as: the named group, else the uid's passwd
    /// group, else 0 (Docker's default for a uid the image does not know).
    pub fn owner_of(&self, spec: &UserSpec) -> Option<Owner> {
        let uid = self.uid_of(spec)?;
        let gid = self.named_gid(spec)?.unwrap_or_else(|| self.uid_entry(uid).map_or(0, |(_, e)| e.gid));
        Some(Owner::new(uid, gid))
    }

    /// A plan's user as the target: never root; the group named, else the user's passwd
    /// group, else the uid itself (unroot writes the pair explicitly, never gid 0).
    ///
    /// Errors: a user or group name the image lacks, or a user that is uid 0.
    pub fn target(&self, spec: &UserSpec) -> Result<Target, UserError> {
        let (uid, entry_gid, name) = match &spec.user {
            IdOrName::Id(n) => {
                let e = self.uid_entry(*n);
                (*n, e.map(|(_, e)| e.gid), e.map(|(n, _)| n.to_string()))
            }
            IdOrName::Name(n) => match self.users.get(n) {
                Some(e) => (e.uid, Some(e.gid), Some(n.clone())),
                None => return Err(UserError::UnknownUser(n.clone())),
            },
        };
        let gid = match &spec.group {
            Some(IdOrName::Id(g)) => *g,
            Some(IdOrName::Name(g)) => *self.groups.get(g).ok_or_else(|| UserError::UnknownGroup(g.clone()))?,
            None => entry_gid.unwrap_or(uid),
        };
        if uid == 0 {
            return Err(UserError::Root(spec.to_string()));
        }
        Ok(Target { owner: Owner::new(uid, gid), name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_shapes() {
        assert_eq!(
            UserSpec::parse("999:1000").unwrap(),
            UserSpec { user: IdOrName::Id(999), group: Some(IdOrName::Id(1000)) }
        );
        assert_eq!(UserSpec::parse("redis").unwrap(), UserSpec { user: IdOrName::Name("redis".into()), group: None });
        assert_eq!(UserSpec::parse("rabbitmq:101").unwrap().to_string(), "rabbitmq:101");
        assert_eq!(UserSpec::parse("7474").unwrap().to_string(), "7474");
    }

    #[test]
    fn refuses_malformed() {
        assert!(UserSpec::parse("").is_err());
        assert!(UserSpec::parse(":1").is_err());
        assert!(UserSpec::parse("1:").is_err());
        assert!(UserSpec::parse("1:2:3").is_err());
    }

    #[test]
    fn root_literals() {
        for root in ["0", "0:0", "root", "root:root", "0:1000"] {
            assert!(UserSpec::parse(root).unwrap().is_root_literal(), "{root}");
        }
        for user in ["1000", "999:0", "rooted", "redis"] {
            assert!(!UserSpec::parse(user).unwrap().is_root_literal(), "{user}");
        }
        assert_eq!(configured(""), None);
    }

    fn accounts() -> Accounts {
        Accounts::parse(
            Some(
                "root:x:0:0::/root:/bin/sh\nredis:x:999:999::/data:/bin/sh\n# c\nbad\nnobody:x:65534:65534::/:/bin/false\n",
            ),
            Some("root:x:0:\nredis:x:999:\ndocker:x:998:redis\n"),
        )
    }

    #[test]
    fn a_target_is_resolved_in_the_image() {
        let a = accounts();
        let t = |s: &str| a.target(&UserSpec::parse(s).unwrap());
        assert_eq!(t("redis").unwrap().owner, Owner::new(999, 999));
        assert_eq!(t("redis").unwrap().to_string(), "redis (999:999)");
        assert_eq!(t("999:998").unwrap().to_string(), "redis (999:998)");
        assert_eq!(t("redis:docker").unwrap().owner, Owner::new(999, 998));
        // A uid the image does not name takes its own number as group, never 0.
        assert_eq!(t("1234").unwrap(), Target { owner: Owner::new(1234, 1234), name: None });
        assert_eq!(t("1234").unwrap().to_string(), "1234:1234");
        assert_eq!(t("postgres"), Err(UserError::UnknownUser("postgres".into())));
        assert_eq!(t("redis:wheel"), Err(UserError::UnknownGroup("wheel".into())));
        assert_eq!(t("root"), Err(UserError::Root("root".into())));
        assert_eq!(
            t("0:999").unwrap_err().to_string(),
            "user `0:999` is uid 0 in the image; use keep_root to keep it on root"
        );
    }

    #[test]
    fn a_configured_user_stands_for_what_docker_runs() {
        let a = accounts();
        let o = |s: &str| a.owner_of(&UserSpec::parse(s).unwrap());
        assert_eq!(o("root"), Some(Owner::ROOT));
        assert_eq!(o("redis"), Some(Owner::new(999, 999)));
        // Docker runs a uid the image does not know with gid 0.
        assert_eq!(o("1234"), Some(Owner::new(1234, 0)));
        assert_eq!(o("nobody:docker"), Some(Owner::new(65534, 998)));
        assert_eq!(o("ghost"), None);
        assert_eq!(o("redis:ghosts"), None);
        assert_eq!(a.uid_of(&UserSpec::parse("redis:ghosts").unwrap()), Some(999));
        assert_eq!(a.named_gid(&UserSpec::parse("redis").unwrap()), Some(None));
        assert_eq!(Accounts::parse(None, None), Accounts::default());
    }
}
