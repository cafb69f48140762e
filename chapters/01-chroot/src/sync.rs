// Your copy of solutions/01-chroot/src/sync.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The start-up channel: how the runtime and the container's first process keep in step.
//! Book: section 1.5.
//!
//! Two things need it. The child must not start before the parent has done its part on
//! the host (from chapter 5 on: user id maps, a network link, a cgroup), so it waits for
//! "go". And the parent must know whether the child got as far as `execve`: a command
//! that exits with 125 and a set-up step that failed look the same in an exit code. So
//! the child's end is close-on-exec: when `execve` works, the kernel closes it and the
//! parent reads "end of file"; when a step fails, the child sends the error's text
//! instead, and the parent prints it. runc, crun and youki all start containers this way.

use std::cell::Cell;
use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, ControlMessage, ControlMessageOwned};
use nix::sys::socket::{MsgFlags, SockFlag, SockType};
use nix::unistd;

use crate::trace;

/// What the parent sends when the child may go on.
const GO: &[u8] = b"go";

/// The first byte of each message the child sends: a failure (then the exit code and the
/// text), or the terminal's master side (then nothing: the descriptor travels beside it).
const FAILED: u8 = b'E';
const TERMINAL: u8 = b'T';

/// What the parent learns when the command has started.
pub struct Started {
    /// With `-t`: the master side of the container's pseudo-terminal, to relay.
    pub terminal: Option<OwnedFd>,
}

/// The parent's end: it says "go", then learns how the start went.
pub struct ParentEnd(End);

/// The child's end: it waits for "go", and reports a failure. It is close-on-exec, so a
/// successful `execve` closes it.
pub struct ChildEnd(End);

/// One end of the channel. After `fork` or `clone` both processes have a copy of both
/// ends, and each must close the copy it does not use: end of file only comes when every
/// copy of the other end is closed. `close` takes `&self` because a child made by `clone`
/// reaches the ends through a borrow; it closes this process's copy only.
struct End {
    fd: Cell<Option<OwnedFd>>,
}

impl End {
    fn new(fd: OwnedFd) -> End {
        End {
            fd: Cell::new(Some(fd)),
        }
    }

    fn close(&self) {
        drop(self.fd.take());
    }

    /// Reads one message, and the descriptor that came with it, if one did.
    fn receive(&self, message: &mut [u8]) -> Result<(usize, Option<OwnedFd>)> {
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let received = self.with_fd(|fd| {
            let mut iov = [IoSliceMut::new(message)];
            let flags = MsgFlags::MSG_CMSG_CLOEXEC;
            let got =
                socket::recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(&mut space), flags)?;
            let passed = got.cmsgs()?.find_map(|cmsg| match cmsg {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            });
            Ok((got.bytes, passed))
        });
        let (length, passed) =
            trace::syscall(format_args!("recvmsg(channel)"), received)?;
        // SAFETY: the kernel has just made this descriptor for us, and nothing else has it.
        let passed = passed.map(|raw| unsafe { OwnedFd::from_raw_fd(raw) });
        Ok((length, passed))
    }

    fn with_fd<T>(
        &self,
        use_fd: impl FnOnce(&OwnedFd) -> nix::Result<T>,
    ) -> nix::Result<T> {
        let fd = self.fd.take().ok_or(Errno::EBADF)?;
        let result = use_fd(&fd);
        self.fd.set(Some(fd));
        result
    }
}

/// Why the container did not start: the exit code to end with, and the child's message.
#[derive(Debug)]
pub struct SetupFailed {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for SetupFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SetupFailed {}

// ANCHOR: channel
/// A connected pair of sockets. `SOCK_SEQPACKET` keeps each message whole, and
/// `SOCK_CLOEXEC` makes both ends close themselves on `execve`.
pub fn channel() -> Result<(ParentEnd, ChildEnd)> {
    let pair = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    );
    let call = format_args!("socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC)");
    let (parent, child) = trace::syscall(call, pair)?;
    Ok((ParentEnd(End::new(parent)), ChildEnd(End::new(child))))
}
// ANCHOR_END: channel

/// The error for a call that was narrated before it was made.
fn failed(call: &str, errno: Errno) -> trace::SyscallError {
    trace::SyscallError {
        call: call.to_string(),
        errno,
    }
}

