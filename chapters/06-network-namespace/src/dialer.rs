// Your copy of solutions/06-network-namespace/src/dialer.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Reaching into a network namespace the host has no route to. Book: section 6.5.
//!
//! A rootless container has no bridge: its network namespace has only loopback, and the
//! host cannot send it a packet. But a socket belongs to the network namespace it was
//! made in, whichever process uses it later. So a helper process joins the container's
//! user and network namespaces (it may: the same user made them) and makes sockets there
//! on request, passing each one back over a Unix socket. The runtime connects it to
//! `127.0.0.1:PORT` - the container's own loopback. This is how rootlesskit's port driver
//! works.

use std::convert::Infallible;
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::socket::{
    self, connect, socket, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, SockaddrIn,
};
use nix::unistd::{ForkResult, Pid};

use crate::{process, trace};

/// The runtime's end of the helper's channel.
pub struct InsideDialer {
    channel: Mutex<OwnedFd>,
}

impl InsideDialer {
    /// A TCP connection to `port` on the container's loopback.
    pub fn dial(&self, port: u16) -> io::Result<TcpStream> {
        let socket = {
            let channel = self
                .channel
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            ask_for_socket(&channel)?
        };
        connect(socket.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port))?;
        Ok(TcpStream::from(socket))
    }
}

// ANCHOR: start
/// Starts the helper in the namespaces of `container`: its user namespace too when it has
/// one of its own (`join_user`), since only there may we enter its network namespace.
pub fn start(container: Pid, join_user: bool) -> Result<InsideDialer> {
    let (runtime_end, helper_end) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("cannot make the port helper's channel")?;
    match process::fork()? {
        ForkResult::Child => {
            drop(runtime_end);
            let Err(error) = serve(container, join_user, &helper_end);
            // The runtime sees the channel close and reports a failed connection.
            eprintln!("byoc: the port helper stopped: {error:#}");
            process::exit_now(1)
        }
        ForkResult::Parent { .. } => Ok(InsideDialer {
            channel: Mutex::new(runtime_end),
        }),
    }
}
// ANCHOR_END: start

/// The helper: joins the namespaces, then makes a socket each time it is asked, until the
/// runtime closes the channel (or dies: the kernel then ends the helper too).
fn serve(container: Pid, join_user: bool, channel: &OwnedFd) -> Result<Infallible> {
    trace::set_actor("helper");
    close_all_but(channel)?;
    let request = prctl::set_pdeathsig(Signal::SIGKILL);
    trace::syscall(format_args!("prctl(PR_SET_PDEATHSIG, SIGKILL)"), request)?;
    if join_user {
        join(container, "user", CloneFlags::CLONE_NEWUSER)?;
    }
    join(container, "net", CloneFlags::CLONE_NEWNET)?;
    loop {
        let mut request = [0u8; 1];
        let read = nix::unistd::read(channel, &mut request)?;
        if read == 0 {
            process::exit_now(0);
        }
        let made = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let fds = [made.as_raw_fd()];
        let rights = [ControlMessage::ScmRights(&fds)];
        let packet = [IoSlice::new(b"s")];
        socket::sendmsg::<()>(
            channel.as_raw_fd(),
            &packet,
            &rights,
            MsgFlags::empty(),
            None,
        )?;
    }
}

/// The helper needs none of the runtime's descriptors (its listening sockets, the
/// start-up channel): holding them would keep a port open, or hide the runtime's end,
/// after it left.
fn close_all_but(channel: &OwnedFd) -> Result<()> {
    let keep = channel.as_raw_fd() as libc::c_uint;
    for (first, last) in [(3, keep - 1), (keep + 1, libc::c_uint::MAX)] {
        if first <= last {
            // SAFETY: close_range closes descriptors only; none of them is used again here.
            let closed = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
            let result = Errno::result(closed).map(drop);
            trace::syscall(format_args!("close_range({first}, {last}, 0)"), result)?;
        }
    }
    Ok(())
}

fn join(container: Pid, kind: &str, flag: CloneFlags) -> Result<()> {
    let path = format!("/proc/{container}/ns/{kind}");
    let namespace = File::open(&path).with_context(|| format!("cannot open {path}"))?;
    let joined = setns(&namespace, flag);
    trace::syscall(
        format_args!("setns({path:?}, {})", trace::flags(flag)),
        joined,
    )?;
    Ok(())
}

/// Asks the helper for a socket, and receives it.
fn ask_for_socket(channel: &OwnedFd) -> io::Result<OwnedFd> {
    nix::unistd::write(channel, b"s")?;
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let got = socket::recvmsg::<()>(
        channel.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )?;
    let passed = got.cmsgs()?.find_map(|cmsg| match cmsg {
        ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
        _ => None,
    });
    let raw = passed.ok_or_else(|| io::Error::other("the port helper has stopped"))?;
    // SAFETY: the kernel has just made this descriptor for us, and nothing else has it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
