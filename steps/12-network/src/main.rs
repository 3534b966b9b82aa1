//! # Step 12 — network: a way out, and a way in, without root
//!
//! Step 08's network namespace holds only `lo`: nothing inside can reach anything else, and
//! nothing outside can reach a server inside. Connecting it the way the seed article does —
//! a veth pair, a bridge, iptables — takes root on the host. Rootless runtimes (podman,
//! rootlesskit) do it with a tap device in the container's namespace and a user-mode TCP/IP
//! stack outside: slirp4netns turns the container's packets into ordinary socket calls of
//! an unprivileged process on the host, and answers for the host's 127.0.0.1 at 10.0.2.2.
//! Published ports go the other way: the step listens on the host, and relays each
//! connection into the container.
//!
//! Run it: `just step 12 wget -q -O - http://10.0.2.2:PORT/` (a server on the host's
//! loopback), or `just step 12 -p 8080:80 sh -c 'echo hello > /tmp/index.html; httpd -p 80
//! -h /tmp; sh'` and, from another terminal, `wget -O - 127.0.0.1:8080`.

use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, IoSlice, IoSliceMut, IsTerminal, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::libc;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::prctl::{set_no_new_privs, set_pdeathsig};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socket, socketpair,
};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::sys::utsname::uname;
use nix::sys::wait::waitpid;
use nix::unistd::{
    ForkResult, Pid, chdir, dup2_stderr, dup2_stdin, dup2_stdout, execv, execvp, fork, getgid,
    getpid, getppid, getuid, pipe2, pivot_root, read, sethostname, setpgid, setsid, write,
};
use plumbing::Hint;

// ioctl(2) requests of netdevice(7), as nix functions (unsafe: the kernel trusts the struct).
nix::ioctl_read_bad!(get_interface_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(set_interface_flags, libc::SIOCSIFFLAGS, libc::ifreq);
// ioctl(2) requests of tty_ioctl(4): the controlling terminal, and the window size.
nix::ioctl_write_int_bad!(set_controlling_terminal, libc::TIOCSCTTY);
nix::ioctl_read_bad!(get_window_size, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, libc::winsize);

// The seccomp filter (syscall_filter) names the system-call table it was written for.
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
compile_error!("step 11's filter knows x86_64, aarch64 and riscv64: add this machine's AUDIT_ARCH");

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

/// The container, one lesson per line, in the order the kernel needs them.
fn container() -> Result<i32> {
    let (ports, command) = plumbing::ports_and_command()?;
    let rootfs = plumbing::rootfs(&command)?;
    // The overlay's writable layer: this run's directory on the host, removed at the end.
    let scratch = plumbing::Scratch::create(env!("CARGO_PKG_NAME"), &["upper", "work", "root"])?;
    let relay = fork_port_relay(&ports)?; // first: a port in use is the only thing said
    let host = procinfo::before_isolation()?;
    let helper = fork_network_helper(&scratch)?;
    let console = console_socket()?;
    enter_user_namespace()?;
    isolate_hostname("my-container")?;
    enter_network_namespace()?;
    bring_up_loopback()?;
    let _network = start_user_mode_stack(helper)?; // both stopped when dropped, at the end
    let _relay = start_port_relay(relay)?;
    match fork_pid_1()? {
        ForkResult::Parent { child } => {
            relay_terminal(console, child)?;
            let status = wait_for_container(child)?;
            scratch.print_changes(&rootfs); // its writes, deleted with `scratch` at the end
            Ok(status)
        }
        ForkResult::Child => {
            die_with_parent()?;
            isolate_mounts()?;
            let root = mount_overlay(&rootfs, &scratch)?;
            // Before pivot_into: it explains why.
            mount_proc(&root.join("proc"))?;
            mount_dev(&root)?;
            mount_devpts(&root)?;
            pivot_into(&root)?;
            attach_to_terminal(console)?;
            drop_capabilities()?;
            forbid_new_privileges()?;
            refuse_syscalls()?;
            host.after_isolation()?;
            Err(exec_command(&command))
        }
    }
}

/// Ports the host can reach: `-p HOST_PORT:CONTAINER_PORT`. A process of our own relays
/// each connection to the host's 127.0.0.1:HOST_PORT into the container. It must listen
/// on the host and connect inside, and the lesson is how: a socket belongs to the network
/// namespace it was created in (network_namespaces(7)), whoever holds it later. So the
/// listening sockets are made now, on the host (listen_on_host()), and fork(2) leaves them
/// with a helper, which joins the container's namespaces once they exist
/// (relay_from_inside()): every socket it makes from then on is made inside.
fn fork_port_relay(ports: &[plumbing::Publish]) -> Result<Option<Waiting>> {
    if ports.is_empty() {
        return Ok(None);
    }
    let listeners = listen_on_host(ports)?;
    let (wait, start) = pipe2(OFlag::O_CLOEXEC).context("pipe failed")?;
    // SAFETY: this program is still single-threaded (see fork_pid_1).
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Parent { child } => Ok(Some(Waiting { pid: child, start })),
        ForkResult::Child => relay_from_inside(wait, listeners),
    }
}

