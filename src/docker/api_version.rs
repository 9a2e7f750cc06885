//! The Docker Engine API version a daemon speaks, read in one place.

/// A Docker Engine API version (`1.41`), compared by number: `1.100` comes after `1.9`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    /// `major.minor` as a daemon reports it; `None` for anything else.
    pub fn parse(v: &str) -> Option<ApiVersion> {
        let (major, minor) = v.trim().split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }

    /// Whether a daemon that reports `v` speaks this version or a later one. A version that
    /// cannot be read counts as older: a feature it may lack is never assumed.
    pub fn reached_by(self, v: &str) -> bool {
        ApiVersion::parse(v).is_some_and(|have| have >= self)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_by_number_and_an_unreadable_one_is_older() {
        assert_eq!(ApiVersion::parse("1.41"), Some(ApiVersion(1, 41)));
        assert!(ApiVersion(1, 41).reached_by("1.41"));
        assert!(ApiVersion(1, 41).reached_by("1.100"), "1.100 comes after 1.41");
        assert!(!ApiVersion(1, 41).reached_by("1.9"));
        assert!(!ApiVersion(1, 44).reached_by("x"), "unreadable: older");
        assert!(!ApiVersion(1, 44).reached_by(""));
        assert_eq!(ApiVersion::parse("1"), None);
        assert_eq!(ApiVersion(1, 46).to_string(), "1.46");
    }
}
