//! Resource limits (the talk's "cgroups"): placeholder, filled in below.

use anyhow::Result;

use crate::spec::Spec;
use crate::state::Container;

/// A container's cgroup.
#[derive(Debug)]
pub struct Cgroup;

impl Cgroup {
    /// The container's cgroup, with its limits, if it has any.
    pub fn create(_container: &Container, _spec: &Spec) -> Result<Option<Cgroup>> {
        Ok(None)
    }

    /// The cgroup a running container has, if any (for `exec`).
    pub fn of(_container: &Container, _spec: &Spec) -> Option<Cgroup> {
        None
    }

    /// Moves the calling process into the cgroup.
    pub fn join(&self) -> Result<()> {
        Ok(())
    }

    pub fn oom_killed(&self) -> bool {
        false
    }

    pub fn remove(&self) -> Result<()> {
        Ok(())
    }
}

/// Removes a container's cgroup if its supervisor could not (it was killed).
pub fn remove_leftover(_container: &Container) {}