/// socket(2), bind(2), listen(2) on each host address, in the host's network namespace.
fn listen_on_host(ports: &[plumbing::Publish]) -> Result<Vec<(TcpListener, u16)>> {
    let mut listeners = Vec::new();
    for port in ports {
        let listener = TcpListener::bind(port.host);
        let hint = match listener.as_ref().map_err(std::io::Error::kind) {
            Err(ErrorKind::AddrInUse) => "another program listens there: choose another host port",
            Err(ErrorKind::PermissionDenied) => "ports below 1024 are root's: use 1024 or above",
            _ => "-p takes [IP:]HOST_PORT:CONTAINER_PORT, with an address of this host",
        };
        let listener = listener
            .with_context(|| format!("cannot publish {}", port.host))
            .hint(hint)?;
        listeners.push((listener, port.container));
    }
    Ok(listeners)
}

/// In the relay: wait until the parent is in the container's namespaces, then join them:
/// setns(2) with its /proc/PID/ns/user first (we own that user namespace, so joining it
/// gives us its capabilities), then /proc/PID/ns/net. Then a thread per port accepts
/// connections on the host's socket, and connects to 127.0.0.1:CONTAINER_PORT: the
/// container's own lo. It runs until the parent stops it, and dies with it (PDEATHSIG).
fn relay_from_inside(wait: OwnedFd, listeners: Vec<(TcpListener, u16)>) -> ! {
    let _ = set_pdeathsig(Signal::SIGKILL);
    let _ = setpgid(getpid(), getpid()); // its own process group: terminal keys are not for it
    let parent = getppid();
    let mut go = [0u8; 1];
    let joined = read(&wait, &mut go).is_ok_and(|n| n == 1)
        && ["user", "net"].iter().all(|name| {
            let path = format!("/proc/{parent}/ns/{name}");
            fs::File::open(path).is_ok_and(|ns| setns(ns, CloneFlags::empty()).is_ok())
        });
    if joined {
        for (listener, port) in listeners {
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    // Nothing listens inside yet: the client sees its connection closed.
                    if let Ok(inside) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                        relay_connection(client, inside);
                    }
                }
            });
        }
        loop {
            std::thread::park(); // until SIGTERM (see Running)
        }
    }
    // SAFETY: _exit(2) ends the helper at once, without running the parent's destructors.
    unsafe { libc::_exit(libc::EXIT_FAILURE) }
}

/// One connection, relayed: a thread each way copies what one side sends to the other
/// (read(2), write(2)), and when a side has sent all it will, shutdown(2) passes that on.
fn relay_connection(client: TcpStream, inside: TcpStream) {
    for (from, to) in [(&client, &inside), (&inside, &client)] {
        let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
            return;
        };
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

/// A helper left on the host. The user-mode network stack, slirp4netns, must run in the
/// host's user and network namespaces, where it opens ordinary sockets for the container's
/// traffic; we are about to leave them for good. So fork(2) it now: it waits on a pipe
/// until we are in the container's namespaces, then becomes slirp4netns
/// (become_slirp4netns()). Its messages go to a file of this run, shown if it fails.
fn fork_network_helper(scratch: &plumbing::Scratch) -> Result<NetworkHelper> {
    let (wait, start) = pipe2(OFlag::O_CLOEXEC).context("pipe failed")?;
    let (ready, ready_to_write) = pipe2(OFlag::O_CLOEXEC).context("pipe failed")?;
    let log = scratch.join("slirp4netns.log");
    // SAFETY: this program is still single-threaded (see fork_pid_1).
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Parent { child } => Ok(NetworkHelper {
            helper: Waiting { pid: child, start },
            ready,
            log,
        }),
        ForkResult::Child => {
            drop((start, ready));
            become_slirp4netns(wait, ready_to_write, &log)
        }
    }
}

/// In the helper: wait for the parent to send slirp4netns's path, a line (none: it failed,
/// end here), then execve(2) it, to serve the network namespace of our parent (getppid(2)),
/// where it creates `tap0`. `--configure` gives tap0 10.0.2.100/24 and the default route
/// via 10.0.2.2, where slirp4netns answers for the host's 127.0.0.1; `--ready-fd` is where
/// it writes "1" when that is done (slirp4netns(1)). It dies with the parent (PDEATHSIG).
fn become_slirp4netns(wait: OwnedFd, ready: OwnedFd, log: &Path) -> ! {
    let _ = set_pdeathsig(Signal::SIGKILL);
    let _ = setpgid(getpid(), getpid()); // its own process group: terminal keys are not for it
    let mut program = Vec::new();
    let _ = BufReader::new(fs::File::from(wait)).read_until(b'\n', &mut program);
    let whole = program.pop() == Some(b'\n');
    let output = fs::File::create_new(log);
    // The ready pipe is inherited through execve: not close-on-exec.
    let inherited = fcntl::fcntl(&ready, fcntl::FcntlArg::F_SETFD(fcntl::FdFlag::empty()));
    if let (true, Ok(output), Ok(_)) = (whole, output, inherited) {
        let _ = dup2_stdout(&output).and_then(|()| dup2_stderr(&output));
        let args = [
            program,
            b"--configure".to_vec(),
            b"--mtu=65520".to_vec(),
            format!("--ready-fd={}", ready.as_raw_fd()).into_bytes(),
            getppid().to_string().into_bytes(),
            b"tap0".to_vec(),
        ];
        if let Ok(args) = args
            .into_iter()
            .map(CString::new)
            .collect::<Result<Vec<_>, _>>()
        {
            let _ = execv(&args[0], &args);
        }
    }
    // SAFETY: _exit(2) ends the helper at once, without running the parent's destructors.
    unsafe { libc::_exit(127) }
}

