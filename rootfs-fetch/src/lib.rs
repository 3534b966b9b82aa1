//! rootfs-fetch: builds the root filesystem that the Bento workshop's steps 04+ run in,
//! from a registry, a `docker save` tarball, an OCI layout, or the host's busybox.

pub mod blob;
pub mod busybox;
pub mod cache;
pub mod extract;
pub mod image;
pub mod install;
pub mod interrupt;
pub mod layout;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod source;
