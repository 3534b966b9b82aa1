//! Failures: one clear line with the cause, a hint, and a shell-style exit status.

use std::ffi::CStr;
use std::fmt;

use nix::errno::Errno;
use nix::sys::wait::WaitStatus;

/// Exit status when the step itself could not set up the container (like `docker run`'s
/// 125): distinct from anything the command inside could return for itself… almost.
pub const EXIT_SETUP_FAILED: i32 = 125;
/// The shell's status for "found, but could not be executed".
const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The shell's status for "command not found".
const EXIT_NOT_FOUND: i32 = 127;

/// An error that carries advice for the person who ran the step.
#[derive(Debug)]
struct Hinted {
    error: anyhow::Error,
    hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Hinted {}

/// Adds a hint to an error: `unshare(..).context("what failed").hint("what to do")?`.
pub trait Hint<T> {
    /// Attaches `hint`, printed on its own line under the error.
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
    /// Like [`Hint::hint`], computing the hint only when there is an error.
    fn with_hint<H: Into<String>>(self, hint: impl FnOnce() -> H) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> Hint<T> for Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.with_hint(|| hint)
    }

    fn with_hint<H: Into<String>>(self, hint: impl FnOnce() -> H) -> anyhow::Result<T> {
        self.map_err(|error| {
            anyhow::Error::new(Hinted {
                error: error.into(),
                hint: hint().into(),
            })
        })
    }
}

/// A new error that is `message`, with `hint` under it: `return Err(hinted("no such
/// container", "bento status --all lists them"))`.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    add_hint(anyhow::anyhow!(message.into()), hint)
}

/// `error`, with `hint` under it (what [`Hint::hint`] does to a `Result`).
pub fn add_hint(error: anyhow::Error, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        error,
        hint: hint.into(),
    })
}

/// The command could not be started: `execvp` came back, or the command is known to be
/// missing before we try. `errno` decides the exit status.
#[derive(Debug)]
struct ExecFailed {
    message: String,
    errno: Errno,
}

impl fmt::Display for ExecFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExecFailed {}

/// Turns the error of a failed `execvp` into an error that exits like a shell would:
/// 127 when the command does not exist, 126 when it exists but cannot be executed.
pub fn exec_error(program: &CStr, errno: Errno) -> anyhow::Error {
    let program = program.to_string_lossy();
    let failed = ExecFailed {
        message: match errno {
            Errno::ENOENT => format!("{program}: command not found"),
            errno => format!("{program}: cannot execute: {}", errno.desc()),
        },
        errno,
    };
    let hint = match errno {
        Errno::ENOENT => {
            "check the name; from step 04 on, the command must exist inside the root filesystem (try `ls /bin`)"
        }
        Errno::EACCES => {
            "the file is not executable (or a directory on its path is not searchable)"
        }
        Errno::ENOEXEC => {
            "the file is not a program this kernel can run (a script without a #! line?)"
        }
        _ => "see execve(2) for what this error means",
    };
    anyhow::Error::new(Hinted {
        error: anyhow::Error::new(failed),
        hint: hint.into(),
    })
}

/// A command that we know is missing before trying to run it: reported with `message` and
/// `hint`, and exits 127 like any command not found.
pub(crate) fn missing_command(message: String, hint: String) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        error: anyhow::Error::new(ExecFailed {
            message,
            errno: Errno::ENOENT,
        }),
        hint,
    })
}

/// An error that exits with a status of its own. A runtime refuses in several distinct ways
/// (no such container, name in use…) and scripts must be able to tell them apart.
#[derive(Debug)]
struct WithStatus {
    error: anyhow::Error,
    code: i32,
}

impl fmt::Display for WithStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for WithStatus {}

/// Makes `error` (hint included) exit with `code` when it is reported.
pub fn with_status(code: i32, error: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(WithStatus { error, code })
}

/// The exit status a shell would report for a child: its own exit code, or 128+N when it
/// was killed by signal N.
pub fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => EXIT_SETUP_FAILED,
    }
}

/// The name this program was started as, for error messages.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(|path| path.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bento".into())
}

/// Finds an error of type `T` in `error`, looking inside hints and statuses too.
fn find<T: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static>(
    error: &anyhow::Error,
) -> Option<&T> {
    if let Some(found) = error.downcast_ref::<T>() {
        return Some(found);
    }
    if let Some(hinted) = error.downcast_ref::<Hinted>() {
        return find(&hinted.error);
    }
    find(&error.downcast_ref::<WithStatus>()?.error)
}

/// Prints `error` as one line (the chain of contexts, outermost first) plus its hint,
/// and returns the exit status it deserves.
pub fn report(error: &anyhow::Error) -> i32 {
    // One line, whatever a library put in its message.
    let message = format!("{error:#}").replace(['\n', '\r'], " ");
    eprintln!("{}: error: {message}", program_name());
    if let Some(hinted) = find::<Hinted>(error) {
        let mut lines = hinted.hint.lines();
        if let Some(first) = lines.next() {
            eprintln!("  hint: {first}");
        }
        for line in lines {
            eprintln!("        {line}");
        }
    }
    if let Some(status) = find::<WithStatus>(error) {
        return status.code;
    }
    match find::<ExecFailed>(error) {
        Some(ExecFailed {
            errno: Errno::ENOENT,
            ..
        }) => EXIT_NOT_FOUND,
        Some(_) => EXIT_NOT_EXECUTABLE,
        None => EXIT_SETUP_FAILED,
    }
}

/// Runs a step's `container` function and exits with its status. A failure is printed
/// as one line plus a hint, never as a panic or a backtrace.
pub fn run(container: fn() -> anyhow::Result<i32>) -> ! {
    let code = match container() {
        Ok(code) => code,
        Err(error) => report(&error),
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn exit_codes_follow_the_shell() {
        let pid = Pid::from_raw(42);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), 3);
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            137
        );
        assert_eq!(report(&exec_error(c"nope", Errno::ENOENT)), 127);
        assert_eq!(report(&exec_error(c"/etc", Errno::EACCES)), 126);
        assert_eq!(report(&anyhow::anyhow!("boom")), EXIT_SETUP_FAILED);
        let refused = with_status(3, hinted("no such container", "bento status --all"));
        let refused = refused.context("bento rm");
        assert_eq!(report(&refused), 3);
        assert_eq!(format!("{refused:#}"), "bento rm: no such container");
    }

    #[test]
    fn hints_survive_more_context() {
        let error = Err::<(), _>(Errno::EPERM)
            .context("unshare(CLONE_NEWUTS) failed")
            .hint("try step 02")
            .context("while isolating")
            .unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "while isolating: unshare(CLONE_NEWUTS) failed: EPERM: Operation not permitted"
        );
        assert_eq!(error.downcast_ref::<Hinted>().unwrap().hint, "try step 02");
    }

    #[test]
    fn exec_failures_keep_their_status_under_context() {
        let error = exec_error(c"nope", Errno::ENOENT).context("in the child");
        assert_eq!(report(&error), 127);
        assert_eq!(
            format!("{error:#}"),
            "in the child: nope: command not found"
        );
    }
}