/// The container's way out, without privileges. A pair of virtual interfaces (veth), one
/// end in here, would need CAP_NET_ADMIN in the host's network namespace: real root. A tap
/// device in *our* network namespace needs it only here, where we have it: slirp4netns
/// creates one (open(2) of /dev/net/tun, ioctl TUNSETIFF: the kernel's tuntap.rst), and
/// turns the packets the container sends through it into ordinary socket calls of an
/// unprivileged process on the host, like podman's rootless network. Waits, at most 10 s,
/// for its "1"; stopped and reaped when the returned value is dropped.
fn start_user_mode_stack(network: NetworkHelper) -> Result<Running> {
    let program = plumbing::host::find_program("slirp4netns")
        .context("slirp4netns is not installed: the container would have no network")
        .hint("install it: `sudo apt install slirp4netns` (or dnf, pacman, zypper install)")?;
    let tun = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun");
    let hint = match tun.as_ref().map_err(std::io::Error::kind) {
        Err(ErrorKind::NotFound) => "load the kernel's tun module: `sudo modprobe tun`",
        _ => {
            "slirp4netns opens it as you: `sudo chmod 0666 /dev/net/tun`, its stock mode on \
              Debian and Ubuntu"
        }
    };
    tun.context("/dev/net/tun is not usable, and slirp4netns needs it for the tap device")
        .hint(hint)?;
    let stack = Running::new(network.helper.pid);
    let line = [program.as_os_str().as_bytes(), b"\n"].concat();
    write_all(&network.helper.start, &line)?; // the helper execs slirp4netns
    let mut fds = [PollFd::new(network.ready.as_fd(), PollFlags::POLLIN)];
    let mut answer = [0u8; 1];
    let ready = match poll(&mut fds, PollTimeout::from(10_000u16)) {
        Ok(n) if n > 0 => {
            read(&network.ready, &mut answer).is_ok_and(|n| n == 1 && answer == *b"1")
        }
        _ => false,
    };
    if !ready {
        let said = fs::read_to_string(&network.log).unwrap_or_default();
        return Err(anyhow::anyhow!(
            "slirp4netns did not set up the network: {}",
            said.lines().last().unwrap_or("it said nothing")
        ))
        .hint("that was its last message; `man slirp4netns` says more");
    }
    Ok(stack)
}

/// Tells the port relay that we are in the container's namespaces, for it to join them.
fn start_port_relay(relay: Option<Waiting>) -> Result<Option<Running>> {
    let Some(relay) = relay else {
        return Ok(None);
    };
    write_all(&relay.start, b"1")?;
    Ok(Some(Running::new(relay.pid)))
}

/// A helper forked on the host, waiting for its start on a pipe.
struct Waiting {
    pid: Pid,
    start: OwnedFd,
}

/// The network helper (fork_network_helper()): waiting, then slirp4netns, which says on
/// `ready` that the network is up, and writes its messages to `log`.
struct NetworkHelper {
    helper: Waiting,
    ready: OwnedFd,
    log: PathBuf,
}

/// A helper at work; dropping this stops it (SIGTERM) and reaps it (waitpid(2)), so that
/// nothing is left running. Only in the process that started it: PID 1 has a copy, made by
/// fork, where the helper's pid would mean another process, of the container's.
struct Running {
    pid: Pid,
    owner: Pid,
}

