// Your copy of solutions/11-oci-runtime/src/console.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! `--console-socket`: a terminal for a container whose runtime does not stay to relay
//! it. Book: section 11.7.
//!
//! Chapter 1's `-t` makes a pseudo-terminal in the container and sends its master side
//! to the runtime, which copies between it and the user's terminal until the end. Here
//! the runtime exits after `create`, so the master side goes to whoever will stay:
//! podman's conmon listens on a Unix socket and passes its path. The container connects
//! nothing itself: `create` connects before the clone (the path is the host's), the
//! container inherits the socket, and sends the master through it with `SCM_RIGHTS`,
//! as chapter 1's child sends it over the start-up channel.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, MsgFlags};

use crate::trace;
use crate::{mounts, terminal};

/// In `create`, before the clone: connects to the socket the caller listens on.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let stream = UnixStream::connect(path).with_context(|| {
        format!("cannot connect to the console socket {}", path.display())
    })?;
    Ok(OwnedFd::from(stream))
}

// ANCHOR: send_terminal
/// In the container, once its `/dev/pts` is mounted: makes a new terminal, sends its
/// master side through `socket`, and makes the other side the controlling terminal and
/// the command's 0, 1 and 2.
pub fn send_terminal(socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    let (master, terminal) = terminal::open_pseudo_terminal(Path::new("/dev/ptmx"))?;
    if let Some((rows, cols)) = size {
        set_window_size(&master, rows, cols);
    }
    // runc sends the terminal's name as the message: conmon reads the descriptor.
    let name = b"/dev/ptmx";
    let fds = [master.as_raw_fd()];
    let rights = [ControlMessage::ScmRights(&fds)];
    let sent = socket::sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name)],
        &rights,
        MsgFlags::empty(),
        None,
    );
    trace::syscall(
        format_args!("sendmsg(console socket, SCM_RIGHTS [{}])", fds[0]),
        sent,
    )?;
    drop(master); // the container must not hold it
    bind_onto_console(&terminal)?;
    // SAFETY: TIOCSCTTY takes an integer argument and touches no memory of ours.
    let result = unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSCTTY, 0) };
    let call = format_args!("ioctl({}, TIOCSCTTY, 0)", terminal.as_raw_fd());
    trace::syscall(call, Errno::result(result).map(drop))?;
    for number in [0, 1, 2] {
        terminal::duplicate_onto(&terminal, number)?;
    }
    Ok(())
}
// ANCHOR_END: send_terminal

/// `/dev/console` is the container's terminal too, as runc and crun make it: an empty
/// file in the container's `/dev`, with the terminal bound on it.
fn bind_onto_console(terminal: &OwnedFd) -> Result<()> {
    let console = Path::new("/dev/console");
    if std::fs::symlink_metadata(console).is_err() {
        std::fs::File::create(console).context("cannot make /dev/console")?;
    }
    let source = format!("/proc/self/fd/{}", terminal.as_raw_fd());
    let bind = nix::mount::MsFlags::MS_BIND;
    mounts::mount(Some(Path::new(&source)), console, None, bind, None)
}

/// `process.consoleSize`: the rows and columns the caller's terminal has.
fn set_window_size(master: &OwnedFd, rows: u16, cols: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through a pointer valid for the call.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
}
