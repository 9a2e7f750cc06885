//! Every rule of the plan format (SPEC §2), each with its message and place asserted, and
//! properties of the waves.

use proptest::prelude::*;
use unroot::model::plan::{Plan, PlanErrorKind, PlanErrors};

const HEAD: &str = "[rollout]\nname = \"t\"\n";

fn errors(text: &str) -> PlanErrors {
    match Plan::parse("p.toml", text) {
        Ok(_) => panic!("the plan was accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the plan fails with exactly one error of `kind` at `location` whose message
/// contains `message`; returns the error's full text.
#[track_caller]
fn one(text: &str, kind: PlanErrorKind, location: &str, message: &str) -> String {
    let e = errors(text);
    assert_eq!(e.kinds(), [kind], "{:#?}", e.errors);
    let err = &e.errors[0];
    assert_eq!(err.location, location, "{err}");
    assert!(err.message.contains(message), "`{}` does not contain `{message}`", err.message);
    assert!(err.help.is_some(), "every plan error carries a hint: {err}");
    err.to_string()
}

#[test]
fn a_valid_plan_parses_with_defaults() {
    let plan = Plan::parse("p.toml", &format!("{HEAD}[service.web]\nday = 1\nuser = \"1000\"\n")).unwrap();
    assert_eq!(plan.rollout.parallelism, 1);
    assert_eq!(plan.rollout.state_dir.to_str(), Some("rollback"));
    let web = plan.service("web").unwrap();
    assert_eq!(web.timings.health_timeout.as_secs(), 120);
    assert_eq!(web.timings.stop_timeout.as_secs(), 30);
    assert_eq!(web.timings.stable_for.as_secs(), 5);
    assert_eq!(web.chown, None, "absent chown means every writable mount");
    assert_eq!(plan.sha256.len(), 64);
}

#[test]
fn the_reference_plan_checks() {
    let plan = Plan::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/plans/sutazai.toml"))).unwrap();
    assert_eq!(plan.day_numbers(), [1, 2, 3, 4, 5]);
    assert_eq!(plan.graph.waves(2), [vec!["sutazai-redis".to_string()], vec!["sutazai-rabbitmq".to_string()]]);
    let exceptions: Vec<_> = plan.services.iter().filter(|s| s.keep_root.is_some()).collect();
    assert_eq!(exceptions.len(), 1);
    assert!(exceptions[0].cap_drop.contains(&"ALL".to_string()));
    assert_eq!(plan.service("sutazai-postgres").unwrap().user.as_ref().unwrap().to_string(), "999:999");
    assert_eq!(plan.service("sutazai-neo4j").unwrap().user.as_ref().unwrap().to_string(), "7474:7474");
}

#[test]
fn unknown_keys_are_refused_wherever_they_are() {
    one(
        &format!("colour = \"red\"\n{HEAD}[service.a]\nday = 1\n"),
        PlanErrorKind::UnknownKey,
        "p.toml:1:1",
        "`colour` is not a key of the plan",
    );
    one(
        "[rollout]\nname = \"t\"\nparalelism = 2\n[service.a]\nday = 1\n",
        PlanErrorKind::UnknownKey,
        "p.toml:3:1",
        "`paralelism` is not a key of [rollout]; the keys are name, state_dir,",
    );
    one(
        &format!("{HEAD}[service.a]\nday = 1\nusr = \"1000\"\n"),
        PlanErrorKind::UnknownKey,
        "p.toml:5:1",
        "`usr` is not a key of [service.a]; the keys are day, user,",
    );
}

#[test]
fn container_names_follow_docker() {
    one(
        &format!("{HEAD}[service.\"-bad\"]\nday = 1\n"),
        PlanErrorKind::InvalidName,
        "p.toml:3:10",
        "`-bad` is not a Docker container name",
    );
    one(
        &format!("{HEAD}[service.\"a b\"]\nday = 1\n"),
        PlanErrorKind::InvalidName,
        "p.toml:3:10",
        "`a b` is not a Docker container name",
    );
    one(
        "[rollout]\nname = \"Bad_Name\"\n[service.a]\nday = 1\n",
        PlanErrorKind::InvalidName,
        "p.toml:2:8",
        "rollout name `Bad_Name` must match",
    );
}

#[test]
fn root_users_must_use_keep_root() {
    for user in ["0", "root", "0:0", "root:root"] {
        let text = one(
            &format!("{HEAD}[service.a]\nday = 1\nuser = \"{user}\"\n"),
            PlanErrorKind::RootUser,
            "p.toml:5:8",
            &format!("`user` = \"{user}\" is root"),
        );
        assert!(text.contains("p.toml:5:8"));
    }
    let e = errors(&format!("{HEAD}[service.a]\nday = 1\nuser = \"0\"\n"));
    assert!(e.errors[0].help.as_deref().unwrap().contains("keep_root"));
}

#[test]
fn keep_root_and_user_exclude_each_other() {
    one(
        &format!("{HEAD}[service.a]\nday = 1\nuser = \"1000\"\nkeep_root = \"needs raw sockets\"\n"),
        PlanErrorKind::KeepRootWithUser,
        "p.toml:6:13",
        "`keep_root` and `user` = \"1000\" both set",
    );
    one(
        &format!("{HEAD}[service.a]\nday = 1\nkeep_root = \"  \"\n"),
        PlanErrorKind::InvalidValue,
        "p.toml:5:13",
        "`keep_root` needs the reason",
    );
}

#[test]
fn malformed_users_are_refused() {
    one(
        &format!("{HEAD}[service.a]\nday = 1\nuser = \"1:2:3\"\n"),
        PlanErrorKind::InvalidUser,
        "p.toml:5:8",
        "more than one `:`",
    );
}

#[test]
fn after_must_name_a_known_service_of_the_same_or_an_earlier_day() {
    one(
        &format!("{HEAD}[service.a]\nday = 1\nafter = [\"ghost\"]\n"),
        PlanErrorKind::UnknownAfter,
        "p.toml:5:10",
        "`a` is after `ghost`, which the plan does not name",
    );
    one(
        &format!("{HEAD}[service.a]\nday = 1\nafter = [\"b\"]\n[service.b]\nday = 2\n"),
        PlanErrorKind::AfterLaterDay,
        "p.toml:5:10",
        "`a` (day 1) is after `b`, which is on the later day 2",
    );
    // An earlier day is fine.
    Plan::parse("p.toml", &format!("{HEAD}[service.a]\nday = 2\nafter = [\"b\"]\n[service.b]\nday = 1\n")).unwrap();
}

#[test]
fn cycles_are_reported_with_the_whole_cycle() {
    one(&format!("{HEAD}[service.a]\nday = 1\nafter = [\"a\"]\n"), PlanErrorKind::Cycle, "p.toml:5:10", "a -> a");
    let text = format!(
        "{HEAD}[service.a]\nday = 1\nafter = [\"c\"]\n[service.b]\nday = 1\nafter = [\"a\"]\n\
         [service.c]\nday = 1\nafter = [\"b\"]\n[service.d]\nday = 1\nafter = [\"a\"]\n"
    );
    one(&text, PlanErrorKind::Cycle, "p.toml:3:10", "`after` forms a cycle: a -> b -> c -> a");
}

#[test]
fn chown_paths_are_absolute_without_dotdot() {
    one(
        &format!("{HEAD}[service.a]\nday = 1\nchown = [\"data\"]\n"),
        PlanErrorKind::InvalidPath,
        "p.toml:5:10",
        "chown path \"data\" is relative",
    );
    one(
        &format!("{HEAD}[service.a]\nday = 1\nchown = [\"/data/../etc\"]\n"),
        PlanErrorKind::InvalidPath,
        "p.toml:5:10",
        "chown path \"/data/../etc\" contains `..`",
    );
}

#[test]
fn tmpfs_entries_are_absolute_paths_with_a_size_and_an_octal_mode() {
    let plan = Plan::parse(
        "p.toml",
        &format!(
            "{HEAD}[service.a]\nday = 1\nuser = \"101\"\ntmpfs = [\"/var/cache/nginx/\", {{ path = \"/run\", size = \"16m\", mode = \"1777\" }}]\n"
        ),
    )
    .unwrap();
    let t = &plan.service("a").unwrap().tmpfs;
    assert_eq!((t[0].path.as_str(), t[0].size.as_deref(), t[0].mode), ("/var/cache/nginx", None, 0o755));
    assert_eq!((t[1].path.as_str(), t[1].size.as_deref(), t[1].mode), ("/run", Some("16m"), 0o1777));
    assert_eq!(t[1].options(Some((101, 101))), "size=16m,mode=1777,uid=101,gid=101");
    assert_eq!(t[0].options(None), "mode=0755");
    for (entry, kind, message) in [
        ("\"run\"", PlanErrorKind::InvalidTmpfs, "tmpfs path \"run\" is relative"),
        ("\"/run/../etc\"", PlanErrorKind::InvalidTmpfs, "contains `..`"),
        ("\"/\"", PlanErrorKind::InvalidTmpfs, "tmpfs path \"/\" is /"),
        ("{ path = \"/run\", size = \"lots\" }", PlanErrorKind::InvalidTmpfs, "tmpfs size \"lots\" is not a size"),
        (
            "{ path = \"/run\", mode = \"0999\" }",
            PlanErrorKind::InvalidTmpfs,
            "tmpfs mode \"0999\" is not an octal mode",
        ),
        ("{ path = \"/run\", mode = \"17777\" }", PlanErrorKind::InvalidTmpfs, "is not an octal mode"),
        ("{ path = \"/run\", mode = \"+755\" }", PlanErrorKind::InvalidTmpfs, "is not an octal mode"),
        ("{ path = \"/run\", mode = \"7\" }", PlanErrorKind::InvalidTmpfs, "is not an octal mode"),
        ("{ path = \"/run\", colour = \"red\" }", PlanErrorKind::InvalidTmpfs, "a `tmpfs` entry is a path or"),
        ("7", PlanErrorKind::InvalidTmpfs, "a `tmpfs` entry is a path or"),
    ] {
        // A malformed entry is placed at the list (the TOML parser's span of the untagged value).
        let at = if entry.contains("colour") || entry == "7" { "p.toml:5:9" } else { "p.toml:5:10" };
        one(&format!("{HEAD}[service.a]\nday = 1\ntmpfs = [{entry}]\n"), kind, at, message);
    }
    one(
        &format!("{HEAD}[service.a]\nday = 1\ntmpfs = [\"/run\", \"//run/.\"]\n"),
        PlanErrorKind::InvalidTmpfs,
        "p.toml:5:18",
        "tmpfs path \"//run/.\" is listed twice",
    );
    one(
        &format!("{HEAD}[service.a]\nday = 1\nchown = [\"/data\"]\ntmpfs = [\"/data\"]\n"),
        PlanErrorKind::InvalidTmpfs,
        "p.toml:6:10",
        "\"/data\" is both in `chown` and in `tmpfs`",
    );
}

#[test]
fn security_options_add_confinement_and_never_take_it_away() {
    let plan = Plan::parse(
        "p.toml",
        &format!("{HEAD}[service.a]\nday = 1\nsecurity_opt = [\"apparmor=docker-default\", \"label:type:svirt_t\"]\n"),
    )
    .unwrap();
    assert_eq!(plan.service("a").unwrap().security_opt, ["apparmor=docker-default", "label:type:svirt_t"]);
    for (opt, message) in [
        ("no-new-privileges", "no-new-privileges is not set through `security_opt`"),
        ("no-new-privileges:true", "no-new-privileges is not set through `security_opt`"),
        ("apparmor", "\"apparmor\" is not a security option"),
        ("selinux=x", "\"selinux=x\" is not a security option"),
        ("seccomp=unconfined", "\"seccomp=unconfined\" takes confinement away"),
        ("apparmor:unconfined", "takes confinement away"),
        ("label=disable", "takes confinement away"),
        (
            "seccomp=profiles/strict.json",
            "the seccomp profile of \"seccomp=profiles/strict.json\" is not an absolute path",
        ),
    ] {
        one(
            &format!("{HEAD}[service.a]\nday = 1\nsecurity_opt = [\"{opt}\"]\n"),
            PlanErrorKind::InvalidSecurityOpt,
            "p.toml:5:17",
            message,
        );
    }
}

#[test]
fn a_healthcheck_is_a_docker_test() {
    let plan = Plan::parse(
        "p.toml",
        &format!("{HEAD}[service.a]\nday = 1\nhealthcheck = [\"CMD\", \"healthcheck.sh\", \"--connect\"]\n"),
    )
    .unwrap();
    assert_eq!(plan.service("a").unwrap().healthcheck.as_deref().unwrap(), ["CMD", "healthcheck.sh", "--connect"]);
    for bad in ["[\"healthcheck.sh\"]", "[\"CMD\"]", "[\"CMD-SHELL\", \"a\", \"b\"]", "[]", "[\"NONE\"]"] {
        one(
            &format!("{HEAD}[service.a]\nday = 1\nhealthcheck = {bad}\n"),
            PlanErrorKind::InvalidValue,
            "p.toml:5:15",
            "`healthcheck` is not a HEALTHCHECK test",
        );
    }
}

#[test]
fn durations_lie_between_one_second_and_a_day() {
    for (value, message) in [
        ("0s", "outside 1s..24h"),
        ("500ms", "outside 1s..24h"),
        ("25h", "outside 1s..24h"),
        ("soon", "is not a duration"),
        ("10", "missing unit"),
    ] {
        one(
            &format!("[rollout]\nname = \"t\"\nhealth_timeout = \"{value}\"\n[service.a]\nday = 1\n"),
            PlanErrorKind::InvalidDuration,
            "p.toml:3:18",
            message,
        );
    }
    one(
        &format!("{HEAD}[service.a]\nday = 1\nstable_for = \"2d\"\n"),
        PlanErrorKind::InvalidDuration,
        "p.toml:5:14",
        "unknown unit `d`",
    );
    Plan::parse("p.toml", &format!("{HEAD}[service.a]\nday = 1\nstable_for = \"24h\"\nstop_timeout = \"1s\"\n"))
        .unwrap();
}

#[test]
fn days_are_positive_integers() {
    one(
        &format!("{HEAD}[service.a]\nday = 0\n"),
        PlanErrorKind::InvalidDay,
        "p.toml:4:7",
        "`day` = 0 is not a positive integer",
    );
    one(
        &format!("{HEAD}[days]\nfirst = \"x\"\n[service.a]\nday = 1\n"),
        PlanErrorKind::InvalidDay,
        "p.toml:4:1",
        "day `first` is not a positive integer",
    );
    // Not necessarily contiguous.
    let plan = Plan::parse("p.toml", &format!("{HEAD}[service.a]\nday = 1\n[service.b]\nday = 7\n")).unwrap();
    assert_eq!(plan.day_numbers(), [1, 7]);
}

#[test]
fn values_outside_their_sets_are_refused() {
    one(
        "[rollout]\nname = \"t\"\non_failure = \"retry\"\n[service.a]\nday = 1\n",
        PlanErrorKind::InvalidValue,
        "p.toml:3:14",
        "`on_failure` = \"retry\" is not one of \"rollback-day\", \"rollback-service\", \"pause\"",
    );
    one(
        &format!("{HEAD}[service.a]\nday = 1\nhealth = \"maybe\"\n"),
        PlanErrorKind::InvalidValue,
        "p.toml:5:10",
        "`health` = \"maybe\" is not a health mode",
    );
    one(
        &format!("{HEAD}[service.a]\nday = 1\nhealth = {{ probe = [\"x\"] }}\n"),
        PlanErrorKind::InvalidValue,
        "p.toml:5:10",
        "`health` must be",
    );
    one(
        "[rollout]\nname = \"t\"\nparallelism = 0\n[service.a]\nday = 1\n",
        PlanErrorKind::InvalidValue,
        "p.toml:3:15",
        "`parallelism` = 0 is outside 1..64",
    );
    one(
        &format!("{HEAD}[service.a]\nday = 1\ncap_drop = [\"all the things\"]\n"),
        PlanErrorKind::InvalidValue,
        "p.toml:5:13",
        "`cap_drop` entry \"all the things\" is not a capability Docker knows",
    );
    one(HEAD, PlanErrorKind::InvalidValue, "p.toml:1:1", "the plan has no services");
}

#[test]
fn capabilities_are_the_ones_docker_knows_in_any_case() {
    let plan = Plan::parse(
        "p.toml",
        &format!(
            "{HEAD}[service.a]\nday = 1\ncap_drop = [\"all\"]\ncap_add = [\"cap_net_admin\", \"Net_Bind_Service\", \"BPF\", \"CAP_CHECKPOINT_RESTORE\"]\n"
        ),
    )
    .unwrap();
    let a = plan.service("a").unwrap();
    assert_eq!(a.cap_drop, ["ALL"], "the plan holds the names Docker compares");
    assert_eq!(a.cap_add, ["NET_ADMIN", "NET_BIND_SERVICE", "BPF", "CHECKPOINT_RESTORE"]);
    for (cap, message, hint) in [
        ("NET_BIND", "`cap_add` entry \"NET_BIND\" is not a capability Docker knows", "did you mean NET_BIND_SERVICE?"),
        ("cap_sys_admn", "\"cap_sys_admn\" is not a capability Docker knows", "did you mean SYS_ADMIN?"),
        ("CAP_ALL", "\"CAP_ALL\" is not a capability Docker knows", "write \"ALL\""),
        (" NET_RAW", "`cap_add` entry \" NET_RAW\" has spaces around the name", "write it without them: \"NET_RAW\""),
        ("", "`cap_add` has an empty entry", "remove it"),
    ] {
        let e = errors(&format!("{HEAD}[service.a]\nday = 1\ncap_add = [\"{cap}\"]\n"));
        assert_eq!(e.kinds(), [PlanErrorKind::InvalidValue], "{cap}");
        let err = &e.errors[0];
        assert_eq!(err.location, "p.toml:5:12", "{cap}");
        assert!(err.message.contains(message), "{cap}: {}", err.message);
        let help = err.help.as_deref().unwrap();
        assert!(help.starts_with(hint) && help.ends_with("(see docs/plan.md#cap_drop-cap_add)"), "{cap}: {help}");
    }
}

#[test]
fn a_service_given_twice_is_refused_at_its_second_table() {
    one(
        &format!("{HEAD}[service.db]\nday = 1\n[service.db]\nday = 2\n"),
        PlanErrorKind::Syntax,
        "p.toml:5:10",
        "service `db` appears twice; a service belongs to one day",
    );
}

#[test]
fn wrong_types_are_said_in_the_plans_words_at_their_place() {
    for (line, location, message) in [
        ("day = [1, 2]", "p.toml:4:7", "`day` is one number (the day this service moves on), not a list"),
        ("day = 1\nuser = 999", "p.toml:5:8", "`user` must be a string"),
        ("day = 1\ncap_drop = \"ALL\"", "p.toml:5:12", "`cap_drop` must be a list of strings"),
        ("day = 1\nread_only = \"yes\"", "p.toml:5:13", "`read_only` must be true or false, not a string"),
        ("day = 1\nhealth_timeout = 60", "p.toml:5:18", "`health_timeout` must be a duration string"),
    ] {
        let text = one(&format!("{HEAD}[service.a]\n{line}\n"), PlanErrorKind::Syntax, location, message);
        assert!(!text.contains("invalid type") && !text.contains("expected"), "serde's words: {text}");
    }
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let e = errors(&format!(
        "{HEAD}[service.a]\nday = 1\nuser = \"root\"\n[service.b]\nday = 1\nchown = [\"rel\"]\nafter = [\"zz\"]\n"
    ));
    assert_eq!(e.kinds(), [PlanErrorKind::RootUser, PlanErrorKind::InvalidPath, PlanErrorKind::UnknownAfter]);
}

#[test]
fn syntax_errors_have_a_place() {
    let e = errors("[rollout\nname = 1\n");
    assert_eq!(e.kinds(), [PlanErrorKind::Syntax]);
    assert!(e.errors[0].location.starts_with("p.toml:1:"), "{}", e.errors[0]);
    let e = errors(&format!("{HEAD}[service.a]\nuser = \"1000\"\n"));
    assert!(e.errors[0].message.contains("[service.a] has no `day`"), "{}", e.errors[0]);
}

#[test]
fn size_limits() {
    let mut text = String::from(HEAD);
    for i in 0..10_001 {
        text.push_str(&format!("[service.s{i}]\nday = 1\n"));
    }
    one(&text, PlanErrorKind::TooManyServices, "p.toml:1:1", "the plan has 10001 services; the limit is 10000");

    let big = format!("{HEAD}# {}\n[service.a]\nday = 1\n", "x".repeat(1024 * 1024));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(&path, big).unwrap();
    let e = Plan::load(&path).unwrap_err();
    assert_eq!(e.kinds(), [PlanErrorKind::File]);
    assert!(e.errors[0].message.contains("the limit is 1 MiB"), "{}", e.errors[0]);
}

/// A random acyclic plan: services in days 1..=4, each `after` pointing at an earlier
/// service of the same or an earlier day.
fn arb_plan() -> impl Strategy<Value = String> {
    prop::collection::vec((1u32..=4, prop::collection::vec(any::<prop::sample::Index>(), 0..3)), 1..40).prop_map(
        |specs| {
            let mut text = String::from("[rollout]\nname = \"prop\"\n");
            let mut days = Vec::new();
            for (i, (day, deps)) in specs.iter().enumerate() {
                days.push(*day);
                let candidates: Vec<usize> = (0..i).filter(|&j| days[j] <= *day).collect();
                let mut after: Vec<String> = deps
                    .iter()
                    .filter(|_| !candidates.is_empty())
                    .map(|ix| format!("\"s{}\"", candidates[ix.index(candidates.len())]))
                    .collect();
                after.sort();
                after.dedup();
                text.push_str(&format!("[service.s{i}]\nday = {day}\nafter = [{}]\n", after.join(", ")));
            }
            text
        },
    )
}

proptest! {
    #[test]
    fn waves_respect_every_edge_and_every_barrier(text in arb_plan()) {
        let plan = Plan::parse("prop.toml", &text).unwrap();
        // Every service is in exactly one wave of its own day.
        let mut seen = std::collections::HashSet::new();
        for day in plan.day_numbers() {
            for wave in plan.graph.waves(day) {
                prop_assert!(!wave.is_empty());
                for s in wave {
                    prop_assert!(seen.insert(s.clone()), "{} twice", s);
                    prop_assert_eq!(plan.service(s).unwrap().day, day);
                }
            }
        }
        prop_assert_eq!(seen.len(), plan.services.len());
        // Edges: the dependency comes strictly before, in (day, wave) order.
        for s in &plan.services {
            let at = plan.graph.position(&s.name).unwrap();
            for dep in &s.after {
                let dep_at = plan.graph.position(dep).unwrap();
                prop_assert!(dep_at < at, "{} {:?} is not before {} {:?}", dep, dep_at, s.name, at);
            }
        }
        // Barriers: every service of a day comes before every service of a later day.
        let mut order: Vec<(u32, usize)> = plan.services.iter().map(|s| plan.graph.position(&s.name).unwrap()).collect();
        order.sort();
        for pair in order.windows(2) {
            prop_assert!(pair[0].0 <= pair[1].0);
        }
        // Waves are as early as they can be: a service past wave 1 waits on the wave before.
        for s in &plan.services {
            let (day, wave) = plan.graph.position(&s.name).unwrap();
            if wave > 1 {
                let waits_on_previous = s.after.iter().any(|d| plan.graph.position(d) == Some((day, wave - 1)));
                prop_assert!(waits_on_previous, "{} could start a wave earlier", s.name);
            }
        }
    }
}

#[test]
fn a_swarm_service_cannot_be_reowned_on_the_host() {
    one(
        &format!("{HEAD}[service.db]\nday = 1\nuser = \"999\"\nswarm = true\nownership = \"host\"\n"),
        PlanErrorKind::InvalidValue,
        "p.toml:3:10",
        "is a Swarm service with ownership = \"host\"",
    );
    let plan = Plan::parse("p.toml", &format!("{HEAD}[service.db]\nday = 1\nuser = \"999\"\nswarm = true\n")).unwrap();
    assert_eq!(plan.service("db").unwrap().swarm, Some(true));
    assert_eq!(
        Plan::parse("p.toml", &format!("{HEAD}[service.db]\nday = 1\n")).unwrap().service("db").unwrap().swarm,
        None
    );
}
