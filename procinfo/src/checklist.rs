//! The talk's container checklist, computed from the real state rather than asserted.
//!
//! Every line compares what the process sees now with what it saw before isolation:
//! namespace links from `/proc/self/ns`, `stat("/")`, `/proc/self/uid_map`, where
//! `/proc/self` points, whether `..` still climbs to the host's root, the mounts
//! (`/proc/self/mountinfo`: the one at `/`, and whether the host's root is still among
//! them), the network interfaces, their addresses and the default route
//! (`/proc/self/net/dev`, getifaddrs(3), `/proc/self/net/route`) and the privileges left
//! (`/proc/self/status`).
//!
//! The first five lines are the talk's; each later step ticks one more. A step shows the
//! lines it has ticked and the next one, unticked: what the next step is for.

/// The observations the checklist is computed from.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `getuid()` now.
    pub uid: u32,
    /// The contents of `/proc/self/uid_map` now: `inside outside count` lines.
    pub uid_map: String,
    /// Is the user namespace different from the one before isolation?
    pub new_user_ns: bool,
    /// Is the UTS namespace different from the one before isolation?
    pub new_uts_ns: bool,
    /// `gethostname()` now.
    pub hostname: String,
    /// `getpid()` now.
    pub pid: i32,
    /// Is the PID namespace different from the one before isolation?
    pub new_pid_ns: bool,
    /// Does `stat("/")` name a different directory than before isolation?
    pub new_root: bool,
    /// The pid `/proc/self` resolves to inside the current root, if it resolves at all.
    pub proc_self: Option<i32>,
    /// Does `..`, from a chroot below our root, still reach the host's root directory?
    /// `None` when that could not be tried.
    pub host_root_reachable: Option<bool>,
    /// Where the host's root is still mounted in our mount table, if it is: a mount of the
    /// same filesystem and directory as the host's `/` (`/proc/self/mountinfo`). The `..`
    /// probe cannot see an old root kept at a path, e.g. `pivot_root(root, root/.oldroot)`
    /// without the umount.
    pub host_root_mounted: Option<String>,
    /// The filesystem type and options of the mount at `/`, if `/` is a mount point.
    pub root_fs: Option<(String, String)>,
    /// Is the network namespace different from the one before isolation?
    pub new_net_ns: bool,
    /// The network interfaces this process sees.
    pub interfaces: Vec<String>,
    /// Their IPv4 addresses: `(interface, "10.0.2.100/24")`.
    pub addresses: Vec<(String, String)>,
    /// The interface of the default route, if there is one.
    pub default_route: Option<String>,
    /// The filesystem types mounted at `/dev` and `/dev/pts`, if they are mount points.
    pub dev_fs: Option<String>,
    pub devpts_fs: Option<String>,
    /// Is `/dev/null` the null device?
    pub dev_null: bool,
    /// Is stdin a terminal of our own devpts (`Some(true)`), another terminal, or none?
    pub terminal: Option<bool>,
    /// How many capabilities the bounding set holds (`CapBnd` of `/proc/self/status`).
    pub bounding_set: u32,
    /// `NoNewPrivs: 1`: execve can never grant more privileges.
    pub no_new_privs: bool,
    /// `Seccomp: 2`: a seccomp filter checks every system call.
    pub seccomp_filter: bool,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub name: &'static str,
    pub detail: String,
}

