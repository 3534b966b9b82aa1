//! What a step *did*: its system calls, as strace(1) records them, against the solution's.
//!
//! A learner's error messages are their own words; the system calls are not. `just check`
//! runs the learner's step and the solution under `strace -f`, keeps the calls a lesson is
//! about (unshare and its flags, the writes to uid_map/setgroups/gid_map, fork, prctl,
//! mount and its flags, chroot, pivot_root, umount2, the terminal's calls, execve), and
//! compares them process by process. What differs becomes a finding in plain words, which
//! is also what a step's HINTS.md matches (`never X`, `X failed: ERRNO`, `X before Y`), and
//! the two sequences are shown side by side where they differ.
//!
//! The steps' own probe, procinfo, makes calls of its own (the chroot escape it tries):
//! everything between its reading of `self/ns/user` and its `[Before Isolation]` or
//! `[After Isolation]` block is left out.

use std::collections::HashMap;
use std::fmt::Write as _;

/// One call that matters, in a form that compares across runs: `key` names the call and
/// what it acts on, with the run's own paths made neutral (`rootfs/proc`); `detail` is the
/// rest (flags, what was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub key: String,
    pub detail: String,
    /// The errno name when the call failed.
    pub error: Option<String>,
}

impl Event {
    fn shown(&self) -> String {
        let mut shown = self.key.clone();
        if !self.detail.is_empty() {
            shown.push(' ');
            shown.push_str(&self.detail);
        }
        if let Some(error) = &self.error {
            shown.push_str(" = ");
            shown.push_str(error);
        }
        shown
    }
}

/// The calls of one run, per process: `[0]` is the step itself, `[1]` the first child it
/// forked (PID 1 of the container from step 03 on), and so on, each up to its exec of the
/// command.
#[derive(Debug, Default, Clone)]
pub struct Trace {
    pub processes: Vec<Vec<Event>>,
}

/// The system calls `just check` asks strace for (`-e trace=`).
pub const TRACED: &str = "unshare,clone,clone3,fork,vfork,write,sethostname,prctl,rt_sigaction,\
                          mount,umount2,pivot_root,chroot,chdir,execve,readlinkat,wait4,\
                          socketpair,sendmsg,recvmsg,setsid,ioctl,openat,capset,seccomp";

/// The event of a process its seccomp filter killed (strace: `+++ killed by SIGSYS +++`).
pub const KILLED_BY_FILTER: &str = "killed by its own seccomp filter (SIGSYS)";

/// One line of strace's output, its unfinished and resumed halves put together.
#[derive(Debug)]
struct Call {
    pid: i32,
    name: String,
    args: Vec<String>,
    ret: String,
}

impl Call {
    fn arg(&self, n: usize) -> &str {
        self.args.get(n).map_or("", String::as_str)
    }

    /// The pid of the process this call created, if it forked one (not a thread).
    fn forked(&self) -> Option<i32> {
        let forks = matches!(self.name.as_str(), "clone" | "clone3" | "fork" | "vfork");
        let thread = self.args.iter().any(|arg| arg.contains("CLONE_THREAD"));
        if forks && !thread {
            self.ret.trim().parse().ok()
        } else {
            None
        }
    }

    fn failed(&self) -> Option<String> {
        let ret = self.ret.trim();
        ret.strip_prefix("-1 ")
            .map(|rest| rest.split(' ').next().unwrap_or_default().to_string())
    }
}

