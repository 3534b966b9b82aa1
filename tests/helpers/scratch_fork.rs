//! `scratch_fork`: a test helper for the rule that a per-run scratch directory belongs to the
//! process that created it. It creates one, forks, lets the child drop its copy (as a step's
//! child does when it fails after the fork), and prints whether the directory survived the
//! child: `kept` or `removed`. The parent's own drop then removes it.

fn main() {
    let scratch = plumbing::Scratch::create("scratch-fork-test", &["upper"])
        .unwrap_or_else(|error| panic!("cannot create the scratch directory: {error:#}"));
    let upper = scratch.join("upper");
    // SAFETY: this program is single-threaded; the child drops and exits.
    match unsafe { libc::fork() } {
        -1 => panic!("fork failed"),
        0 => {
            drop(scratch);
            std::process::exit(0);
        }
        child => {
            let mut status = 0;
            // SAFETY: a plain waitpid on our own child, with a valid status pointer.
            unsafe { libc::waitpid(child, &mut status, 0) };
            println!(
                "{} {}",
                if upper.is_dir() { "kept" } else { "removed" },
                upper.display()
            );
        }
    }
}