impl Running {
    fn new(pid: Pid) -> Running {
        Running {
            pid,
            owner: getpid(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if getpid() == self.owner && kill(self.pid, Signal::SIGTERM).is_ok() {
            let _ = waitpid(self.pid, None);
        }
    }
}

/// Root inside keeps a short list of capabilities, not all of them (capabilities(7)). In its
/// user namespace, our uid 0 holds every capability over what that namespace owns: mount,
/// sethostname, raw network access, and more. A container needs a handful: podman's default
/// eleven, kept here (Docker's fourteen add CAP_MKNOD, CAP_NET_RAW and CAP_AUDIT_WRITE).
/// The order is the kernel's: dropping from the bounding set takes CAP_SETPCAP, which the
/// list keeps, and capset(2) may only shrink the sets, never grow them.
fn drop_capabilities() -> Result<()> {
    // Capability numbers, from <linux/capability.h> (libc has no names for them).
    const KEPT: [u32; 11] = [
        0,  // CAP_CHOWN: give a file to another owner
        1,  // CAP_DAC_OVERRIDE: read and write despite a file's mode
        3,  // CAP_FOWNER: chmod and touch files we do not own
        4,  // CAP_FSETID: keep a file's set-user-ID bit when changing it
        5,  // CAP_KILL: signal processes of other users
        6,  // CAP_SETGID
        7,  // CAP_SETUID: become another user, as `su` does
        8,  // CAP_SETPCAP: drop capabilities from the bounding set (below)
        10, // CAP_NET_BIND_SERVICE: listen on ports below 1024
        18, // CAP_SYS_CHROOT
        31, // CAP_SETFCAP: give files capabilities
    ];
    // prctl(2) reads unsigned longs after the option.
    const NONE: libc::c_ulong = 0;
    let prctl = |option, arg: libc::c_ulong| {
        // SAFETY: PR_CAPBSET_DROP and PR_CAP_AMBIENT take numbers, no memory.
        Errno::result(unsafe { libc::prctl(option, arg, NONE, NONE, NONE) })
    };
    // The bounding set (PR_CAPBSET_DROP) caps what any later execve(2) may grant, even to
    // a set-user-ID-root program. Drop every other capability from it, up to the last one
    // this kernel knows: past it, the kernel says EINVAL.
    for capability in (0..64).filter(|cap| !KEPT.contains(cap)) {
        match prctl(libc::PR_CAPBSET_DROP, capability.into()) {
            Ok(_) => {}
            Err(Errno::EINVAL) => break,
            Err(errno) => return Err(errno).context("prctl(PR_CAPBSET_DROP) failed"),
        }
    }
    // capset(2): effective (what we may do now), permitted (what we may take back) and
    // inheritable (what an execve may pass on) become that list. Version 3 of the kernel's
    // structs holds 64 bits as two halves of 32.
    #[repr(C)]
    struct Header(u32, libc::c_int); // version (3 is 0x20080522), pid (0: ourselves)
    #[repr(C)]
    struct Sets(u32, u32, u32); // effective, permitted, inheritable
    let kept: u64 = KEPT.iter().fold(0, |mask, cap| mask | 1 << cap);
    let half = |bits: u64| Sets(bits as u32, bits as u32, bits as u32);
    let (header, sets) = (Header(0x2008_0522, 0), [half(kept), half(kept >> 32)]);
    // SAFETY: the kernel reads one header and, for version 3, two sets from valid pointers.
    let set = unsafe { libc::syscall(libc::SYS_capset, &raw const header, sets.as_ptr()) };
    Errno::result(set).context("capset failed")?;
    // The ambient set keeps capabilities across an execve of a program that is not root's:
    // empty it (PR_CAP_AMBIENT).
    let clear_all = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
    prctl(libc::PR_CAP_AMBIENT, clear_all).context("prctl(PR_CAP_AMBIENT) failed")?;
    Ok(())
}

/// No way back up. prctl(2) PR_SET_NO_NEW_PRIVS: from now on execve(2) grants nothing that
/// we do not hold already: set-user-ID bits and file capabilities are ignored, for us and
/// for every process we start, and it can never be unset (the kernel's no_new_privs.rst).
/// seccomp(2) requires it (or CAP_SYS_ADMIN) before it installs a filter: otherwise a filter
/// could fool a set-user-ID program into misbehaving with the privileges it gains.
fn forbid_new_privileges() -> Result<()> {
    set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS) failed")?;
    Ok(())
}

/// The last word: a seccomp filter (seccomp(2)). Before each system call of this process
/// and of every process it starts, the kernel runs a small program over the call's number,
/// architecture and arguments, and does what it returns: allow the call, fail it with an
/// errno, or kill the caller. A filter can never be removed. It comes last, because the
/// setup above makes calls it refuses (mount, pivot_root, unshare), and right before the
/// exec, because it binds the command and everything the command starts.
fn refuse_syscalls() -> Result<()> {
    let mut program = syscall_filter();
    let filter = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_mut_ptr(),
    };
    // seccomp(2) takes unsigned longs: the operation, its flags (none), the program.
    const NO_FLAGS: libc::c_ulong = 0;
    let set_filter = libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER);
    // SAFETY: the kernel copies `len` instructions from `filter`, which `program` holds.
    let installed =
        unsafe { libc::syscall(libc::SYS_seccomp, set_filter, NO_FLAGS, &raw const filter) };
    Errno::result(installed)
        .context("seccomp(SECCOMP_SET_MODE_FILTER) failed")
        .hint("the kernel must support seccomp filters (CONFIG_SECCOMP_FILTER)")?;
    Ok(())
}

/// The filter: classic BPF, one instruction per line (the kernel's seccomp_filter.rst). It
/// reads a struct seccomp_data: `nr` (offset 0), the call's number; `arch` (offset 4), whose
/// table of numbers `nr` is from; `args` (from offset 16), the arguments. Jumps count the
/// instructions to skip: `jt` when the test holds, `jf` when it does not.
fn syscall_filter() -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W};
    use libc::{SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS};
    #[cfg(target_arch = "x86_64")]
    const MACHINE: u16 = libc::EM_X86_64;
    #[cfg(target_arch = "aarch64")]
    const MACHINE: u16 = libc::EM_AARCH64;
    #[cfg(target_arch = "riscv64")]
    const MACHINE: u16 = libc::EM_RISCV;
    // AUDIT_ARCH_* of <linux/audit.h>: the ELF machine, 64-bit (bit 31), little-endian (30).
    const ARCH: u32 = MACHINE as u32 | 0x8000_0000 | 0x4000_0000;
    const X32: u32 = 0x4000_0000; // x86_64's x32 ABI: a second table, under the same `arch`
    let op = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let (at_nr, at_arch, at_flags) = (0, 4, 16); // in seccomp_data; at_flags: args[0], low half
    let load = |offset: u32| op(BPF_LD | BPF_W | BPF_ABS, offset, 0, 0);
    let ret = |action: u32| op(BPF_RET | BPF_K, action, 0, 0);
    let is = |nr: libc::c_long, jf: u8| op(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, jf);
    let errno = |errno: Errno| SECCOMP_RET_ERRNO | errno as u32;
    let mut program = vec![
        // Another architecture's numbers (i386's int 0x80, x32) mean other calls: kill.
        load(at_arch),
        op(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
        ret(SECCOMP_RET_KILL_PROCESS),
        load(at_nr),
        op(BPF_JMP | BPF_JGE | BPF_K, X32, 0, 1),
        ret(SECCOMP_RET_KILL_PROCESS),
    ];
    // The calls a container never needs: EPERM.
    for nr in refused_syscalls() {
        program.extend([is(nr, 1), ret(errno(Errno::EPERM))]);
    }
    // clone3(2) passes its flags in a struct in memory, which BPF cannot read. ENOSYS,
    // "no such call", makes libc fall back to clone(2), whose flags we can read (runc and
    // Docker answer the same). EPERM would make libc give up instead.
    program.extend([is(libc::SYS_clone3, 1), ret(errno(Errno::ENOSYS))]);
    // clone(2) and unshare(2) with CLONE_NEWUSER: a nested user namespace, where every
    // capability comes back. The flags are the first argument, whose low 32 bits come first
    // on a little-endian machine. BPF_JSET tests bits.
    for nr in [libc::SYS_clone, libc::SYS_unshare] {
        program.extend([
            is(nr, 4),
            load(at_flags),
            op(BPF_JMP | BPF_JSET | BPF_K, libc::CLONE_NEWUSER as u32, 0, 1),
            ret(errno(Errno::EPERM)),
            ret(SECCOMP_RET_ALLOW),
        ]);
    }
    // Everything else is allowed.
    program.push(ret(SECCOMP_RET_ALLOW));
    program
}

