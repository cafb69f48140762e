// solutions/11-oci-runtime/src/fifo.rs without its exercise markers, made by `cargo xtask gen` for the book's folded answers.
//! The exec FIFO: how a container made by `create` waits for `start`, when the process
//! that made it is long gone. Book: section 11.1.
//!
//! Chapters 1 to 10 keep the runtime and the container in step over a socket pair, both
//! ends alive the whole time. Here `create` exits once the container is ready, so the
//! wait must hang on something in the state directory: a FIFO, as runc's `exec.fifo`.
//! Opening a FIFO for writing blocks until someone opens it for reading. The container,
//! its set-up done, opens it for writing, and so sleeps; `start` opens it for reading,
//! which wakes it; the container writes one byte to say so and runs its command.
//!
//! The container's root no longer shows the state directory, so it opens the FIFO before
//! `pivot_root` as a bare handle (`O_PATH`, which neither reads nor writes, and so does
//! not block), and reopens that handle for writing through `/proc/self/fd/N`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::fcntl::{self, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::unistd::{self, Pid};

use crate::statedir::{self, EXEC_FIFO};
use crate::trace;

/// Makes the FIFO in the container's state directory.
pub fn make(state_dir: &Path) -> Result<PathBuf> {
    let path = state_dir.join(EXEC_FIFO);
    let made = unistd::mkfifo(&path, Mode::from_bits_truncate(0o622));
    trace::syscall(format_args!("mkfifo({path:?}, 0622)"), made)?;
    // Set again past the umask: the container's user, who may not be root, opens it
    // for writing.
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o622);
    std::fs::set_permissions(&path, mode)?;
    Ok(path)
}

/// A handle on the FIFO that the container keeps across `pivot_root`.
pub fn handle(path: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    let handle = fcntl::open(path, flags, Mode::empty());
    Ok(trace::syscall(
        format_args!("open({path:?}, O_PATH)"),
        handle,
    )?)
}

// ANCHOR: wait_for_start
/// In the container, the last step before its command: blocks until `start` opens the
/// FIFO, then writes the byte that tells `start` it was heard. The descriptor is
/// close-on-exec, so the command never sees it.
pub fn wait_for_start(handle: &OwnedFd) -> Result<()> {
    let name = format!("/proc/self/fd/{}", handle.as_raw_fd());
    let opened = fcntl::open(
        name.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let fifo = trace::syscall(format_args!("open({name:?}, O_WRONLY)"), opened)
        .context("cannot open the exec FIFO: the container needs a /proc")?;
    trace::syscall(
        format_args!("write(exec.fifo, \"0\")"),
        unistd::write(&fifo, b"0"),
    )?;
    Ok(())
}
// ANCHOR_END: wait_for_start

// ANCHOR: release
/// `start`: opens the FIFO for reading, which wakes the container, and waits for its
/// byte. Opened without blocking, and polled, so that a container that died meanwhile is
/// noticed instead of waited for for ever. The FIFO goes: the container is running.
pub fn release(state_dir: &Path, pid: Pid, pid_start: u64) -> Result<()> {
    let path = state_dir.join(EXEC_FIFO);
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fifo = trace::syscall(
        format_args!("open({path:?}, O_RDONLY|O_NONBLOCK)"),
        fcntl::open(&path, flags, Mode::empty()),
    )?;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(Duration::from_millis(100))
            .unwrap_or(PollTimeout::NONE);
        let ready = poll(&mut fds, timeout).context("poll(exec.fifo)")?;
        let events = fds[0].revents().unwrap_or(PollFlags::empty());
        if ready > 0 && events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            let mut byte = [0u8; 1];
            let read = unistd::read(&fifo, &mut byte).context("read(exec.fifo)")?;
            if read == 1 {
                break;
            }
            bail!("the container closed its exec FIFO without starting: it failed, see its output");
        }
        if !statedir::is_alive(pid, pid_start) {
            bail!("the container's process ended before it was started");
        }
    }
    std::fs::remove_file(&path)
        .with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(())
}
// ANCHOR_END: release
