//! rootfs-fetch: builds the root filesystem that the Bento workshop's steps 04+ run in.

pub mod blob;
pub mod busybox;
pub mod cache;
pub mod extract;
pub mod install;
pub mod platform;
pub mod reference;
pub mod source;