/// The calls a container never needs, refused with EPERM: they reach parts of the kernel
/// that no namespace isolates, and most kernel exploits of recent years went through them.
fn refused_syscalls() -> [libc::c_long; 24] {
    [
        // The kernel's keyrings, not isolated by any namespace (keyrings(7)).
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        // Mounts: the container's tree is finished. The new mount API too (open_tree(2)).
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_mount_setattr,
        // Another kernel, kernel modules, eBPF programs, performance counters.
        libc::SYS_kexec_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        // userfaultfd(2): page faults handled by a program, a favourite of exploits.
        libc::SYS_userfaultfd,
        // Tracing other processes, rebooting, swap, and opening files by handle, which
        // skips paths, and with them the container's root (Docker's 2014 "shocker" escape).
        libc::SYS_ptrace,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_open_by_handle_at,
    ]
}

/// A console socket, for a terminal of the container's own. The pty must come from the
/// container's devpts, so PID 1 creates it; the host side needs its master end to show it
/// to the user. A connected pair of unix sockets (socketpair(2)) carries the master across,
/// as runc's `--console-socket` does for `podman run -t`. Returns (host end, container end),
/// or `None` when our stdin is no terminal: then the container simply shares our stdio.
fn console_socket() -> Result<Option<(OwnedFd, OwnedFd)>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let pair = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("cannot create the console socket (socketpair)")?;
    Ok(Some(pair))
}

/// The pts becomes our controlling terminal, and fds 0, 1 and 2. setsid(2) starts a new
/// session with no terminal; ioctl(2) TIOCSCTTY (tty_ioctl(4)) makes the pts its controlling
/// terminal, so the kernel sends Ctrl-C, Ctrl-Z and window changes to the foreground job,
/// and a shell can run job control. dup2(2) puts it on stdin, stdout and stderr.
fn attach_to_terminal(console: Option<(OwnedFd, OwnedFd)>) -> Result<()> {
    let Some((host_end, container_end)) = console else {
        return Ok(()); // no terminal: keep the step's stdio
    };
    drop(host_end);
    let pts = open_own_terminal(&container_end)?;
    setsid().context("setsid failed")?;
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal it from another session).
    unsafe { set_controlling_terminal(pts.as_raw_fd(), 0) }.context("ioctl(TIOCSCTTY) failed")?;
    dup2_stdin(&pts).context("dup2 to stdin failed")?;
    dup2_stdout(&pts).context("dup2 to stdout failed")?;
    dup2_stderr(&pts).context("dup2 to stderr failed")?;
    Ok(())
}

/// In the container: a pseudoterminal from its own devpts (pty(7)). posix_openpt(3) opens
/// /dev/ptmx, our link to pts/ptmx; grantpt(3) and unlockpt(3) make the matching pts usable.
/// The master end goes to the host over the console socket: sendmsg(2) with SCM_RIGHTS
/// (unix(7)) passes a file descriptor, not bytes. Then we wait for the host to say it is
/// ready (raw mode, window size), so that nothing runs on a terminal of size 0x0.
fn open_own_terminal(console: &OwnedFd) -> Result<OwnedFd> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).context("cannot open /dev/ptmx")?;
    grantpt(&master).context("grantpt failed")?;
    unlockpt(&master).context("unlockpt failed")?;
    let name = ptsname_r(&master).context("ptsname failed")?;
    let pts = fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .with_context(|| format!("cannot open {name}"))?;
    let fds = [master.as_raw_fd()];
    let message = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        console.as_raw_fd(),
        &[IoSlice::new(b"M")],
        &message,
        MsgFlags::empty(),
        None,
    )
    .context("cannot send the terminal to the host (sendmsg)")?;
    let mut ready = [0u8; 1];
    read(console, &mut ready).context("the host did not take the terminal")?;
    Ok(pts)
}

