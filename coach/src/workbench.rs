//! Where the steps are and where a learner's copies go.
//!
//! A learner's copy of step N is `workbench/NN-name/`: a crate of its own (not a member of
//! the workspace), built into `target/workbench/` so that every copy shares the compiled
//! dependencies. `workbench/` is git-ignored: it is the learner's, and nothing here ever
//! overwrites it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plumbing::Hint;

use crate::exercise;

/// The workshop's checkout, and the directory of the learner's copies.
pub struct Workshop {
    pub root: PathBuf,
    pub workbench: PathBuf,
}

/// One step of the workshop.
#[derive(Debug, Clone)]
pub struct Step {
    pub number: usize,
    /// `02-userns`
    pub name: String,
    /// `steps/02-userns`
    pub dir: PathBuf,
}

impl Step {
    /// The package and binary name, `step-02-userns`.
    pub fn package(&self) -> String {
        format!("step-{}", self.name)
    }
}

impl Workshop {
    /// The workshop at `root`, with the learner's copies in `workbench`.
    pub fn new(root: PathBuf, workbench: PathBuf) -> Self {
        Workshop { root, workbench }
    }

    /// Every step, in order.
    pub fn steps(&self) -> Result<Vec<Step>> {
        let dir = self.root.join("steps");
        let mut steps = Vec::new();
        for entry in std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))
            .hint("run bento-coach from the workshop's checkout (`just` does)")?
        {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(Ok(number)) = name.get(..2).map(str::parse) {
                steps.push(Step {
                    number,
                    dir: dir.join(&name),
                    name,
                });
            }
        }
        steps.sort_by_key(|step| step.number);
        Ok(steps)
    }

    /// Step `number`, or an error that lists the steps.
    pub fn step(&self, number: &str) -> Result<Step> {
        let steps = self.steps()?;
        let found = number
            .parse::<usize>()
            .ok()
            .and_then(|n| steps.iter().find(|step| step.number == n));
        match found {
            Some(step) => Ok(step.clone()),
            None => {
                let first = steps.first().map_or(0, |s| s.number);
                let last = steps.last().map_or(0, |s| s.number);
                Err(anyhow::anyhow!("there is no step '{number}'")).hint(format!(
                    "the steps are {first} to {last}: `just exercise 2`"
                ))
            }
        }
    }

    /// The step before `step`, if any.
    pub fn previous(&self, step: &Step) -> Result<Option<Step>> {
        Ok(self
            .steps()?
            .into_iter()
            .take_while(|s| s.number < step.number)
            .last())
    }

    /// The learner's copy of `step`.
    pub fn copy_of(&self, step: &Step) -> PathBuf {
        self.workbench.join(&step.name)
    }

    /// The copy's main.rs, as a path to show (relative to the checkout when inside it).
    pub fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// `just exercise N`: makes the learner's copy of `step`. An existing copy is kept, unless
    /// `reset`, and then it is moved aside, never deleted.
    pub fn create_exercise(&self, step: &Step, reset: bool) -> Result<PathBuf> {
        let copy = self.copy_of(step);
        if copy.exists() {
            if !reset {
                return Err(anyhow::anyhow!(
                    "the exercise {} exists already: your work is kept",
                    self.shown(&copy)
                ))
                .hint(format!(
                    "edit {}/src/main.rs, or start over with `just exercise {} --reset` (your \
                     copy is moved aside, not deleted)",
                    self.shown(&copy),
                    step.number
                ));
            }
            let aside = (1..)
                .map(|n| copy.with_file_name(format!("{}.old-{n}", step.name)))
                .find(|path| !path.exists())
                .unwrap_or_default();
            std::fs::rename(&copy, &aside)
                .with_context(|| format!("cannot move {} aside", copy.display()))?;
            eprintln!("bento-coach: your old copy is now {}", self.shown(&aside));
        }
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        };
        let source = read(&step.dir.join("src/main.rs"))?;
        let previous = match self.previous(step)? {
            Some(previous) => Some(read(&previous.dir.join("src/main.rs"))?),
            None => None,
        };
        let main_rs = exercise::main_rs(&step.name, &source, previous.as_deref())?;
        let manifest = exercise::cargo_toml(
            &read(&step.dir.join("Cargo.toml"))?,
            &read(&self.root.join("Cargo.toml"))?,
            &self.path_to_root(&copy),
        )?;
        // Built in a private directory, then renamed into place: never half an exercise.
        std::fs::create_dir_all(&self.workbench)
            .with_context(|| format!("cannot create {}", self.workbench.display()))?;
        let building = self.workbench.join(format!(".{}.new", step.name));
        if building.exists() {
            plumbing::remove_tree(&building)?;
        }
        std::fs::create_dir_all(building.join("src"))
            .with_context(|| format!("cannot create {}", building.display()))?;
        std::fs::write(building.join("src/main.rs"), main_rs)?;
        std::fs::write(building.join("Cargo.toml"), manifest)?;
        // The workspace's lock file: the same dependency versions as the steps, offline.
        std::fs::copy(self.root.join("Cargo.lock"), building.join("Cargo.lock"))
            .context("cannot copy Cargo.lock")?;
        std::fs::rename(&building, &copy)
            .with_context(|| format!("cannot create {}", copy.display()))?;
        Ok(copy.join("src/main.rs"))
    }

    /// The path from the copy to the checkout: `../..` inside it, absolute outside.
    fn path_to_root(&self, copy: &Path) -> String {
        match copy.strip_prefix(&self.root) {
            Ok(inside) => vec![".."; inside.components().count()].join("/"),
            Err(_) => self.root.display().to_string(),
        }
    }

    /// Step `step`'s copy, or an error that says how to make one.
    pub fn existing_copy(&self, step: &Step) -> Result<PathBuf> {
        let copy = self.copy_of(step);
        if !copy.join("Cargo.toml").is_file() {
            return Err(anyhow::anyhow!(
                "there is no exercise {} yet",
                self.shown(&copy)
            ))
            .hint(format!("make it with `just exercise {}`", step.number));
        }
        Ok(copy)
    }
}

/// The workshop's root when run from inside it: the nearest directory up from `start` with
/// both a `steps/` directory and a Cargo.toml.
pub fn find_root(start: &Path) -> Result<PathBuf> {
    let mut dir = start;
    loop {
        if dir.join("steps").is_dir() && dir.join("Cargo.toml").is_file() {
            return Ok(dir.to_path_buf());
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => bail!("{} is not inside the Bento workshop", start.display()),
        }
    }
}
