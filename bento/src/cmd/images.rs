//! `bento images`: the images in the store.

use anyhow::Result;

use crate::home::Home;
use crate::image::Images;

/// List the images that have been pulled
#[derive(Debug, clap::Args)]
pub struct Args {}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let mut out = String::from("IMAGE  ID  PULLED  FROM\n");
        for (name, entry) in Images::at(&home.images).list() {
            let id = &entry.id[..entry.id.len().min(19)];
            let name = crate::image::shown(&name);
            out.push_str(&format!(
                "{name}  {id}  {}  {}\n",
                entry.pulled, entry.made_from
            ));
        }
        print!("{out}");
        Ok(0)
    }
}