/// On the host: the container's terminal, shown in ours. recvmsg(2) takes the master from
/// the console socket (none if the child failed first). Our terminal goes to raw mode
/// (termios(3), cfmakeraw): every key, Ctrl-C included, goes to the container's pts, whose
/// line discipline does the rest. The guard restores it on every way out: the command ends,
/// PID 1 is killed, we are sent SIGTERM (forwarded: PID 1 dies, the relay ends), an error.
fn relay_terminal(console: Option<(OwnedFd, OwnedFd)>, child: Pid) -> Result<()> {
    let Some((console, container_end)) = console else {
        return Ok(()); // no terminal: the container writes to ours directly
    };
    drop(container_end); // the child's end: if the child dies, we must see EOF
    plumbing::forward_signals(child);
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut byte)];
    let message = loop {
        match recvmsg::<()>(
            console.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other.context("cannot receive the container's terminal")?,
        }
    };
    let Some(ControlMessageOwned::ScmRights(fds)) = message.cmsgs()?.next() else {
        return Ok(()); // the child ended before it had a terminal: waitpid says why
    };
    // SAFETY: SCM_RIGHTS just gave us this new descriptor; nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let _restore = RestoreTerminal(saved.clone());
    let mut raw = saved;
    cfmakeraw(&mut raw);
    tcsetattr(&stdin, SetArg::TCSANOW, &raw).context("cannot put the terminal in raw mode")?;
    follow_window_size(&master)?;
    write(&console, b"R").context("cannot tell the container its terminal is ready")?;
    relay(&master)
}

/// Puts the user's terminal back as it was, when dropped (tcsetattr(3)).
struct RestoreTerminal(Termios);

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.0);
    }
}

/// The container's terminal gets our size now, and again each time ours changes: the kernel
/// sends SIGWINCH (signal(7)) to the foreground process of a terminal that was resized. Our
/// handler only sets a flag; `relay` copies the size over: ioctl(2) TIOCGWINSZ on ours,
/// TIOCSWINSZ on the container's (tty_ioctl(4)), which sends SIGWINCH on to its shell.
fn follow_window_size(master: &OwnedFd) -> Result<()> {
    extern "C" fn resized(_: libc::c_int) {
        RESIZED.store(true, Ordering::SeqCst);
    }
    let handler = SigAction::new(
        SigHandler::Handler(resized),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGWINCH, &handler) }.context("cannot handle SIGWINCH")?;
    copy_window_size(master);
    Ok(())
}

/// Set by the SIGWINCH handler: our terminal changed size.
static RESIZED: AtomicBool = AtomicBool::new(false);

/// Copies our terminal's size to the container's (nothing happens if either is not a tty).
fn copy_window_size(master: &OwnedFd) {
    // SAFETY: winsize is plain old data; the ioctls read and write exactly one winsize.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if get_window_size(libc::STDIN_FILENO, &mut size).is_ok() {
            let _ = set_window_size(master.as_raw_fd(), &size);
        }
    }
}

/// Copies bytes both ways until the container's side is gone: poll(2) sleeps until our
/// stdin or the master has something to read. A read of the master fails with EIO once no
/// process in the container holds the pts any more (pty(7)).
fn relay(master: &OwnedFd) -> Result<()> {
    let (stdin, mut stdout) = (std::io::stdin(), std::io::stdout());
    let mut input_open = true;
    let mut buffer = [0u8; 4096];
    loop {
        if RESIZED.swap(false, Ordering::SeqCst) {
            copy_window_size(master);
        }
        let events = if input_open {
            PollFlags::POLLIN
        } else {
            PollFlags::empty()
        };
        let mut fds = [
            PollFd::new(stdin.as_fd(), events),
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue, // a signal: SIGWINCH, or one forwarded to PID 1
            other => other.context("poll failed")?,
        };
        let (from_user, from_container) = (fds[0].any(), fds[1].any());
        if from_user == Some(true) {
            match read(&stdin, &mut buffer) {
                Ok(0) | Err(_) => input_open = false, // our terminal hung up
                Ok(n) => write_all(master, &buffer[..n])?,
            }
        }
        if from_container == Some(true) {
            match read(master, &mut buffer) {
                Ok(0) | Err(Errno::EIO) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(error) => return Err(error).context("cannot read the container's terminal"),
                Ok(n) => stdout
                    .write_all(&buffer[..n])
                    .and_then(|()| stdout.flush())
                    .context("cannot write to the terminal")?,
            }
        }
    }
}

/// write(2) until every byte is written.
fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<()> {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Err(Errno::EINTR) => continue,
            other => bytes = &bytes[other.context("cannot write to the container's terminal")?..],
        }
    }
    Ok(())
}

/// A /dev of our own. Programs expect /dev/null and a few more, but mknod(2) is refused in a
/// user namespace: a device node made there could open hardware the user may not touch. So,
/// as rootless runc and youki do: a fresh tmpfs on /dev, an empty file for each device, and
/// the host's device bind-mounted onto it (mount(2), MS_BIND). A bind mount grants nothing
/// new: it shows a node the user could already open. It must happen before pivot_root,
/// while the host's /dev is still there to bind from.
fn mount_dev(root: &Path) -> Result<()> {
    let dev = root.join("dev");
    // An image whose /dev is a symlink would have us mount wherever it points: refuse.
    match fs::symlink_metadata(&dev) {
        Ok(meta) if !meta.is_dir() => anyhow::bail!("the image's /dev is not a directory"),
        Ok(_) => {}
        // No /dev in the image: the mount point goes to this run's upper layer.
        Err(_) => fs::create_dir(&dev).context("cannot create /dev in the container")?,
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        flags,
        Some("mode=755,size=64k"),
    )
    .context("cannot mount a tmpfs on /dev")?;
    // The six that runc and youki give every container: the rest of the host's /dev (disks,
    // /dev/mem, /dev/kmsg) is not there at all.
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let (host, inside) = (Path::new("/dev").join(name), dev.join(name));
        fs::File::create_new(&inside).with_context(|| format!("cannot create /dev/{name}"))?;
        mount(
            Some(&host),
            &inside,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("cannot bind-mount the host's /dev/{name}"))
        .hint("`just doctor` checks that the host has these devices")?;
    }
    // The usual symlinks (symlink(7)): the process's own descriptors, and the pty multiplexer
    // of the container's devpts (mount_devpts).
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .with_context(|| format!("cannot create /dev/{link}"))?;
    }
    Ok(())
}