/// The uid outside the user namespace that `uid` maps to, according to a uid_map
/// (user_namespaces(7): each line is `ID-inside-ns ID-outside-ns length`).
pub fn outside_uid(uid_map: &str, uid: u32) -> Option<u32> {
    uid_map.lines().find_map(|line| {
        let mut fields = line.split_whitespace().map(str::parse::<u32>);
        let (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) =
            (fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        let offset = uid.checked_sub(inside)?;
        (offset < count)
            .then(|| outside.checked_add(offset))
            .flatten()
    })
}

/// The talk's checklist stops at its fifth line, "Own /proc".
const TALK_LINES: usize = 5;

/// The most capabilities a runtime's default list keeps: Docker's fourteen (podman keeps
/// eleven, runc's example config three).
const DEFAULT_CAPABILITIES: u32 = 14;

/// Computes every line of the checklist.
pub fn evaluate(facts: &Facts) -> Vec<Check> {
    let check = |ok, name, detail: String| Check { ok, name, detail };
    let outside = outside_uid(&facts.uid_map, facts.uid);

    let rootless = match (facts.new_user_ns, facts.uid, outside) {
        (true, 0, Some(outside)) if outside != 0 => check(
            true,
            "Rootless",
            format!("uid 0 inside is unprivileged uid {outside} outside (uid_map)"),
        ),
        (true, 0, _) => check(
            false,
            "Rootless",
            "uid 0 inside is uid 0 outside: this is real root (sudo)".into(),
        ),
        (true, uid, _) => check(
            false,
            "Rootless",
            format!("uid {uid} is not root inside the user namespace"),
        ),
        (false, 0, _) => check(
            false,
            "Rootless",
            "running as real root, in the host's user namespace".into(),
        ),
        (false, uid, _) => check(
            false,
            "Rootless",
            format!("no user namespace: uid {uid} is the host's own uid"),
        ),
    };

    let hostname = if facts.new_uts_ns {
        check(
            true,
            "Isolated hostname",
            format!("own UTS namespace, hostname {:?}", facts.hostname),
        )
    } else {
        check(
            false,
            "Isolated hostname",
            "shares the host's UTS namespace".into(),
        )
    };

    let pid1 = if facts.pid == 1 {
        check(true, "Believes it is PID 1", String::new())
    } else {
        check(
            false,
            "Believes it is PID 1",
            format!("pid {} in the host's PID namespace", facts.pid),
        )
    };

    let root = if facts.new_root {
        check(
            true,
            "Isolated root filesystem",
            "/ is no longer the host's /".into(),
        )
    } else {
        check(
            false,
            "Isolated root filesystem",
            "/ is still the host's /".into(),
        )
    };

    let proc = match facts.proc_self {
        Some(pid) if pid == facts.pid && facts.new_pid_ns => check(
            true,
            "Own /proc",
            "/proc shows only this PID namespace".into(),
        ),
        Some(_) => check(
            false,
            "Own /proc",
            "/proc still shows the host's processes".into(),
        ),
        None => check(
            false,
            "Own /proc",
            "no procfs at /proc: ps sees no processes at all".into(),
        ),
    };

    let old_root = match (facts.host_root_reachable, &facts.host_root_mounted) {
        _ if !facts.new_root => check(false, "Host's / out of reach", "/ is the host's /".into()),
        (Some(true), _) => check(
            false,
            "Host's / out of reach",
            "still mounted: `..` climbs back to it (chroot escape)".into(),
        ),
        (_, Some(point)) => check(
            false,
            "Host's / out of reach",
            format!("still mounted at {point}: the old root was not detached (mountinfo)"),
        ),
        (Some(false), None) => check(
            true,
            "Host's / out of reach",
            "pivot_root detached it: `..` stops at our /".into(),
        ),
        (None, None) => check(
            false,
            "Host's / out of reach",
            "could not be checked (no directory to chroot into)".into(),
        ),
    };

    let image = match &facts.root_fs {
        Some((fstype, options)) if fstype == "overlay" && options.contains("upperdir=") => check(
            true,
            "Image untouched",
            "/ is an overlay: writes go to this run's own layer".into(),
        ),
        _ if facts.new_root => check(
            false,
            "Image untouched",
            "writes to / change the root filesystem itself".into(),
        ),
        _ => check(
            false,
            "Image untouched",
            "writes to / change the host's files".into(),
        ),
    };

    // The way out: an interface besides lo, with an address, that the default route uses.
    let way_out = facts.default_route.as_ref().and_then(|link| {
        let (_, address) = facts.addresses.iter().find(|(name, _)| name == link)?;
        (link != "lo").then(|| format!("{link} {address}"))
    });
    let network = match (facts.new_net_ns, facts.interfaces.as_slice(), way_out) {
        (true, [lo], _) if lo == "lo" => {
            check(true, "Own network", "own network namespace: only lo".into())
        }
        (true, [_, _], Some(way_out)) => check(
            true,
            "Own network",
            format!("own network namespace: lo, and {way_out} (default route)"),
        ),
        (true, others, _) => check(
            false,
            "Own network",
            format!(
                "own network namespace, with {}, but no address with the default route",
                others.join(", ")
            ),
        ),
        (false, _, _) => check(
            false,
            "Own network",
            "shares the host's network: its interfaces, its ports".into(),
        ),
    };

    let own_dev =
        facts.dev_fs.as_deref() == Some("tmpfs") && facts.devpts_fs.as_deref() == Some("devpts");
    let dev = match (own_dev, facts.dev_null) {
        (true, true) => check(
            true,
            "Own /dev",
            "a tmpfs with the host's null, zero, tty…, and our own devpts".into(),
        ),
        (false, true) if !facts.new_root => check(
            false,
            "Own /dev",
            "the host's /dev: its disks and every other device".into(),
        ),
        (_, _) => check(
            false,
            "Own /dev",
            "no /dev/null: `2>/dev/null` and `cmd &` fail".into(),
        ),
    };

    let terminal = match facts.terminal {
        Some(true) => check(
            true,
            "Own terminal",
            "stdin is a pty of the container's own devpts".into(),
        ),
        Some(false) => check(
            false,
            "Own terminal",
            "stdin is the host's terminal: no job control inside".into(),
        ),
        None => check(
            false,
            "Own terminal",
            "stdin is not a terminal (a pipe or a file)".into(),
        ),
    };

    let few = facts.bounding_set <= DEFAULT_CAPABILITIES;
    let privilege = if few && facts.no_new_privs && facts.seccomp_filter {
        check(
            true,
            "Least privilege",
            format!(
                "{} capabilities, no_new_privs, a seccomp filter",
                facts.bounding_set
            ),
        )
    } else {
        let mut missing = Vec::new();
        if !few {
            missing.push(format!("{} capabilities", facts.bounding_set));
        }
        if !facts.no_new_privs {
            missing.push("no no_new_privs".to_string());
        }
        if !facts.seccomp_filter {
            missing.push("no seccomp filter".to_string());
        }
        check(false, "Least privilege", missing.join(", "))
    };

    vec![
        rootless, hostname, pid1, root, proc, old_root, image, network, dev, terminal, privilege,
    ]
}

/// The lines a step shows: the talk's five, then every line up to the last one ticked, and
/// the next one (unticked: the next step's lesson).
pub fn visible(checks: &[Check]) -> &[Check] {
    let ticked = checks
        .iter()
        .rposition(|check| check.ok)
        .map_or(0, |last| last + 1);
    let shown = (ticked + 1).max(TALK_LINES).min(checks.len());
    &checks[..shown]
}

/// Renders the checklist, one line per check.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::from("Container checklist\n");
    for check in checks {
        let mark = if check.ok { "✅" } else { "❌" };
        let line = format!("  {mark} {:<26}{}", check.name, check.detail);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What step 05 sees, rootless, as uid 1000 on the host.
    fn container() -> Facts {
        Facts {
            uid: 0,
            uid_map: "         0       1000          1\n".into(),
            new_user_ns: true,
            new_uts_ns: true,
            hostname: "my-container".into(),
            pid: 1,
            new_pid_ns: true,
            new_root: true,
            proc_self: Some(1),
            host_root_reachable: Some(false),
            host_root_mounted: None,
            root_fs: Some((
                "overlay".into(),
                "rw,lowerdir=/r,upperdir=/u,workdir=/w".into(),
            )),
            new_net_ns: true,
            interfaces: vec!["lo".into()],
            addresses: vec![("lo".into(), "127.0.0.1/8".into())],
            default_route: None,
            dev_fs: Some("tmpfs".into()),
            devpts_fs: Some("devpts".into()),
            dev_null: true,
            terminal: Some(true),
            bounding_set: 11,
            no_new_privs: true,
            seccomp_filter: true,
        }
    }

    fn oks(facts: &Facts) -> Vec<bool> {
        evaluate(facts).iter().map(|c| c.ok).collect()
    }

    #[test]
    fn a_full_rootless_container_ticks_every_line() {
        let checks = evaluate(&container());
        assert_eq!(oks(&container()), [true; 11]);
        assert_eq!(visible(&checks).len(), 11);
        assert_eq!(
            checks[0].detail,
            "uid 0 inside is unprivileged uid 1000 outside (uid_map)"
        );
    }

    #[test]
    fn the_host_itself_ticks_nothing() {
        let host = Facts {
            uid: 1000,
            uid_map: "0 0 4294967295\n".into(),
            new_user_ns: false,
            new_uts_ns: false,
            hostname: "laptop".into(),
            pid: 4242,
            new_pid_ns: false,
            new_root: false,
            proc_self: Some(4242),
            host_root_reachable: Some(true),
            host_root_mounted: Some("/".into()),
            root_fs: Some(("ext4".into(), "rw".into())),
            new_net_ns: false,
            interfaces: vec!["lo".into(), "eth0".into()],
            addresses: vec![("eth0".into(), "192.168.1.7/24".into())],
            default_route: Some("eth0".into()),
            dev_fs: Some("devtmpfs".into()),
            devpts_fs: Some("devpts".into()),
            dev_null: true,
            terminal: Some(false),
            bounding_set: 41,
            no_new_privs: false,
            seccomp_filter: false,
        };
        assert_eq!(oks(&host), [false; 11]);
        assert_eq!(visible(&evaluate(&host)).len(), 5);
        let checks = evaluate(&host);
        assert_eq!(checks[2].detail, "pid 4242 in the host's PID namespace");
        // /proc/self matches getpid() on the host too: that alone proves nothing.
        assert_eq!(checks[4].detail, "/proc still shows the host's processes");
    }

    #[test]
    fn real_root_is_never_rootless() {
        // sudo, no user namespace (step 01 under sudo)
        let sudo = Facts {
            uid: 0,
            uid_map: "0 0 4294967295\n".into(),
            new_user_ns: false,
            ..container()
        };
        assert!(!evaluate(&sudo)[0].ok);
        // sudo, with a user namespace mapping 0 to 0 (step 02 under sudo)
        let sudo_userns = Facts {
            uid_map: "0 0 1\n".into(),
            ..container()
        };
        let check = &evaluate(&sudo_userns)[0];
        assert!(!check.ok);
        assert!(check.detail.contains("real root"), "{}", check.detail);
    }

    #[test]
    fn a_new_pid_namespace_without_fork_is_not_pid_1() {
        // unshare(CLONE_NEWPID) changes pid_for_children, not our own PID namespace
        let facts = Facts {
            pid: 4242,
            new_pid_ns: false,
            proc_self: Some(4242),
            ..container()
        };
        let checks = evaluate(&facts);
        assert!(!checks[2].ok);
        assert!(!checks[4].ok);
    }

    #[test]
    fn the_hosts_proc_after_fork_is_not_our_own() {
        // step 03: PID 1 in a new namespace, but /proc is still the host's
        let facts = Facts {
            proc_self: Some(4243),
            new_root: false,
            ..container()
        };
        assert_eq!(oks(&facts)[..5], [true, true, true, false, false]);
    }

    #[test]
    fn no_proc_mounted_is_reported() {
        let facts = Facts {
            proc_self: None,
            ..container()
        };
        let checks = evaluate(&facts);
        assert!(!checks[4].ok);
        assert!(checks[4].detail.starts_with("no procfs"));
    }

    #[test]
    fn each_step_shows_the_line_it_ticks_and_the_next() {
        // step 05: chroot and a procfs, the talk's five lines are ticked
        let step_05 = Facts {
            dev_fs: None,
            devpts_fs: None,
            dev_null: false,
            terminal: None,
            host_root_reachable: Some(true),
            root_fs: None,
            new_net_ns: false,
            interfaces: vec!["lo".into(), "eth0".into()],
            bounding_set: 41,
            no_new_privs: false,
            seccomp_filter: false,
            ..container()
        };
        let checks = evaluate(&step_05);
        let shown = visible(&checks);
        assert_eq!(shown.len(), 6, "{shown:?}");
        assert!(!shown[5].ok);
        assert!(
            shown[5].detail.contains("chroot escape"),
            "{}",
            shown[5].detail
        );
        // step 06: pivot_root ticks the sixth line and shows the seventh
        let step_06 = Facts {
            host_root_reachable: Some(false),
            root_fs: Some(("ext4".into(), "rw".into())),
            ..step_05.clone()
        };
        let checks = evaluate(&step_06);
        assert_eq!(
            visible(&checks).iter().map(|c| c.ok).collect::<Vec<_>>(),
            [true, true, true, true, true, true, false]
        );
        // step 07: the overlay ticks the seventh line; the network is still the host's
        let step_07 = Facts {
            root_fs: container().root_fs,
            ..step_06
        };
        let checks = evaluate(&step_07);
        assert_eq!(visible(&checks).len(), 8);
        // step 09, not on a terminal: own /dev, and "Own terminal" unticked
        let step_09 = Facts {
            terminal: None,
            bounding_set: 41,
            no_new_privs: false,
            seccomp_filter: false,
            ..container()
        };
        let step_09 = evaluate(&step_09);
        assert_eq!(visible(&step_09).len(), 10);
        assert!(step_09[8].ok && !step_09[9].ok);
        assert_eq!(
            checks[7].detail,
            "shares the host's network: its interfaces, its ports"
        );
        // step 03: no new root, the talk's five lines only
        let step_03 = Facts {
            new_root: false,
            host_root_reachable: Some(true),
            proc_self: Some(4243),
            ..step_05
        };
        assert_eq!(visible(&evaluate(&step_03)).len(), 5);
    }

    #[test]
    fn an_old_root_kept_at_a_path_is_not_out_of_reach() {
        // pivot_root(root, root/.oldroot) without the umount: `..` stops at our /, but the
        // host's whole tree is one path away.
        let facts = Facts {
            host_root_reachable: Some(false),
            host_root_mounted: Some("/.oldroot".into()),
            ..container()
        };
        let check = &evaluate(&facts)[5];
        assert!(!check.ok);
        assert_eq!(
            check.detail,
            "still mounted at /.oldroot: the old root was not detached (mountinfo)"
        );
    }

    #[test]
    fn step_10_on_a_terminal_shows_least_privilege_next_and_step_11_ticks_it() {
        let step_10 = Facts {
            bounding_set: 41,
            no_new_privs: false,
            seccomp_filter: false,
            ..container()
        };
        let checks = evaluate(&step_10);
        let shown = visible(&checks);
        assert_eq!(shown.len(), 11);
        assert_eq!(
            (shown[10].ok, shown[10].detail.as_str()),
            (false, "41 capabilities, no no_new_privs, no seccomp filter")
        );
        // Without a terminal, step 10's last line is "Own terminal", unticked.
        let piped = Facts {
            terminal: None,
            ..step_10
        };
        assert_eq!(visible(&evaluate(&piped)).len(), 10);
        // Step 11 without a terminal: every line, "Own terminal" unticked.
        let step_11 = Facts {
            terminal: None,
            ..container()
        };
        let checks = evaluate(&step_11);
        assert_eq!(visible(&checks).len(), 11);
        assert!(!checks[9].ok && checks[10].ok);
        assert_eq!(
            checks[10].detail,
            "11 capabilities, no_new_privs, a seccomp filter"
        );
    }

    #[test]
    fn least_privilege_needs_few_capabilities_no_new_privs_and_a_filter() {
        for (bounding_set, no_new_privs, seccomp_filter, detail) in [
            (15, true, true, "15 capabilities"),
            (11, false, true, "no no_new_privs"),
            (11, true, false, "no seccomp filter"),
        ] {
            let facts = Facts {
                bounding_set,
                no_new_privs,
                seccomp_filter,
                ..container()
            };
            let check = &evaluate(&facts)[10];
            assert_eq!((check.ok, check.detail.as_str()), (false, detail));
        }
        let docker = Facts {
            bounding_set: 14,
            ..container()
        };
        assert!(evaluate(&docker)[10].ok);
    }

    #[test]
    fn own_network_with_a_way_out_needs_an_address_and_the_default_route() {
        // step 12: lo, and tap0 from slirp4netns, configured
        let step_12 = Facts {
            interfaces: vec!["lo".into(), "tap0".into()],
            addresses: vec![
                ("lo".into(), "127.0.0.1/8".into()),
                ("tap0".into(), "10.0.2.100/24".into()),
            ],
            default_route: Some("tap0".into()),
            ..container()
        };
        let check = &evaluate(&step_12)[7];
        assert_eq!(
            (check.ok, check.detail.as_str()),
            (
                true,
                "own network namespace: lo, and tap0 10.0.2.100/24 (default route)"
            )
        );
        // The tap device, but never configured (slirp4netns without --configure).
        let bare = Facts {
            addresses: vec![("lo".into(), "127.0.0.1/8".into())],
            default_route: None,
            ..step_12.clone()
        };
        let check = &evaluate(&bare)[7];
        assert_eq!(
            (check.ok, check.detail.as_str()),
            (
                false,
                "own network namespace, with lo, tap0, but no address with the default route"
            )
        );
        // A default route through lo is no way out.
        let lo_only_route = Facts {
            default_route: Some("lo".into()),
            ..bare
        };
        assert!(!evaluate(&lo_only_route)[7].ok);
    }

    #[test]
    fn an_overlay_without_an_upper_layer_does_not_count() {
        let facts = Facts {
            root_fs: Some(("overlay".into(), "ro,lowerdir=/a:/b".into())),
            ..container()
        };
        assert!(!evaluate(&facts)[6].ok);
    }

    #[test]
    fn uid_map_lookup() {
        assert_eq!(outside_uid("0 1000 1", 0), Some(1000));
        assert_eq!(outside_uid("0 1000 1", 1), None);
        assert_eq!(outside_uid("0 100000 65536\n", 42), Some(100_042));
        assert_eq!(outside_uid("0 0 4294967295", 1000), Some(1000));
        assert_eq!(outside_uid("", 0), None);
        assert_eq!(outside_uid("garbage", 0), None);
    }

    #[test]
    fn render_aligns_and_trims() {
        let text = render(&evaluate(&container()));
        assert!(text.starts_with("Container checklist\n"));
        assert!(text.contains("  ✅ Believes it is PID 1\n"), "{text}");
        assert!(
            text.contains("  ✅ Isolated hostname         own UTS namespace"),
            "{text}"
        );
        assert!(text.lines().all(|line| line == line.trim_end()));
    }
}
