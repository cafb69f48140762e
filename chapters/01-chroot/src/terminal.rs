// Your copy of solutions/01-chroot/src/terminal.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The container's terminal. Book: section 1.5, "The terminal".
//!
//! A terminal is more than a file. A program that holds one can ask the kernel to push
//! characters into its input (`TIOCSTI`), as if someone had typed them; with root's
//! privileges it may do so on any terminal it has a descriptor for. So the host's
//! terminal is never handed to the container. Without `-t`, each of stdin, stdout and
//! stderr that is a terminal becomes a pipe, and the runtime copies between the two. With
//! `-t`, as with `docker run -t`, the container gets a new pseudo-terminal of its own:
//! the child makes it, sends the master side to the runtime over the start-up channel,
//! and the runtime copies between it and the host's terminal.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd;

use crate::sync::ChildEnd;
use crate::trace;

/// How the container's stdin, stdout and stderr are connected.
pub enum Stdio {
    /// None of the runtime's is a terminal: the container gets them as they are.
    AsIs,
    /// Some are the host's terminal: the container gets a pipe in place of each.
    Pipes(Vec<Pipe>),
    /// `-t`: a new pseudo-terminal, made by the child.
    NewTerminal,
}

/// A pipe that stands in for one of the runtime's terminal descriptors.
pub struct Pipe {
    /// 0, 1 or 2: which of the container's descriptors it becomes.
    number: RawFd,
    /// The end the container gets.
    container_end: OwnedFd,
    /// The end the runtime copies to or from.
    runtime_end: OwnedFd,
}

/// Is this descriptor a terminal?
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only asks the kernel about a descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

impl Stdio {
    /// Decides before the fork: a new terminal with `-t`, else a pipe for each terminal.
    pub fn choose(new_terminal: bool) -> Result<Stdio> {
        if new_terminal {
            return Ok(Stdio::NewTerminal);
        }
        let mut pipes = Vec::new();
        for number in [0, 1, 2].into_iter().filter(|fd| is_terminal(*fd)) {
            let (read, write) =
                unistd::pipe2(OFlag::O_CLOEXEC).context("cannot make a pipe")?;
            let (container_end, runtime_end) = if number == 0 {
                (read, write)
            } else {
                (write, read)
            };
            pipes.push(Pipe {
                number,
                container_end,
                runtime_end,
            });
        }
        Ok(if pipes.is_empty() {
            Stdio::AsIs
        } else {
            Stdio::Pipes(pipes)
        })
    }

    // ANCHOR: connect_child
    /// In the child, which already leads a session of its own: puts the pipes on 0, 1 and
    /// 2, or makes a new terminal from `ptmx`, sends its master side to the runtime, and
    /// makes the other side this process's controlling terminal and its 0, 1 and 2.
    pub fn connect_child(&self, channel: &ChildEnd, ptmx: &Path) -> Result<()> {
        match self {
            Stdio::AsIs => Ok(()),
            Stdio::Pipes(pipes) => {
                for pipe in pipes {
                    duplicate_onto(&pipe.container_end, pipe.number)?;
                }
                Ok(())
            }
            Stdio::NewTerminal => {
                let (master, terminal) = open_pseudo_terminal(ptmx)?;
                copy_window_size(&terminal);
                channel.send_terminal(&master)?;
                drop(master); // the container must not hold it
                let call = format_args!("ioctl({}, TIOCSCTTY, 0)", terminal.as_raw_fd());
                // SAFETY: TIOCSCTTY takes an integer argument and touches no memory of
                // ours.
                let result =
                    unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSCTTY, 0) };
                trace::syscall(call, Errno::result(result).map(drop))?;
                for number in [0, 1, 2] {
                    duplicate_onto(&terminal, number)?;
                }
                Ok(())
            }
        }
    }
    // ANCHOR_END: connect_child

    /// In the parent, once the command has started: closes the container's ends, and
    /// starts copying. `terminal` is the master side the child sent, with `-t`.
    pub fn start_relay(self, terminal: Option<OwnedFd>) -> Result<Relay> {
        let mut relay = Relay {
            output: Vec::new(),
            saved_mode: None,
        };
        match (self, terminal) {
            (Stdio::AsIs, _) => {}
            (Stdio::Pipes(pipes), _) => {
                for pipe in pipes {
                    drop(pipe.container_end);
                    let copier = if pipe.number == 0 {
                        copy_in_background(std::io::stdin().as_fd(), pipe.runtime_end)?
                    } else {
                        let host = host_descriptor(pipe.number)?;
                        let copier = copy_in_background(pipe.runtime_end.as_fd(), host)?;
                        relay.output.push(copier);
                        continue;
                    };
                    drop(copier); // stdin's copier may wait for input for ever: let it
                }
            }
            (Stdio::NewTerminal, Some(master)) => {
                relay.saved_mode = raw_mode_on_stdin()?;
                follow_window_size(&master)?;
                let to_container =
                    master.try_clone().context("cannot copy a descriptor")?;
                drop(copy_in_background(std::io::stdin().as_fd(), to_container)?);
                let host = host_descriptor(1)?;
                relay.output.push(copy_in_background(master.as_fd(), host)?);
            }
            (Stdio::NewTerminal, None) => {
                bail!("the container did not send its terminal")
            }
        }
        Ok(relay)
    }
}

/// The copying between the container and the host, while the container runs.
pub struct Relay {
    output: Vec<JoinHandle<()>>,
    saved_mode: Option<Termios>,
}