/// Reads `strace -f -o FILE` output. `sandbox` is the directory the run happened in: paths
/// under it are shown relative to it.
pub fn parse(text: &str, sandbox: &str) -> Trace {
    let calls = calls(text);
    let Some(top) = calls.first().map(|call| call.pid) else {
        return Trace::default();
    };
    // Who forked whom, and when each process exec'd its command (the step's own first exec
    // aside): strace may print a child's first calls before its parent's return from clone.
    let mut parent_of: HashMap<i32, (i32, usize)> = HashMap::new();
    let mut exec_at: HashMap<i32, usize> = HashMap::new();
    let mut step_started = false;
    for (at, call) in calls.iter().enumerate() {
        if let Some(child) = call.forked() {
            parent_of.insert(child, (call.pid, at));
        }
        if call.name == "execve" && call.failed().is_none() {
            if call.pid == top && !step_started {
                step_started = true;
            } else {
                exec_at.entry(call.pid).or_insert(at);
            }
        }
    }
    // The step's processes: the step, and what it forked before exec'ing a command, in the
    // order they were forked. What a command forks is the command's business.
    let mut order: Vec<i32> = vec![top];
    let mut forks: Vec<(usize, i32)> = parent_of
        .iter()
        .map(|(child, (_, at))| (*at, *child))
        .collect();
    forks.sort();
    for (at, child) in forks {
        let Some((parent, _)) = parent_of.get(&child) else {
            continue;
        };
        let before_exec = exec_at.get(parent).is_none_or(|exec| at < *exec);
        if order.contains(parent) && before_exec {
            order.push(child);
        }
    }
    let mut processes: Vec<Vec<Event>> = vec![Vec::new(); order.len()];
    let mut in_procinfo: HashMap<i32, bool> = HashMap::new();
    for (at, call) in calls.iter().enumerate() {
        let Some(index) = order.iter().position(|pid| *pid == call.pid) else {
            continue;
        };
        if exec_at.get(&call.pid).is_some_and(|exec| at > *exec) {
            continue;
        }
        if call.pid == top
            && call.name == "execve"
            && !calls[..at].iter().any(|c| c.name == "execve")
        {
            continue; // the step itself starting
        }
        // procinfo's own calls, between reading self/ns/user and printing its block.
        let procinfo = in_procinfo.entry(call.pid).or_insert(false);
        if call.name == "readlinkat" && call.arg(1) == "\"self/ns/user\"" {
            *procinfo = true;
            continue;
        }
        if *procinfo {
            if call.name == "write"
                && (call.arg(1).starts_with("\"[Before Isolation]")
                    || call.arg(1).starts_with("\"[After Isolation]"))
            {
                *procinfo = false;
            }
            continue;
        }
        for event in events(call, sandbox) {
            let list = &mut processes[index];
            // execvp(3) tries each directory of PATH: one event, the last try's result.
            // Consecutive rt_sigaction calls: one event naming every signal caught; consecutive
            // PR_CAPBSET_DROPs: one event.
            match list.last_mut() {
                Some(last) if last.key == "execve" && event.key == "execve" => *last = event,
                Some(last) if last.key == event.key && event.key == "prctl(PR_CAPBSET_DROP)" => {
                    last.error = last.error.take().or(event.error);
                }
                Some(last)
                    if last.key.starts_with("rt_sigaction(")
                        && event.key.starts_with("rt_sigaction(")
                        && last.error.is_none() =>
                {
                    let signal = event.key.trim_start_matches("rt_sigaction(");
                    last.key = format!("{} {signal}", last.key.trim_end_matches(')'));
                }
                _ => list.push(event),
            }
        }
    }
    while processes.len() > 1 && processes.last().is_some_and(Vec::is_empty) {
        processes.pop();
    }
    Trace { processes }
}

/// The calls of strace's output, in order.
fn calls(text: &str) -> Vec<Call> {
    let mut unfinished: HashMap<i32, String> = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("+++ killed by SIGSYS") {
            // A filter's kill action (step 11): the process ends in the middle of a call.
            out.push(Call {
                pid,
                name: "killed".into(),
                args: Vec::new(),
                ret: "-1 SIGSYS".into(),
            });
            continue;
        }
        let whole = if let Some(start) = rest.strip_suffix(" <unfinished ...>") {
            unfinished.insert(pid, start.to_string());
            continue;
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            format!("{}{tail}", unfinished.remove(&pid).unwrap_or_default())
        } else {
            rest.to_string()
        };
        if let Some(call) = call(pid, &whole) {
            out.push(call);
        }
    }
    out
}

/// `name(args) = ret`.
fn call(pid: i32, text: &str) -> Option<Call> {
    let (name, rest) = text.split_once('(')?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let (args, ret) = rest.rsplit_once(" = ")?;
    let args = args.trim_end().strip_suffix(')')?;
    Some(Call {
        pid,
        name: name.to_string(),
        args: split_args(args),
        ret: ret.to_string(),
    })
}

