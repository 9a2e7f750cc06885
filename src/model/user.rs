//! Users as Docker and the plan write them: `uid`, `uid:gid`, `name`, `name:group`.

use std::fmt;

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
}