impl Relay {
    /// After the container has ended: waits until its last output is copied, and puts the
    /// host's terminal back as it was.
    pub fn finish(mut self) {
        for copier in self.output.drain(..) {
            let _ = copier.join();
        }
        self.restore_mode();
    }

    fn restore_mode(&mut self) {
        if let Some(mode) = self.saved_mode.take() {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &mode);
        }
    }
}

impl Drop for Relay {
    /// On every way out, an error included, the host's terminal gets its mode back.
    fn drop(&mut self) {
        self.restore_mode();
    }
}

/// Opens a new pseudo-terminal pair from the `ptmx` device: the master side, which the
/// runtime keeps, and the terminal the container uses.
pub fn open_pseudo_terminal(ptmx: &Path) -> Result<(OwnedFd, OwnedFd)> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let opened = fcntl::open(ptmx, flags, Mode::empty());
    let master = trace::syscall(format_args!("open({ptmx:?}, O_RDWR|O_NOCTTY)"), opened)?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which is valid for the call.
    let result = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    let call = format_args!("ioctl({}, TIOCSPTLCK, 0)", master.as_raw_fd());
    trace::syscall(call, Errno::result(result).map(drop))?;
    // TIOCGPTPEER opens the other side through the master, not by a path in /dev/pts that
    // someone could have replaced.
    let peer_flags = libc::O_RDWR | libc::O_NOCTTY;
    // SAFETY: TIOCGPTPEER takes open flags as an integer and returns a new descriptor.
    let peer = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, peer_flags) };
    let call = format_args!(
        "ioctl({}, TIOCGPTPEER, O_RDWR|O_NOCTTY)",
        master.as_raw_fd()
    );
    let peer = trace::syscall(call, Errno::result(peer).map(|fd| fd as usize))?;
    // SAFETY: the kernel has just made this descriptor for us, and nothing else has it.
    let terminal = unsafe { OwnedFd::from_raw_fd(peer as RawFd) };
    Ok((master, terminal))
}

/// Gives the new terminal the size of the host's, so full-screen programs draw right.
fn copy_window_size(terminal: &OwnedFd) {
    copy_size(0, terminal.as_raw_fd());
}

/// Passes each change of the host terminal's size on to the container's: the kernel tells
/// the runtime with SIGWINCH, and setting the size on the master side makes the kernel
/// tell the container's programs the same way. A thread of its own waits for the signal,
/// which is blocked in this thread (and so in every thread started after it) for that.
fn follow_window_size(master: &OwnedFd) -> Result<()> {
    let mut resized = SigSet::empty();
    resized.add(Signal::SIGWINCH);
    resized.thread_block().context("cannot block SIGWINCH")?;
    let master = master.try_clone().context("cannot copy a descriptor")?;
    std::thread::spawn(move || {
        while resized.wait().is_ok() {
            copy_size(0, master.as_raw_fd());
        }
    });
    Ok(())
}

/// Copies the window size of terminal `from` to terminal `to`, if `from` is a terminal.
fn copy_size(from: RawFd, to: RawFd) {
    // SAFETY: an all-zero winsize is valid, and TIOCGWINSZ / TIOCSWINSZ read or write one
    // winsize through a pointer that is valid for the call.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &size);
        }
    }
}

/// `dup2(from, number)`: the copy at `number` is not close-on-exec, so the command keeps
/// it.
pub fn duplicate_onto(from: &OwnedFd, number: RawFd) -> Result<()> {
    let raw = from.as_raw_fd();
    // SAFETY: dup2 only makes `number` refer to the same open file as `raw`.
    let result = unsafe { libc::dup2(raw, number) };
    let call = format_args!("dup2({raw}, {number})");
    trace::syscall(call, Errno::result(result).map(drop))?;
    Ok(())
}

/// Puts the host's terminal in raw mode: every key goes to the container at once, Ctrl-C
/// included, and the container's terminal does the echoing and line editing. Returns the
/// mode to put back, or `None` when stdin is not a terminal.
fn raw_mode_on_stdin() -> Result<Option<Termios>> {
    if !is_terminal(0) {
        return Ok(None);
    }
    let saved = termios::tcgetattr(std::io::stdin())
        .context("cannot read the terminal's mode")?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &raw)
        .context("cannot put the terminal in raw mode")?;
    Ok(Some(saved))
}

/// A descriptor of our own for the host's stdout or stderr, for a copier thread to own.
fn host_descriptor(number: RawFd) -> Result<OwnedFd> {
    // SAFETY: 1 and 2 stay open for the life of the runtime; we only borrow to copy it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(number) };
    borrowed
        .try_clone_to_owned()
        .with_context(|| format!("cannot copy descriptor {number}"))
}

/// Copies from `from` to `to` in a thread of its own until `from` ends. A terminal's
/// master side "ends" with EIO once the container's side is closed everywhere.
fn copy_in_background(
    from: std::os::fd::BorrowedFd<'_>,
    to: OwnedFd,
) -> Result<JoinHandle<()>> {
    let from = from
        .try_clone_to_owned()
        .context("cannot copy a descriptor")?;
    Ok(std::thread::spawn(move || {
        let mut reader = std::fs::File::from(from);
        let mut writer = std::fs::File::from(to);
        let mut buffer = [0u8; 8192];
        while let Ok(count) = reader.read(&mut buffer) {
            if count == 0 || writer.write_all(&buffer[..count]).is_err() {
                break;
            }
        }
    }))
}
