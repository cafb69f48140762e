// Your copy of solutions/03-pid-namespace/src/spawn.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! `clone(2)`: a fork that can put the child in new namespaces as it is born. `unshare`
//! could not do this for the PID namespace: a process never changes its own PID, so a new
//! PID namespace only takes effect for children created after it. Book: section 3.1.

use std::convert::Infallible;

use anyhow::{bail, Result};
use nix::sched::{self, CloneCb, CloneFlags};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::sync::{self, ChildEnd, ParentEnd};
use crate::{process, trace};

/// The child's stack. Without `CLONE_VM` the child gets its own copy of our memory, so
/// this buffer only has to be big enough for the child's calls; unused pages cost
/// nothing.
const STACK_SIZE: usize = 8 * 1024 * 1024;

/// Starts `body` in a child process in the new namespaces that `flags` name, with the
/// child's end of a start-up channel. Returns the child's PID, as the parent sees it, and
/// the parent's end. The child never returns from `body`.
pub fn clone_child(
    flags: CloneFlags,
    body: impl FnOnce(&ChildEnd) -> Result<Infallible>,
) -> Result<(Pid, ParentEnd)> {
    let (parent_end, child_end) = sync::channel()?;
    let mut body = Some(body);
    let child_main = Box::new(|| {
        trace::set_actor("child");
        parent_end.close(); // the child's copy: see sync::ChildEnd
        let body = body.take().expect("the child runs once");
        process::run_child(&child_end, || body(&child_end))
    });
    let mut stack = vec![0u8; STACK_SIZE];
    let child = clone_into(flags, child_main, &mut stack)?;
    Ok((child, parent_end))
}

// ANCHOR: clone_child
/// `clone(2)`: starts `child_main` on `stack` in a new process, in the namespaces `flags`
/// names, and returns its PID as the parent sees it.
fn clone_into(
    flags: CloneFlags,
    child_main: CloneCb<'_>,
    stack: &mut [u8],
) -> Result<Pid> {
    // TODO: EXERCISE 3.1 (book 3.1): start the child with clone(2) in the namespaces
    //       `flags` names
    // HINT: clone is fork with a choice of what the child shares: `flags` names the new
    // HINT: namespaces. The parent must still hear when the child ends. Narrate the call
    // HINT: with trace::syscall: a test reads the trace. Read section 3.1.
    todo!(
        "exercise 3.1: start the child with clone(2) in the namespaces `flags` names \
         (book section 3.1)"
    )
}
// ANCHOR_END: clone_child

// ANCHOR: die_with_parent
/// If the runtime dies, the container must not live on with nobody to wait for it: the
/// kernel is asked to send SIGKILL when the parent dies. The parent may already have died
/// before this call, which the kernel would not notice; the channel would: the parent's
/// end closes when it dies.
pub fn die_with_parent(channel: &ChildEnd) -> Result<()> {
    let request = prctl::set_pdeathsig(Signal::SIGKILL);
    trace::syscall(format_args!("prctl(PR_SET_PDEATHSIG, SIGKILL)"), request)?;
    if !channel.parent_is_alive() {
        bail!("the runtime went away while the container was starting");
    }
    Ok(())
}
// ANCHOR_END: die_with_parent