/// Splits strace's argument list at its top-level commas (not those inside quotes, braces or
/// brackets).
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let (mut quoted, mut escaped) = (false, false);
    let mut current = String::new();
    for c in args.chars() {
        if quoted {
            current.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// A path as the learner knows it: relative to the sandbox, `/proc/PID/` as `/proc/self/`,
/// and a step's scratch directory (`bento-step-07-overlay-123-AbC123`) as `<scratch>`.
fn neutral(path: &str, sandbox: &str) -> String {
    let path = path.trim_matches('"');
    let path = match path.strip_prefix(sandbox) {
        Some(inside) => inside.trim_start_matches('/'),
        None => path,
    };
    let parts: Vec<String> = path
        .split('/')
        .enumerate()
        .map(|(at, part)| {
            if part.starts_with("bento-") {
                "<scratch>".to_string()
            } else if at == 2 && path.starts_with("/proc/") && part.parse::<u32>().is_ok() {
                "self".to_string()
            } else {
                part.to_string()
            }
        })
        .collect();
    match parts.join("/") {
        empty if empty.is_empty() => ".".to_string(),
        path => path,
    }
}

/// The path in an fd argument decoded by `strace -y`: `4</proc/12/uid_map>`.
fn fd_path(arg: &str) -> Option<&str> {
    arg.split_once('<')?.1.strip_suffix('>')
}

/// The signals whose handlers matter: the ones a supervisor forwards, its alarm, and the
/// terminal's resize.
const CAUGHT: [&str; 6] = [
    "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGALRM", "SIGWINCH",
];

/// The events a call makes: none for the calls that do not matter.
fn events(call: &Call, sandbox: &str) -> Vec<Event> {
    let event = |key: String, detail: String| Event {
        key,
        detail,
        error: call.failed(),
    };
    match call.name.as_str() {
        // One event per namespace, the user namespace first: the kernel creates it first
        // when the flags come together (unshare(2)).
        "unshare" => {
            let mut flags: Vec<&str> = call.arg(0).split('|').collect();
            flags.sort_by_key(|flag| *flag != "CLONE_NEWUSER");
            flags
                .into_iter()
                .map(|flag| event(format!("unshare({flag})"), String::new()))
                .collect()
        }
        "write" => {
            let path = fd_path(call.arg(0)).map(|path| neutral(path, sandbox));
            match path {
                Some(path)
                    if path.starts_with("/proc/self/")
                        && ["uid_map", "gid_map", "setgroups"]
                            .iter()
                            .any(|file| path.ends_with(file)) =>
                {
                    vec![event(format!("write {path}"), call.arg(1).to_string())]
                }
                _ => vec![],
            }
        }
        "sethostname" => vec![event("sethostname".into(), call.arg(0).to_string())],
        "rt_sigaction" => {
            let signal = call.arg(0);
            let handler = call.arg(1);
            let installs = handler.starts_with("{sa_handler=0x");
            if installs && CAUGHT.contains(&signal) {
                vec![event(format!("rt_sigaction({signal})"), String::new())]
            } else {
                vec![]
            }
        }
        "clone" | "clone3" | "fork" | "vfork" if call.forked().is_some() => {
            vec![event("fork".into(), String::new())]
        }
        "prctl" if call.arg(0) == "PR_SET_PDEATHSIG" => vec![event(
            "prctl(PR_SET_PDEATHSIG)".into(),
            call.arg(1).to_string(),
        )],
        // Step 11: the bounding set, one call per capability until the kernel says EINVAL
        // (past its last one): one event, and that EINVAL is no failure.
        "prctl" if call.arg(0) == "PR_CAPBSET_DROP" => vec![Event {
            key: "prctl(PR_CAPBSET_DROP)".into(),
            detail: String::new(),
            error: call.failed().filter(|error| error != "EINVAL"),
        }],
        "prctl" if ["PR_SET_NO_NEW_PRIVS", "PR_CAP_AMBIENT"].contains(&call.arg(0)) => {
            vec![event(format!("prctl({})", call.arg(0)), String::new())]
        }
        "capset" | "seccomp" => vec![event(call.name.clone(), String::new())],
        "killed" => vec![event(KILLED_BY_FILTER.into(), String::new())],
        "mount" => {
            let (source, target) = (call.arg(0), neutral(call.arg(1), sandbox));
            let (fstype, flags) = (call.arg(2).trim_matches('"'), call.arg(3));
            let propagation = ["MS_PRIVATE", "MS_SHARED", "MS_SLAVE", "MS_UNBINDABLE"]
                .iter()
                .any(|kind| flags.contains(kind));
            if propagation {
                vec![event(format!("mount({flags}) {target}"), String::new())]
            } else if flags.contains("MS_BIND") {
                vec![event(
                    format!("mount(bind) {target}"),
                    format!("from {} ({flags})", neutral(source, sandbox)),
                )]
            } else {
                vec![event(
                    format!("mount({fstype})"),
                    format!("on {target} ({flags})"),
                )]
            }
        }
        "umount2" => vec![event(
            format!("umount2({})", neutral(call.arg(0), sandbox)),
            call.arg(1).to_string(),
        )],
        "pivot_root" => vec![event(
            "pivot_root".into(),
            format!(
                "{}, {}",
                neutral(call.arg(0), sandbox),
                neutral(call.arg(1), sandbox)
            ),
        )],
        "chroot" => vec![event("chroot".into(), neutral(call.arg(0), sandbox))],
        "chdir" => vec![event(
            format!("chdir({})", neutral(call.arg(0), sandbox)),
            String::new(),
        )],
        "execve" => vec![event("execve".into(), neutral(call.arg(0), sandbox))],
        "wait4" => vec![event("waitpid".into(), String::new())],
        "socketpair" | "sendmsg" | "recvmsg" | "setsid" => {
            vec![event(call.name.clone(), String::new())]
        }
        "ioctl" => {
            let request = call.arg(1);
            match request {
                "TIOCSCTTY" | "TIOCSWINSZ" | "SIOCSIFFLAGS" => {
                    vec![event(format!("ioctl({request})"), String::new())]
                }
                "TCSETS" | "TCSETSW" | "TCSETSF" => {
                    vec![event("tcsetattr".into(), String::new())]
                }
                _ => vec![],
            }
        }
        "openat" if call.arg(1) == "\"/dev/ptmx\"" => {
            vec![event("open /dev/ptmx".into(), String::new())]
        }
        _ => vec![],
    }
}

/// How a learner's run compares with the solution's.
#[derive(Debug, Default)]
pub struct Comparison {
    /// What differs, one line each (`never X`, `X failed: EPERM`, `X before Y, Z`).
    pub findings: Vec<String>,
    /// Every pairwise form of the findings (`X before Z` too), for HINTS.md to match.
    pub keys: Vec<String>,
    /// The two runs side by side, around what differs.
    pub table: String,
    /// The learner's step ended before running the command, and none of its calls failed:
    /// it stopped in its own code (a panic, a `todo!()`), and what it did not do after that
    /// says nothing. The findings are empty then.
    pub stopped_in_its_code: bool,
}

/// What a process is called in the findings.
fn process_name(process: usize) -> String {
    match process {
        0 => "the parent".into(),
        1 => "the child".into(),
        n => format!("child {n}"),
    }
}

/// Compares the learner's run with the solution's, process by process.
pub fn compare(yours: &Trace, solution: &Trace) -> Comparison {
    let mut comparison = Comparison::default();
    let all = |trace: &Trace| trace.processes.concat();
    let ran = |trace: &Trace| {
        all(trace)
            .iter()
            .any(|event| event.key == "execve" && event.error.is_none())
    };
    let failed = all(yours).iter().any(|event| event.error.is_some());
    if ran(solution) && !ran(yours) && !failed {
        comparison.stopped_in_its_code = true;
        return comparison;
    }
    let count = yours.processes.len().max(solution.processes.len());
    let empty = Vec::new();
    for process in 0..count {
        let mine = yours.processes.get(process).unwrap_or(&empty);
        let theirs = solution.processes.get(process).unwrap_or(&empty);
        // A process the learner's step never got to fork, after a call that failed: what
        // it would have done is not a finding of its own.
        let stopped = comparison.findings.iter().any(|f| f.contains(" failed: "));
        if mine.is_empty() && stopped {
            continue;
        }
        // Where else the learner's step made each call: in another process than the
        // solution makes it.
        let elsewhere = |key: &str| {
            (0..yours.processes.len())
                .filter(|&other| other != process)
                .find(|&other| yours.processes[other].iter().any(|e| e.key == key))
        };
        let rows = align(mine, theirs);
        let before = comparison.findings.len();
        find(mine, theirs, &rows, &elsewhere, process, &mut comparison);
        if comparison.findings.len() > before || rows.iter().any(|row| !row.same()) {
            let name = match process {
                0 => "the step's own process (the parent, from step 03 on)".to_string(),
                1 => "its child (PID 1 of the container)".to_string(),
                n => format!("child {n}"),
            };
            let _ = writeln!(comparison.table, "  In {name}:");
            comparison.table.push_str(&table(mine, theirs, &rows));
        }
    }
    comparison
}

/// One row of the alignment: the learner's event and the solution's, either may be missing.
#[derive(Debug, Clone, Copy)]
struct Row {
    mine: Option<usize>,
    theirs: Option<usize>,
    /// Both there, and both succeeded or both failed alike.
    same_result: bool,
}

impl Row {
    fn same(&self) -> bool {
        self.mine.is_some() && self.theirs.is_some() && self.same_result
    }
}

/// The longest common subsequence of the two runs' keys, as rows in order.
fn align(mine: &[Event], theirs: &[Event]) -> Vec<Row> {
    let (m, t) = (mine.len(), theirs.len());
    let mut lengths = vec![vec![0usize; t + 1]; m + 1];
    for i in (0..m).rev() {
        for j in (0..t).rev() {
            lengths[i][j] = if mine[i].key == theirs[j].key {
                lengths[i + 1][j + 1] + 1
            } else {
                lengths[i + 1][j].max(lengths[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut rows = Vec::new();
    while i < m || j < t {
        if i < m && j < t && mine[i].key == theirs[j].key {
            rows.push(Row {
                mine: Some(i),
                theirs: Some(j),
                same_result: mine[i].error == theirs[j].error,
            });
            i += 1;
            j += 1;
        } else if j < t && (i == m || lengths[i][j + 1] >= lengths[i + 1][j]) {
            rows.push(Row {
                mine: None,
                theirs: Some(j),
                same_result: false,
            });
            j += 1;
        } else {
            rows.push(Row {
                mine: Some(i),
                theirs: None,
                same_result: false,
            });
            i += 1;
        }
    }
    rows
}

/// The findings of one process. `elsewhere(key)` says which other process of the learner's
/// run made a call, if one did.
fn find(
    mine: &[Event],
    theirs: &[Event],
    rows: &[Row],
    elsewhere: &dyn Fn(&str) -> Option<usize>,
    process: usize,
    out: &mut Comparison,
) {
    // The learner's position of each of the solution's events they made (matched or moved).
    let mut done_at: Vec<Option<usize>> = vec![None; theirs.len()];
    for row in rows {
        if let (Some(i), Some(j)) = (row.mine, row.theirs) {
            done_at[j] = Some(i);
        }
    }
    let unmatched_mine: Vec<usize> = rows
        .iter()
        .filter(|row| row.theirs.is_none())
        .filter_map(|row| row.mine)
        .collect();
    // Moved: a call of the solution made elsewhere in the learner's run.
    let mut moved: Vec<(usize, usize)> = Vec::new();
    for row in rows.iter().filter(|row| row.mine.is_none()) {
        let Some(j) = row.theirs else { continue };
        if let Some(&i) = unmatched_mine
            .iter()
            .find(|&&i| mine[i].key == theirs[j].key && !moved.iter().any(|(mi, _)| *mi == i))
        {
            moved.push((i, j));
            done_at[j] = Some(i);
        }
    }
    let mut explained: Vec<usize> = Vec::new();
    // Where the learner's run stopped, if a call failed that succeeds in the solution.
    let mut stop: Option<usize> = None;
    for (i, event) in mine.iter().enumerate() {
        let Some(error) = &event.error else { continue };
        let counterpart = rows
            .iter()
            .find(|row| row.mine == Some(i))
            .and_then(|row| row.theirs)
            .or_else(|| moved.iter().find(|(mi, _)| *mi == i).map(|(_, j)| *j));
        if counterpart.is_some_and(|j| theirs[j].error.as_ref() == Some(error)) {
            continue; // fails the same way in the solution (step 01)
        }
        out.push_finding(match event.key == KILLED_BY_FILTER {
            true => KILLED_BY_FILTER.to_string(),
            false => format!("{} failed: {error}", event.key),
        });
        // What the solution does first that had not happened yet.
        let not_yet: Vec<usize> = match counterpart {
            Some(j) => (0..j)
                .filter(|&y| done_at[y].is_none_or(|at| at > i))
                .collect(),
            None => (0..theirs.len())
                .find(|&y| done_at[y].is_none_or(|at| at > i))
                .into_iter()
                .collect(),
        };
        out.before(&event.key, &not_yet, theirs);
        explained.extend(&not_yet);
        stop.get_or_insert(counterpart.unwrap_or(0));
        break;
    }
    // Calls made in another order than the solution's.
    for &(i, j) in &moved {
        let earlier: Vec<usize> = (0..j)
            .filter(|&y| done_at[y].is_some_and(|at| at > i))
            .collect();
        out.before(&mine[i].key, &earlier, theirs);
        // And the solution's later calls that the learner made before it.
        let later: Vec<usize> = ((j + 1)..theirs.len())
            .filter(|&y| done_at[y].is_some_and(|at| at < i))
            .collect();
        out.after(&mine[i].key, &later, theirs);
        explained.push(j);
    }
    // The same call, with other arguments (another target, other flags).
    for row in rows {
        if let (Some(i), Some(j)) = (row.mine, row.theirs)
            && mine[i].detail != theirs[j].detail
            && mine[i].error.is_none()
        {
            out.push_finding(format!(
                "{} (the solution: {})",
                mine[i].shown(),
                theirs[j].shown()
            ));
        }
    }
    // Calls the solution makes and the learner's run never did (before it stopped).
    for (j, event) in theirs.iter().enumerate() {
        let reached = stop.is_none_or(|stop| j < stop);
        if done_at[j].is_none() && reached && !explained.contains(&j) {
            match elsewhere(&event.key) {
                Some(other) => out.push_finding(format!(
                    "{} in {} (the solution: in {})",
                    event.key,
                    process_name(other),
                    process_name(process)
                )),
                None => out.push_finding(format!("never {}", event.key)),
            }
        }
    }
}

impl Comparison {
    fn push_finding(&mut self, finding: String) {
        if !self.findings.contains(&finding) {
            self.keys.push(finding.clone());
            self.findings.push(finding);
        }
    }

    /// `X before Y, Z`: the learner's run made `key` before the solution's `others`.
    fn before(&mut self, key: &str, others: &[usize], theirs: &[Event]) {
        if others.is_empty() {
            return;
        }
        let names: Vec<&str> = others.iter().map(|&y| theirs[y].key.as_str()).collect();
        for name in &names {
            self.keys.push(format!("{key} before {name}"));
        }
        self.push_finding(format!(
            "{key} before {} (the solution makes {} first)",
            names.join(", "),
            if names.len() == 1 { "that" } else { "those" }
        ));
    }
}

impl Comparison {
    /// `Y, Z before X`: the learner's run made the solution's later calls `others` before
    /// `key`.
    fn after(&mut self, key: &str, others: &[usize], theirs: &[Event]) {
        if others.is_empty() {
            return;
        }
        let names: Vec<&str> = others.iter().map(|&y| theirs[y].key.as_str()).collect();
        for name in &names {
            self.keys.push(format!("{name} before {key}"));
        }
        self.push_finding(format!(
            "{} before {key} (the solution makes {key} first)",
            names.join(", ")
        ));
    }
}

/// The two runs side by side: the rows that differ, with one row of context around them.
fn table(mine: &[Event], theirs: &[Event], rows: &[Row]) -> String {
    const WIDTH: usize = 44;
    let cell = |event: Option<&Event>| -> String {
        let text = event.map_or(String::new(), Event::shown);
        let mut text: String = text.chars().take(WIDTH).collect();
        if event.is_some_and(|e| e.shown().chars().count() > WIDTH) {
            text.pop();
            text.push('…');
        }
        text
    };
    let mut out = String::new();
    let _ = writeln!(out, "      {:<WIDTH$}  the solution", "yours");
    let differs: Vec<bool> = rows.iter().map(|row| !row.same()).collect();
    let near = |at: usize| {
        (at.saturating_sub(1)..=(at + 1).min(rows.len().saturating_sub(1))).any(|k| differs[k])
    };
    let mut skipped = false;
    for (at, row) in rows.iter().enumerate() {
        if !near(at) {
            if !skipped {
                let _ = writeln!(out, "      ⋮");
            }
            skipped = true;
            continue;
        }
        skipped = false;
        let mark = if differs[at] { "❌" } else { "  " };
        let mine = cell(row.mine.map(|i| &mine[i]));
        let theirs = cell(row.theirs.map(|j| &theirs[j]));
        let _ = writeln!(
            out,
            "   {mark} {:<WIDTH$}  {}",
            if mine.is_empty() { "·" } else { &mine },
            if theirs.is_empty() { "·" } else { &theirs }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What strace printed for step 03's solution (trimmed), as nobody.
    const STEP_03: &str = r#"4719  execve("./step-03-pid", ["./step-03-pid", "true"], 0x7ffc /* 40 vars */) = 0
4719  rt_sigaction(SIGPIPE, {sa_handler=SIG_IGN, sa_mask=[PIPE], sa_flags=SA_RESTORER|SA_RESTART, sa_restorer=0x7f}, {sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}, 8) = 0
4719  readlinkat(3</proc>, "self/ns/user", "user:[4026531837]", 4096) = 17
4719  readlinkat(3</proc>, "self/ns/uts", "uts:[4026531838]", 4096) = 16
4719  write(2</dev/pts/1>, "[Before Isolation]\nuid [65534]\n", 31) = 31
4719  unshare(CLONE_NEWUSER)            = 0
4719  write(4</proc/4719/uid_map>, "0 65534 1", 9) = 9
4719  write(4</proc/4719/setgroups>, "deny", 4) = 4
4719  write(4</proc/4719/gid_map>, "0 65534 1", 9) = 9
4719  unshare(CLONE_NEWUTS)             = 0
4719  sethostname("my-container", 12)   = 0
4719  unshare(CLONE_NEWPID)             = 0
4719  rt_sigaction(SIGINT, {sa_handler=0x55f7c47e8490, sa_mask=[], sa_flags=SA_RESTORER|SA_RESTART|SA_SIGINFO, sa_restorer=0x7f}, {sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}, 8) = 0
4719  rt_sigaction(SIGTERM, {sa_handler=0x55f7c47e8490, sa_mask=[], sa_flags=SA_RESTORER|SA_RESTART|SA_SIGINFO, sa_restorer=0x7f}, {sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}, 8) = 0
4719  clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f5ff7908a50) = 4720
4719  wait4(4720,  <unfinished ...>
4720  prctl(PR_SET_PDEATHSIG, SIGKILL)  = 0
4720  readlinkat(3</proc>, "self/ns/user", "user:[4026532174]", 4096) = 17
4720  chdir("/")                        = 0
4720  chroot("/etc")                    = 0
4720  write(2</dev/pts/1>, "[After Isolation]\nuid [0]\n", 26) = 26
4720  execve("/usr/local/bin/true", ["true"], 0x7ffe /* 40 vars */) = -1 ENOENT (No such file or directory)
4720  execve("/bin/true", ["true"], 0x7ffe /* 40 vars */) = 0
4720  clone(child_stack=NULL, flags=SIGCHLD) = 4721
4721  unshare(CLONE_NEWNS)              = 0
4719  <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 4720
"#;

    /// Step 11's child, as strace prints it: the bounding set, capset, no_new_privs, the
    /// filter, and then `ending`.
    fn step_11(ending: &str) -> String {
        format!(
            r#"1 execve("./step-11-least-privilege", ["./step-11-least-privilege", "true"], 0x1 /* 1 vars */) = 0
1 clone(child_stack=NULL, flags=SIGCHLD) = 2
2 prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH) = 0
2 prctl(PR_CAPBSET_DROP, CAP_LINUX_IMMUTABLE) = 0
2 prctl(PR_CAPBSET_DROP, 0x29 /* CAP_??? */) = -1 EINVAL (Invalid argument)
2 capset({{version=_LINUX_CAPABILITY_VERSION_3, pid=0}}, {{effective=0, permitted=0, inheritable=0}}) = 0
2 prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) = 0
2 prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) = 0
2 seccomp(SECCOMP_SET_MODE_FILTER, 0, {{len=67, filter=0x1}}) = 0
{ending}
"#
        )
    }

    #[test]
    fn least_privilege_is_traced_and_a_filter_that_kills_is_named() {
        let solution = parse(
            &step_11(r#"2 execve("/bin/true", ["true"], 0x1 /* 1 vars */) = 0"#),
            "/tmp/sandbox",
        );
        assert_eq!(
            keys(&solution.processes[1]),
            [
                "prctl(PR_CAPBSET_DROP)",
                "capset",
                "prctl(PR_CAP_AMBIENT)",
                "prctl(PR_SET_NO_NEW_PRIVS)",
                "seccomp",
                "execve"
            ],
            "{solution:?}"
        );
        assert!(solution.processes[1].iter().all(|e| e.error.is_none()));
        // Killed by its own filter: said so, not taken for a panic.
        let killed = parse(&step_11("2 +++ killed by SIGSYS +++"), "/tmp/sandbox");
        let comparison = compare(&killed, &solution);
        assert!(!comparison.stopped_in_its_code, "{comparison:?}");
        assert!(
            comparison
                .findings
                .iter()
                .any(|f| f == "killed by its own seccomp filter (SIGSYS)"),
            "{comparison:?}"
        );
        // No bounding set dropped: named.
        let text = step_11(r#"2 execve("/bin/true", ["true"], 0x1 /* 1 vars */) = 0"#);
        let text: String = text
            .lines()
            .filter(|line| !line.contains("PR_CAPBSET_DROP"))
            .map(|line| format!("{line}\n"))
            .collect();
        let comparison = compare(&parse(&text, "/tmp/sandbox"), &solution);
        assert!(
            comparison
                .findings
                .iter()
                .any(|f| f.contains("prctl(PR_CAPBSET_DROP)")),
            "{comparison:?}"
        );
    }

    fn keys(events: &[Event]) -> Vec<&str> {
        events.iter().map(|event| event.key.as_str()).collect()
    }

    #[test]
    fn the_calls_that_matter_per_process() {
        let trace = parse(STEP_03, "/tmp/sandbox");
        assert_eq!(trace.processes.len(), 2, "{trace:?}");
        assert_eq!(
            keys(&trace.processes[0]),
            [
                "unshare(CLONE_NEWUSER)",
                "write /proc/self/uid_map",
                "write /proc/self/setgroups",
                "write /proc/self/gid_map",
                "unshare(CLONE_NEWUTS)",
                "sethostname",
                "unshare(CLONE_NEWPID)",
                "rt_sigaction(SIGINT SIGTERM)",
                "fork",
                "waitpid",
            ]
        );
        // procinfo's chroot escape is left out; the command's own fork too.
        assert_eq!(
            keys(&trace.processes[1]),
            ["prctl(PR_SET_PDEATHSIG)", "execve"]
        );
        assert_eq!(trace.processes[1][1].error, None, "the last try counts");
    }

    fn run(events: &[(&str, Option<&str>)]) -> Trace {
        let events = events
            .iter()
            .map(|(key, error)| Event {
                key: key.to_string(),
                detail: String::new(),
                error: error.map(str::to_string),
            })
            .collect();
        Trace {
            processes: vec![events],
        }
    }

    const SOLUTION: [(&str, Option<&str>); 6] = [
        ("unshare(CLONE_NEWUSER)", None),
        ("write /proc/self/uid_map", None),
        ("write /proc/self/setgroups", None),
        ("write /proc/self/gid_map", None),
        ("unshare(CLONE_NEWUTS)", None),
        ("sethostname", None),
    ];

    #[test]
    fn a_missing_call_is_named() {
        let mut mine = SOLUTION.to_vec();
        mine.remove(3);
        let comparison = compare(&run(&mine), &run(&SOLUTION));
        assert_eq!(comparison.findings, ["never write /proc/self/gid_map"]);
        assert!(comparison.table.contains("❌"), "{}", comparison.table);
    }

    #[test]
    fn a_call_made_too_early_is_named_with_what_should_come_first() {
        // The UTS namespace first: refused, and nothing after it happens.
        let mine = [("unshare(CLONE_NEWUTS)", Some("EPERM"))];
        let comparison = compare(&run(&mine), &run(&SOLUTION));
        assert_eq!(
            comparison.findings[..2],
            [
                "unshare(CLONE_NEWUTS) failed: EPERM",
                "unshare(CLONE_NEWUTS) before unshare(CLONE_NEWUSER), write \
                 /proc/self/uid_map, write /proc/self/setgroups, write /proc/self/gid_map (the \
                 solution makes those first)"
            ]
        );
        assert_eq!(comparison.findings.len(), 2, "{:?}", comparison.findings);
        assert!(
            comparison
                .keys
                .contains(&"unshare(CLONE_NEWUTS) before write /proc/self/gid_map".into())
        );
        // setgroups left out: gid_map is refused.
        let mine = [
            ("unshare(CLONE_NEWUSER)", None),
            ("write /proc/self/uid_map", None),
            ("write /proc/self/gid_map", Some("EPERM")),
        ];
        let comparison = compare(&run(&mine), &run(&SOLUTION));
        assert_eq!(
            comparison.keys,
            [
                "write /proc/self/gid_map failed: EPERM",
                "write /proc/self/gid_map before write /proc/self/setgroups",
                "write /proc/self/gid_map before write /proc/self/setgroups (the solution makes \
                 that first)"
            ]
        );
    }

    #[test]
    fn calls_in_another_order_are_named() {
        let mut mine = SOLUTION.to_vec();
        mine.swap(4, 5); // sethostname before the UTS namespace, and it worked (as root)
        let comparison = compare(&run(&mine), &run(&SOLUTION));
        assert!(
            comparison
                .keys
                .iter()
                .any(|key| key == "sethostname before unshare(CLONE_NEWUTS)"),
            "{:?}",
            comparison.keys
        );
        assert!(!comparison.findings.iter().any(|f| f.starts_with("never")));
    }

    #[test]
    fn the_same_run_has_no_findings() {
        let comparison = compare(&run(&SOLUTION), &run(&SOLUTION));
        assert!(comparison.findings.is_empty());
        assert!(comparison.table.is_empty());
    }

    #[test]
    fn paths_are_made_neutral() {
        assert_eq!(neutral("\"/tmp/sb/rootfs/proc\"", "/tmp/sb"), "rootfs/proc");
        assert_eq!(
            neutral("/proc/4719/uid_map", "/tmp/sb"),
            "/proc/self/uid_map"
        );
        assert_eq!(
            neutral(
                "/tmp/sb/tmp/bento-step-07-overlay-12-AbCdEf/root",
                "/tmp/sb"
            ),
            "tmp/<scratch>/root"
        );
        assert_eq!(neutral("\".\"", "/tmp/sb"), ".");
        assert_eq!(
            split_args(r#"NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL"#),
            ["NULL", "\"/\"", "NULL", "MS_REC|MS_PRIVATE", "NULL"]
        );
        assert_eq!(
            split_args(r#"4</proc/1/uid_map>, "0 1, 2", {a=1, b=[2, 3]}"#),
            ["4</proc/1/uid_map>", "\"0 1, 2\"", "{a=1, b=[2, 3]}"]
        );
    }
}
