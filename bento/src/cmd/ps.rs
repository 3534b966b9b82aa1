//! `bento ps [--format table|json] NAME`: the container's processes, by their host pids
//! (runc's `ps`; containerd's `ctr task ps` reads the JSON).

use std::io::Write;

use anyhow::{Context, Result};

use crate::home::Home;

/// List the processes of a container: host pid and command line
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `table` (PID and command) or `json` (a list of pids)
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// The container's name
    pub name: String,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let pids = crate::lifecycle::ps(home, &self.name)?;
        let out = match self.format.as_str() {
            "json" => serde_json::to_string(&pids).context("cannot encode")? + "\n",
            _ => {
                let mut table = String::from("PID     CMD\n");
                for pid in pids {
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let command = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    table.push_str(&format!("{pid:<7} {}\n", command.trim_end()));
                }
                table
            }
        };
        // Not println!: a closed pipe (`| head`) is an error to report, not a panic.
        std::io::stdout()
            .write_all(out.as_bytes())
            .context("cannot write to stdout")?;
        Ok(0)
    }
}