impl ParentEnd {
    /// Lets the child go on: the host side is ready.
    pub fn send_go(&self) -> Result<()> {
        // Narrated before it is sent: once it is, the child's lines may come at once.
        trace::announce(format_args!("write(channel, \"go\")"));
        self.0
            .with_fd(|fd| unistd::write(fd, GO))
            .map_err(|errno| failed("write(channel, \"go\")", errno))?;
        Ok(())
    }

    /// Waits until the child has either started the command (end of file) or failed.
    /// On the way, it may send the master side of a new terminal (`-t`).
    pub fn wait_for_exec(self) -> Result<Started> {
        let mut started = Started { terminal: None };
        loop {
            let mut message = [0u8; 4096];
            let (length, passed_fd) = self.0.receive(&mut message)?;
            match &message[..length] {
                [] => return Ok(started),
                [TERMINAL] => started.terminal = passed_fd,
                [FAILED, code, text @ ..] => {
                    return Err(SetupFailed {
                        code: *code,
                        message: String::from_utf8_lossy(text).into_owned(),
                    }
                    .into())
                }
                other => bail!(
                    "the container sent a message the runtime does not know: {other:?}"
                ),
            }
        }
    }

    /// Closes this process's copy: what a child must do first with the parent's end.
    pub fn close(&self) {
        self.0.close();
    }
}

impl ChildEnd {
    /// Waits for the parent's "go". End of file means the parent is gone: nobody would
    /// wait for this container, so it must not start.
    pub fn wait_for_go(&self) -> Result<()> {
        let mut message = [0u8; 16];
        let read = self.0.with_fd(|fd| unistd::read(fd, &mut message));
        let length = trace::syscall(format_args!("read(channel)"), read)?;
        if &message[..length] != GO {
            bail!("the runtime went away before the container started");
        }
        Ok(())
    }

    /// Is the parent's end still open? A look that does not wait: with nothing to read
    /// yet, `recv` fails with EAGAIN while the other end is open, and returns 0 once it
    /// is closed.
    pub fn parent_is_alive(&self) -> bool {
        let mut byte = [0u8; 1];
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_PEEK;
        let peek = self
            .0
            .with_fd(|fd| socket::recv(fd.as_raw_fd(), &mut byte, flags));
        let call = format_args!("recv(channel, MSG_DONTWAIT|MSG_PEEK)");
        matches!(trace::syscall(call, peek), Err(error) if error.errno == Errno::EAGAIN)
    }

    /// Sends the parent the master side of the container's terminal. The descriptor
    /// itself crosses from this process to the parent (`SCM_RIGHTS`): the parent gets its
    /// own descriptor for the same open file.
    pub fn send_terminal(&self, master: &OwnedFd) -> Result<()> {
        let fds = [master.as_raw_fd()];
        let rights = [ControlMessage::ScmRights(&fds)];
        let packet = [IoSlice::new(&[TERMINAL])];
        trace::announce(format_args!(
            "sendmsg(channel, \"T\", SCM_RIGHTS [{}])",
            fds[0]
        ));
        self.0
            .with_fd(|fd| {
                socket::sendmsg::<()>(
                    fd.as_raw_fd(),
                    &packet,
                    &rights,
                    MsgFlags::empty(),
                    None,
                )
            })
            .map_err(|errno| failed("sendmsg(channel)", errno))?;
        Ok(())
    }

    /// Sends the parent the exit code and the message of a failed start.
    pub fn report_failure(&self, code: u8, message: &str) -> Result<()> {
        let mut packet = vec![FAILED, code];
        packet.extend_from_slice(message.as_bytes());
        trace::announce(format_args!("write(channel, [{code}, {message:?}])"));
        self.0
            .with_fd(|fd| unistd::write(fd, &packet))
            .map_err(|errno| failed("write(channel, ...)", errno))?;
        Ok(())
    }

    /// The descriptor's number, while this process has it open.
    pub fn raw_fd(&self) -> Option<RawFd> {
        self.0.with_fd(|fd| Ok(fd.as_raw_fd())).ok()
    }

    /// Closes this process's copy: an init, which never execs, gives up its copy so that
    /// only the command's is left for `execve` to close.
    pub fn close(&self) {
        self.0.close();
    }
}
