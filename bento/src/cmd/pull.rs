//! `bento pull IMAGE`: fetch an image into the store (again, if it is there).

use anyhow::Result;

use crate::home::Home;
use crate::image::Images;

/// Pull an image: busybox, docker://REGISTRY/NAME:TAG, docker-archive:FILE, oci:DIR[:TAG],
/// oci-archive:FILE or busybox:[PATH]
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image
    pub image: String,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let pulled = Images::at(&home.images).pull(&self.image)?;
        println!("{} {}", pulled.name, &pulled.id[..pulled.id.len().min(19)]);
        Ok(0)
    }
}
