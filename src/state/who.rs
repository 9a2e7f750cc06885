//! Who runs unroot, and on which machine: what a run's journal header records, so that the
//! report can name who ran each run (SPEC §12).

/// Who runs this process: the login name of its real uid as /etc/passwd names it (`uid N`
/// when it names none), and, when sudo started it as root, who ran sudo: `root (sudo from
/// alice)`. sudo sets `SUDO_USER` and `SUDO_UID`; both are read only for root, and only when
/// they agree with /etc/passwd (like any environment, whoever starts unroot can set them).
pub fn operator() -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    operator_of(rustix::process::getuid().as_raw(), &passwd, (&var("SUDO_USER"), &var("SUDO_UID")))
}

/// [`operator`] of a uid, the text of /etc/passwd and sudo's `SUDO_USER` and `SUDO_UID`
/// (empty: not set).
fn operator_of(uid: u32, passwd: &str, (sudo_user, sudo_uid): (&str, &str)) -> String {
    let login = |uid: u32| crate::model::passwd::login_name(passwd, uid);
    let name = login(uid).map_or_else(|| format!("uid {uid}"), str::to_string);
    let by = sudo_user.trim();
    let agrees = sudo_uid.trim().parse::<u32>().is_ok_and(|u| u != 0 && login(u) == Some(by));
    if uid == 0 && agrees { format!("{name} (sudo from {by})") } else { name }
}

/// This machine's name as the kernel has it (`uname -n`).
pub fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "# local accounts\nroot:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n\
                          broken\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n";

    #[test]
    fn the_operator_is_the_real_uids_login_name_and_who_ran_sudo() {
        assert_eq!(operator_of(1000, PASSWD, ("", "")), "alice");
        assert_eq!(operator_of(0, PASSWD, ("", "")), "root", "the first name of a uid, as getpwuid finds it");
        assert_eq!(operator_of(0, PASSWD, ("alice", "1000")), "root (sudo from alice)");
        assert_eq!(operator_of(1001, PASSWD, ("  ", "")), "uid 1001", "a uid /etc/passwd does not name");
        assert_eq!(operator_of(0, "", ("", "")), "uid 0", "no /etc/passwd to read");
        // sudo's variables are believed only from root, and only when they agree.
        assert_eq!(operator_of(1000, PASSWD, ("bob", "1001")), "alice", "not root: no sudo");
        assert_eq!(operator_of(0, PASSWD, ("bob", "1000")), "root", "SUDO_UID is alice's, not bob's");
        assert_eq!(operator_of(0, PASSWD, ("alice", "")), "root", "SUDO_USER alone");
    }

    #[test]
    fn this_process_has_an_operator_and_a_host() {
        assert!(!operator().is_empty());
        assert!(!hostname().is_empty());
    }
}