/// Pseudoterminals and shared memory of our own. mount(2) a new devpts instance on /dev/pts
/// (devpts.rst: "newinstance"): its ptys are numbered from 0 and invisible to the host's.
/// `ptmxmode=0666` lets anyone open its pts/ptmx; no `gid=5`, a group our user namespace does
/// not map. /dev/shm is a tmpfs for POSIX shared memory (shm_overview(7)).
fn mount_devpts(root: &Path) -> Result<()> {
    let (pts, shm) = (root.join("dev/pts"), root.join("dev/shm"));
    fs::create_dir(&pts).context("cannot create /dev/pts")?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .context("cannot mount a devpts on /dev/pts")
    .hint("the kernel needs devpts with multiple instances (Linux 4.7+): run `just doctor`")?;
    fs::create_dir(&shm).context("cannot create /dev/shm")?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=64m"),
    )
    .context("cannot mount a tmpfs on /dev/shm")?;
    Ok(())
}

/// A network stack of our own. unshare(2) CLONE_NEWNET: own interfaces, routes and ports
/// (network_namespaces(7)). A new one has a single interface, the loopback `lo`, and it is
/// down: nothing, not even 127.0.0.1, works yet.
fn enter_network_namespace() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET) failed")?;
    Ok(())
}

/// Brings `lo` up. `ip link set lo up` speaks netlink (rtnetlink(7)), which means building
/// binary messages by hand; the older ioctl(2) interface of netdevice(7) needs two calls on
/// any socket: read the interface flags (SIOCGIFFLAGS), set IFF_UP (SIOCSIFFLAGS).
fn bring_up_loopback() -> Result<()> {
    let socket = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("cannot open a socket")?;
    // SAFETY: ifreq is plain old data, for which all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: the socket is open and `request` is a valid ifreq naming an interface; the
    // kernel fills in (and then reads) the flags member of its union, a c_short.
    unsafe {
        get_interface_flags(socket.as_raw_fd(), &mut request)
            .context("ioctl(SIOCGIFFLAGS) on lo failed")?;
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        set_interface_flags(socket.as_raw_fd(), &request)
            .context("ioctl(SIOCSIFFLAGS) on lo failed")?;
    }
    Ok(())
}

/// A copy-on-write root, like real images. mount(2) an overlay filesystem (the kernel's
/// overlayfs.rst): reads come from the rootfs ("lowerdir"), every write goes to "upperdir",
/// a directory of this run, through "workdir". The rootfs itself is never written to, like
/// an image. Rootless overlays need Linux 5.11+ and "userxattr" (whiteouts and opaque
/// directories are then marked with user.* attributes). Returns the merged root.
fn mount_overlay(rootfs: &Path, scratch: &plumbing::Scratch) -> Result<PathBuf> {
    let (upper, root) = (scratch.join("upper"), scratch.join("root"));
    let layers = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        rootfs.display(),
        upper.display(),
        scratch.join("work").display()
    );
    mount(
        Some("overlay"),
        &root,
        Some("overlay"),
        MsFlags::empty(),
        Some(layers.as_str()),
    )
    .context("cannot mount the overlay")
    .with_hint(|| {
        if upper.starts_with(rootfs) {
            // The kernel refuses an upper layer inside the lower one (BENTO_ROOTFS=/).
            return format!(
                "the writable layer ({}) would be inside the rootfs: point BENTO_ROOTFS at \
                 a root filesystem, not at `/`",
                upper.display()
            );
        }
        let kernel = uname().map(|u| u.release().to_string_lossy().into_owned());
        format!(
            "rootless overlayfs needs Linux 5.11 or later (this is {}), and a rootfs \
             path without ',' or ':'",
            kernel.unwrap_or_default()
        )
    })?;
    Ok(root)
}

/// The rootfs becomes the root *mount*, and the host's tree is gone. chroot only changed
/// where "/" points for us: the host's root stayed mounted in our namespace, and root can
/// climb back to it (chroot(2), NOTES; try `just breakout 5`). pivot_root(2) instead swaps
/// the root mount: from inside the rootfs, pivot_root(".", ".") makes it the root mount and
/// stacks the old root on top of it, at "/". That is also why /proc must be mounted first:
/// once the old root is gone, no full procfs is visible, and the kernel refuses a new one
/// inside a user namespace.
fn pivot_into(root: &Path) -> Result<()> {
    chdir(root).context("cannot enter the root filesystem")?;
    pivot_root(".", ".")
        .context("pivot_root failed")
        .hint("the new root must be a mount point other than `/`: is BENTO_ROOTFS `/`?")?;
    // umount2(2) MNT_DETACH: detach the old root, the host's whole tree, from our
    // namespace. Nothing in here can reach it any more, not even with "..".
    umount2(".", MntFlags::MNT_DETACH).context("cannot detach the old root")?;
    chdir("/").context("chdir(\"/\") failed")?;
    Ok(())
}

