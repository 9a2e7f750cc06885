//! The rules of the keys that make an image run as non-root without a rebuild and add
//! compensating controls: `tmpfs`, `security_opt` and `healthcheck`.

use std::path::{Path, PathBuf};

use super::raw::{RawService, RawTmpfs};
use super::validate::{Validator, path_fault};
use super::*;

/// A tmpfs size as the kernel takes it: bytes, or a number with k, m or g.
fn tmpfs_size_ok(size: &str) -> bool {
    let digits = size.strip_suffix(['k', 'm', 'g', 'K', 'M', 'G']).unwrap_or(size);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) && digits.parse::<u64>().is_ok_and(|n| n > 0)
}

/// The `--security-opt` keys a plan may set; `no-new-privileges` has a key of its own.
const SECURITY_OPT_KEYS: &[&str] = &["apparmor", "seccomp", "label"];

impl Validator<'_> {
    /// `healthcheck`: Docker's test form, `CMD` with a command or `CMD-SHELL` with a line.
    pub(super) fn healthcheck_rules(&mut self, r: &RawService) -> Option<Vec<String>> {
        let test = r.healthcheck.as_ref()?;
        let t = test.get_ref();
        let ok = match t.first().map(String::as_str) {
            Some("CMD") => t.get(1).is_some_and(|c| !c.trim().is_empty()),
            Some("CMD-SHELL") => t.len() == 2 && !t[1].trim().is_empty(),
            _ => false,
        };
        if !ok {
            self.push_about(
                "healthcheck",
                PlanErrorKind::InvalidValue,
                test.span(),
                "`healthcheck` is not a HEALTHCHECK test",
                "not a test",
                Some("[\"CMD\", \"cmd\", \"arg\"] or [\"CMD-SHELL\", \"a shell line\"], as compose's healthcheck.test"),
            );
            return None;
        }
        Some(t.clone())
    }

    /// `tmpfs`: absolute paths, each once, not under `chown`; sizes and octal modes.
    pub(super) fn tmpfs_rules(&mut self, r: &RawService) -> Vec<Tmpfs> {
        let mut out: Vec<Tmpfs> = Vec::new();
        for entry in &r.tmpfs {
            let (path, size, mode) = match entry.get_ref() {
                RawTmpfs::Path(p) => (p, None, None),
                RawTmpfs::Table(t) => (&t.path, t.size.as_ref(), t.mode.as_ref()),
            };
            let before = self.errors.len();
            if let Some(why) = path_fault(Path::new(path)).or((path.trim_end_matches('/').is_empty()).then_some("is /"))
            {
                self.push(
                    PlanErrorKind::InvalidTmpfs,
                    entry.span(),
                    format!("tmpfs path \"{path}\" {why}"),
                    why,
                    Some("tmpfs takes absolute container paths such as \"/run\" or \"/var/cache/nginx\""),
                );
            }
            // `//run/` and `/run/.` are `/run`.
            let clean = Path::new(path).components().collect::<PathBuf>().display().to_string();
            if out.iter().any(|t| t.path == clean) {
                self.push(
                    PlanErrorKind::InvalidTmpfs,
                    entry.span(),
                    format!("tmpfs path \"{path}\" is listed twice"),
                    "again",
                    Some("list each tmpfs path once"),
                );
            }
            if r.chown.iter().flatten().any(|c| c.get_ref().trim_end_matches('/') == clean) {
                self.push(
                    PlanErrorKind::InvalidTmpfs,
                    entry.span(),
                    format!("\"{path}\" is both in `chown` and in `tmpfs`"),
                    "also re-owned",
                    Some("a tmpfs starts empty and owned by the service's user: remove it from `chown`"),
                );
            }
            if let Some(size) = size.filter(|s| !tmpfs_size_ok(s)) {
                self.push(
                    PlanErrorKind::InvalidTmpfs,
                    entry.span(),
                    format!("tmpfs size \"{size}\" is not a size"),
                    "not a size",
                    Some("bytes, or a number with k, m or g: size = \"16m\""),
                );
            }
            // Three or four octal digits, as the schema says (`+755` or `7` are not modes).
            let digits_ok = |m: &str| (3..=4).contains(&m.len()) && m.bytes().all(|b| (b'0'..=b'7').contains(&b));
            let mode = match mode.map(|m| (m, if digits_ok(m) { u32::from_str_radix(m, 8) } else { "x".parse() })) {
                None => Some(TMPFS_DEFAULT_MODE),
                Some((_, Ok(bits))) if bits <= 0o7777 => Some(bits),
                Some((m, _)) => {
                    self.push(
                        PlanErrorKind::InvalidTmpfs,
                        entry.span(),
                        format!("tmpfs mode \"{m}\" is not an octal mode"),
                        "not a mode",
                        Some("permission bits in octal: mode = \"0755\" (or \"1777\" for a shared /tmp)"),
                    );
                    None
                }
            };
            if self.errors.len() == before {
                out.push(Tmpfs { path: clean, size: size.cloned(), mode: mode.unwrap_or(TMPFS_DEFAULT_MODE) });
            }
        }
        out
    }

    /// `security_opt`: `KEY=VALUE` (or Docker's `KEY:VALUE`) with a key Docker takes;
    /// no-new-privileges has its own key.
    pub(super) fn security_opt_rules(&mut self, r: &RawService) {
        for opt in &r.security_opt {
            let o = opt.get_ref().trim();
            let key = o.split(['=', ':']).next().unwrap_or_default();
            if key == "no-new-privileges" {
                self.push(
                    PlanErrorKind::InvalidSecurityOpt,
                    opt.span(),
                    "no-new-privileges is not set through `security_opt`",
                    "use the key",
                    Some("write no_new_privileges = true"),
                );
            } else if !SECURITY_OPT_KEYS.contains(&key) || o.len() <= key.len() + 1 {
                self.push(
                    PlanErrorKind::InvalidSecurityOpt,
                    opt.span(),
                    format!("\"{o}\" is not a security option"),
                    "not a security option",
                    Some("KEY=VALUE with KEY one of apparmor, seccomp, label: \"apparmor=docker-default\""),
                );
            } else if matches!(&o[key.len() + 1..], "unconfined" | "disable") {
                self.push(
                    PlanErrorKind::InvalidSecurityOpt,
                    opt.span(),
                    format!("\"{o}\" takes confinement away"),
                    "weakens the container",
                    Some("security_opt adds controls (a profile, a label); leave the key out to keep the container's own"),
                );
            } else if key == "seccomp" && !o[key.len() + 1..].starts_with('/') {
                self.push(
                    PlanErrorKind::InvalidSecurityOpt,
                    opt.span(),
                    format!("the seccomp profile of \"{o}\" is not an absolute path"),
                    "relative path",
                    Some(
                        "give the profile's absolute path: unroot reads it where it runs, compose where the project is",
                    ),
                );
            }
        }
    }
}
