//! `bento status NAME`, `bento status --all`: what each container is doing.

use anyhow::{Context, Result};

use crate::home::Home;
use crate::state::{Container, State};

/// Show a container's state (created, running, stopped), or every container's
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Every container
    #[arg(short, long)]
    pub all: bool,
    /// Print the OCI runtime state (ociVersion, id, status, pid, bundle) and bento's fields
    /// as JSON (a list with --all)
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let containers = match &self.name {
            Some(name) => vec![Container::open(home, name)?],
            None => Container::all(home)?,
        };
        let mut states = Vec::new();
        for container in &containers {
            // A container removed since we listed it is simply not shown.
            if let Ok(state) = container.state() {
                states.push(state);
            }
        }
        let out = if self.json {
            let json = match (&self.name, states.as_slice()) {
                (Some(_), [one]) => serde_json::to_string_pretty(one),
                _ => serde_json::to_string_pretty(&states),
            };
            json.context("cannot encode the state")? + "\n"
        } else if self.name.is_some() {
            states.iter().map(details).collect()
        } else {
            table(&states)
        };
        print!("{out}");
        Ok(0)
    }
}

/// The exit status in words: `0`, `137 (SIGKILL)`, `OOM-killed`…
fn exit(state: &State) -> String {
    let Some(code) = state.exit_code else {
        return "-".into();
    };
    let mut text = code.to_string();
    if code > 128
        && let Ok(signal) = nix::sys::signal::Signal::try_from(code - 128)
    {
        text = format!("{code} ({signal})");
    }
    if state.oom_killed {
        text.push_str(", OOM-killed: over its memory limit");
    }
    text
}

fn details(state: &State) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: &str| out.push_str(&format!("{key:<9} {value}\n"));
    line("name", &state.id);
    line("status", &state.status.to_string());
    if state.pid != 0 {
        line("pid", &state.pid.to_string());
    }
    line("image", &state.image);
    line("command", &state.command.join(" "));
    if let Some(network) = &state.network {
        line("network", &network.mode.to_string());
        let ports: Vec<String> = network.ports.iter().map(|p| p.to_string()).collect();
        if !ports.is_empty() {
            line("ports", &ports.join(", "));
        }
    }
    line("created", &state.created);
    line("started", state.started.as_deref().unwrap_or("-"));
    if let Some(finished) = &state.finished {
        line("finished", finished);
    }
    if state.status == crate::state::Status::Stopped {
        line("exit", &exit(state));
    }
    if let Some(note) = &state.note {
        line("note", note);
    }
    out
}

fn table(states: &[State]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "STATUS".into(),
        "PID".into(),
        "EXIT".into(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
    ]];
    for state in states {
        rows.push([
            state.id.clone(),
            state.status.to_string(),
            if state.pid == 0 {
                "-".into()
            } else {
                state.pid.to_string()
            },
            state.exit_code.map_or("-".into(), |code| code.to_string()),
            crate::image::shown(&state.image).to_string(),
            state.command.join(" "),
            state.created.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_string() + "\n"
        })
        .collect()
}
