//! `bento kill NAME [SIGNAL]`: send a signal to the container's PID 1.

use std::str::FromStr;

use anyhow::Result;
use nix::sys::signal::Signal;

use crate::home::Home;

/// Send a signal to a container's PID 1 (default SIGKILL: stop it now)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Accepted for engines' sake: PID 1's death ends the whole PID namespace anyway
    #[arg(short, long, hide = true)]
    pub all: bool,
    /// The container's name
    pub name: String,
    /// The signal: KILL, SIGTERM, 15…
    #[arg(default_value = "KILL", value_parser = parse_signal)]
    pub signal: Signal,
}

/// `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let upper = text.to_ascii_uppercase();
    if let Ok(number) = upper.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| format!("{text:?} is not a signal number"));
    }
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name)
        .map_err(|_| format!("{text:?} is not a signal name (try KILL, TERM, INT, HUP)"))
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let container = crate::lifecycle::kill(home, &self.name, self.signal)?;
        container.print_name();
        Ok(0)
    }
}
