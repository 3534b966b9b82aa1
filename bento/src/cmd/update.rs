//! `bento update [--resources FILE|-] [--memory SIZE] … NAME`: new limits for a running
//! container, in place (runc's `update`; Kubernetes resizes pods this way).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cgroups::Resources;
use crate::home::Home;

/// Change a running container's resource limits: an OCI `linux.resources` (JSON) from FILE
/// or stdin (-), or single limits; what is not given stays
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An OCI `linux.resources` object, as JSON, in FILE (`-`: stdin)
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit (64m, 1g)
    #[arg(short, long, value_name = "SIZE", value_parser = plumbing::parse_size)]
    pub memory: Option<u64>,
    /// Memory reservation: reclaimed down to this under pressure
    #[arg(long = "memory-reservation", value_name = "SIZE", value_parser = plumbing::parse_size)]
    pub memory_reservation: Option<u64>,
    /// Memory plus swap (-1: unlimited swap)
    #[arg(long = "memory-swap", value_name = "SIZE", allow_negative_numbers = true, value_parser = swap_size)]
    pub memory_swap: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPU time per period, in microseconds (-1: no limit)
    #[arg(long = "cpu-quota", value_name = "US", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// The CPU period, in microseconds
    #[arg(long = "cpu-period", value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPUs the container may run on (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes it may use
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Most processes at once
    #[arg(long = "pids-limit", value_name = "N")]
    pub pids_limit: Option<i64>,
    /// Block I/O weight (10-1000)
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// The container's name
    pub name: String,
}

/// `--memory-swap`: a size, or -1.
fn swap_size(text: &str) -> Result<i64, String> {
    match text {
        "-1" => Ok(-1),
        _ => plumbing::parse_size(text).and_then(|n| i64::try_from(n).map_err(|e| e.to_string())),
    }
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let mut resources = match &self.resources {
            Some(path) => {
                let mut json = String::new();
                match path.as_os_str() == "-" {
                    true => std::io::stdin().read_to_string(&mut json),
                    false => {
                        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut json))
                    }
                }
                .with_context(|| format!("cannot read {}", path.display()))?;
                let oci: oci_spec::runtime::LinuxResources = serde_json::from_str(&json)
                    .with_context(|| {
                        format!("{} is not an OCI linux.resources object", path.display())
                    })?;
                Resources::from_oci(&oci)
            }
            None => Resources::default(),
        };
        let size = |n: u64| i64::try_from(n).ok();
        resources.memory = self.memory.and_then(size).or(resources.memory);
        resources.memory_reservation = self
            .memory_reservation
            .and_then(size)
            .or(resources.memory_reservation);
        resources.memory_swap = self.memory_swap.or(resources.memory_swap);
        resources.cpu_shares = self.cpu_shares.or(resources.cpu_shares);
        resources.cpu_quota = self.cpu_quota.or(resources.cpu_quota);
        resources.cpu_period = self.cpu_period.or(resources.cpu_period);
        resources.cpus = self.cpuset_cpus.or(resources.cpus);
        resources.mems = self.cpuset_mems.or(resources.mems);
        resources.pids = self.pids_limit.or(resources.pids);
        resources.blkio_weight = self.blkio_weight.or(resources.blkio_weight);
        for what in crate::lifecycle::update(home, &self.name, resources)? {
            eprintln!("bento: warning: {what}");
        }
        Ok(0)
    }
}
