//! Step 08, net: a network stack of our own, with only loopback, up.

use std::os::fd::AsRawFd;

use anyhow::{Context, Result};
use nix::libc;
use nix::sched::{CloneFlags, unshare};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

// ioctl(2) requests of netdevice(7), as nix functions (unsafe: the kernel trusts the struct).
nix::ioctl_read_bad!(get_interface_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(set_interface_flags, libc::SIOCSIFFLAGS, libc::ifreq);

/// unshare(2) CLONE_NEWNET: own interfaces, routes and ports (network_namespaces(7)). A new
/// one has a single interface, the loopback `lo`, and it is down.
///
/// Real runtimes add a veth pair and a bridge (as root), or slirp4netns / pasta (rootless)
/// to reach the outside; bento's containers, like step 08's, only have `lo`.
pub fn enter_network_namespace() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET) failed")?;
    Ok(())
}

/// Brings `lo` up with the ioctl(2) interface of netdevice(7): read the interface flags
/// (SIOCGIFFLAGS), set IFF_UP (SIOCSIFFLAGS). `ip link set lo up` speaks netlink instead.
pub fn bring_up_loopback() -> Result<()> {
    let socket = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("cannot open a socket")?;
    // SAFETY: ifreq is plain old data, for which all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: the socket is open and `request` is a valid ifreq naming an interface; the
    // kernel fills in (and then reads) the flags member of its union, a c_short.
    unsafe {
        get_interface_flags(socket.as_raw_fd(), &mut request)
            .context("ioctl(SIOCGIFFLAGS) on lo failed")?;
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        set_interface_flags(socket.as_raw_fd(), &request)
            .context("ioctl(SIOCSIFFLAGS) on lo failed")?;
    }
    Ok(())
}