/// A /proc that shows only the container. mount(2) a fresh procfs on `target`: a procfs
/// shows the PID namespace of the process that mounts it (proc(5)). Inside a user namespace
/// the kernel allows it only to a process in a PID namespace that the user namespace owns:
/// us, PID 1. Nothing in /proc needs setuid, device files or exec, so those are off.
fn mount_proc(target: &Path) -> Result<()> {
    mount(
        Some("proc"),
        target,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("cannot mount proc on the rootfs's /proc")
    .hint("the rootfs needs an empty /proc directory (`just rootfs` makes one)")?;
    Ok(())
}

/// A mount table of our own. unshare(2) CLONE_NEWNS gives us a private copy of the mount
/// table (mount_namespaces(7)): what we mount from now on, the host does not see.
fn isolate_mounts() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS) failed")?;
    // On systemd hosts `/` is a *shared* mount: a copied mount stays in a peer group with
    // the host's. Rootless, the user namespace already turns our copies into slaves, but as
    // real root our mounts would propagate back to the host (and pivot_root(2) refuses a
    // shared parent). Make every mount private, recursively, before mounting anything
    // (mount(2), MS_PRIVATE).
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("cannot make / private (mount MS_REC|MS_PRIVATE)")?;
    Ok(())
}

/// Forks PID 1 of a new PID namespace. unshare(2) CLONE_NEWPID does not move *us*: a pid
/// never changes. The next child we fork is PID 1 of the new namespace (pid_namespaces(7)).
/// Both copies return from here: the parent with the child's pid, the child with `Child`.
fn fork_pid_1() -> Result<ForkResult> {
    unshare(CloneFlags::CLONE_NEWPID).context("unshare(CLONE_NEWPID) failed")?;
    // From here on the parent passes signals on to the container (wait_for_container):
    // catch them now, so that none is lost, or kills us, while we fork.
    plumbing::catch_signals()?;
    // fork(2) copies this process; both copies continue from here.
    // SAFETY: this program is single-threaded, so the child may go on running Rust code
    // (after fork in a multithreaded program, only async-signal-safe calls are allowed).
    unsafe { fork() }.context("fork failed")
}

/// The parent stays on the host, in charge of the container: signals sent to it are passed
/// on to PID 1, which ignores any it has no handler for. waitpid(2) sleeps until the child
/// ends; its status becomes ours (128+N if it was killed by signal N).
fn wait_for_container(child: Pid) -> Result<i32> {
    plumbing::forward_signals(child);
    let status = waitpid(child, None).context("waitpid failed")?;
    Ok(plumbing::exit_code(status))
}

/// prctl(2) PR_SET_PDEATHSIG: if the parent dies, even of SIGKILL, the kernel kills us, and
/// with PID 1 every other process in its namespace. No container outlives its step.
fn die_with_parent() -> Result<()> {
    set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG) failed")?;
    Ok(())
}

/// Root inside, ourselves outside. unshare(2) CLONE_NEWUSER: any user may create a user
/// namespace. Inside it we hold every capability, but only over the namespaces that it owns
/// (user_namespaces(7)): so it comes first, and every namespace after it is ours to make.
fn enter_user_namespace() -> Result<()> {
    // The maps below speak in host ids: remember ours before we leave.
    let uid_map = format!("0 {} 1", getuid());
    let gid_map = format!("0 {} 1", getgid());
    unshare(CloneFlags::CLONE_NEWUSER)
        .context("unshare(CLONE_NEWUSER) failed")
        .with_hint(plumbing::user_namespace_hint)?;
    // Map uid 0 inside to our own uid outside, 1 id long. Unprivileged, we may map only our
    // own id, and must write the map ourselves before any exec (user_namespaces(7)).
    fs::write("/proc/self/uid_map", uid_map).context("cannot write /proc/self/uid_map")?;
    // gid_map is refused until setgroups(2) is disabled here: otherwise we could drop a
    // supplementary group that the host uses to *deny* us access (user_namespaces(7)).
    fs::write("/proc/self/setgroups", "deny").context("cannot write /proc/self/setgroups")?;
    fs::write("/proc/self/gid_map", gid_map).context("cannot write /proc/self/gid_map")?;
    Ok(())
}

/// A hostname of our own. unshare(2) CLONE_NEWUTS gives this process a new UTS namespace
/// (uts_namespaces(7)). Creating it needs CAP_SYS_ADMIN in the user namespace that will own
/// it: ours, where we have it.
fn isolate_hostname(name: &str) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWUTS).context("unshare(CLONE_NEWUTS) failed")?;
    // sethostname(2) changes the name in our UTS namespace only; the host keeps its own.
    sethostname(name).context("sethostname failed")?;
    Ok(())
}

/// The command takes over this process: execvp(3) finds it on PATH and calls execve(2),
/// which replaces our program but keeps our pid, namespaces and root. It returns only on
/// failure, with the error to report (127 when there is no such command, 126 when it
/// cannot be executed, as shells do).
fn exec_command(command: &[CString]) -> anyhow::Error {
    let Err(errno) = execvp(&command[0], command);
    plumbing::exec_error(&command[0], errno)
}
