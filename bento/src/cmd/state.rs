//! `bento state ID`: the OCI runtime state of a container, as JSON (runtime.md, "State").

use anyhow::{Context, Result};
use serde::Serialize;

use crate::home::Home;
use crate::state::{Container, Status};

/// Print a container's OCI state: ociVersion, id, status (created, running, stopped),
/// pid, bundle, annotations
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's id (its name)
    pub name: String,
}

/// The state as the runtime spec words it (`bento status --json` adds bento's fields).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OciState {
    oci_version: String,
    id: String,
    status: Status,
    pid: i32,
    bundle: std::path::PathBuf,
    annotations: std::collections::BTreeMap<String, String>,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let container = Container::open(home, &self.name)?;
        // Stopped once PID 1 has exited: an engine (conmon) waited for it, not us.
        let state = container.state()?;
        let spec = container.spec()?;
        let oci = OciState {
            oci_version: state.oci_version,
            id: state.id,
            status: state.status,
            pid: state.pid,
            bundle: state.bundle,
            annotations: spec.annotations,
        };
        let json = serde_json::to_string_pretty(&oci).context("cannot encode")? + "\n";
        // Not println!: a closed pipe (`| head`) is an error to report, not a panic.
        std::io::Write::write_all(&mut std::io::stdout(), json.as_bytes())
            .context("cannot write to stdout")?;
        Ok(0)
    }
}
