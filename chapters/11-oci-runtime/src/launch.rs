// Your copy of solutions/11-oci-runtime/src/launch.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The container's last steps before its command, in the order that keeps each one
//! possible: resource limits and the OOM score while it is still root; the command
//! found; then the user, the capabilities and `no_new_privs`, after which it could do
//! none of the above. Book: section 11.5.

use std::convert::Infallible;
use std::ffi::OsStr;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{self, execve, Gid, Uid};

use crate::capabilities;
use crate::command::{is_executable_file, to_c_string, CommandError};
use crate::plan::Plan;
use crate::spec::Process;
use crate::trace;

/// The search path when the config's environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// While still root: `process.rlimits` (raising a hard limit needs root), the OOM score
/// and the umask.
pub fn set_limits(plan: &Plan) -> Result<()> {
    for limit in &plan.rlimits {
        let value = libc::rlimit {
            rlim_cur: limit.soft,
            rlim_max: limit.hard,
        };
        // SAFETY: setrlimit reads one rlimit through a pointer valid for the call.
        let result = unsafe { libc::setrlimit(limit.resource as _, &value) };
        let call =
            format_args!("setrlimit({}, {}, {})", limit.name, limit.soft, limit.hard);
        trace::syscall(call, Errno::result(result).map(drop)).with_context(|| {
            format!(
                "process.rlimits asks for {} {}, more than this machine allows (the \
                 hard limit the runtime was started with); with podman, ask for less: \
                 --ulimit nofile=4096:4096",
                limit.name, limit.hard
            )
        })?;
    }
    if let Some(score) = plan.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .context("cannot set process.oomScoreAdj")?;
    }
    if let Some(mask) = plan.umask {
        umask(Mode::from_bits_truncate(mask & 0o777));
    }
    Ok(())
}

/// `process.apparmorProfile`: the kernel puts the command under the profile at its
/// `execve`. Refused where AppArmor is not on, rather than run unconfined.
pub fn set_apparmor_profile(plan: &Plan) -> Result<()> {
    let Some(profile) = &plan.apparmor_profile else {
        return Ok(());
    };
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|text| text.trim() == "Y");
    if !enabled {
        anyhow::bail!(
            "process.apparmorProfile {profile:?}: AppArmor is not on in this kernel"
        );
    }
    std::fs::write("/proc/self/attr/apparmor/exec", format!("exec {profile}"))
        .or_else(|_| std::fs::write("/proc/self/attr/exec", format!("exec {profile}")))
        .with_context(|| {
            format!("cannot put the command under the AppArmor profile {profile:?}")
        })
}

/// The command's path inside the container: a name with a `/` is one already; any other
/// is looked up on the `PATH` of the config's environment (chapter 1 used the kit's own).
pub fn find_program(process: &Process) -> Result<PathBuf> {
    let program = &process.args[0];
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = process
        .env
        .iter()
        .find_map(|var| var.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| is_executable_file(candidate))
        .ok_or_else(|| {
            CommandError::NotFound {
                command: program.clone(),
            }
            .into()
        })
}

// ANCHOR: become_user
/// The user and capabilities: the bounding set cut first, while `CAP_SETPCAP` is there;
/// the permitted set kept across the change of user; then the sets the command gets.
/// With no `capabilities` in the config, chapter 1's way: root keeps root's.
pub fn become_user(plan: &Plan) -> Result<()> {
    let user = &plan.process.user;
    let Some(caps) = &plan.capabilities else {
        return switch_ids(user.uid, user.gid, &user.additional_gids);
    };
    capabilities::limit_bounding_set(caps.bounding)?;
    capabilities::keep_across_user_change(true)?;
    switch_ids(user.uid, user.gid, &user.additional_gids)?;
    capabilities::keep_across_user_change(false)?;
    capabilities::set_process_sets(caps)
}
// ANCHOR_END: become_user

fn switch_ids(uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
    let groups: Vec<Gid> = groups.iter().map(|&gid| Gid::from_raw(gid)).collect();
    trace::syscall(
        format_args!("setgroups({:?})", groups),
        unistd::setgroups(&groups),
    )?;
    let gid = Gid::from_raw(gid);
    trace::syscall(format_args!("setgid({gid})"), unistd::setgid(gid))?;
    let uid = Uid::from_raw(uid);
    trace::syscall(format_args!("setuid({uid})"), unistd::setuid(uid))?;
    Ok(())
}

/// `process.noNewPrivileges`: no set-user-ID program, no file capability, can raise
/// what the command has.
pub fn forbid_new_privileges(plan: &Plan) -> Result<()> {
    if !plan.no_new_privileges {
        return Ok(());
    }
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers and touches no memory of ours.
    let result = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    trace::syscall(
        format_args!("prctl(PR_SET_NO_NEW_PRIVS, 1)"),
        Errno::result(result).map(drop),
    )?;
    Ok(())
}

/// Closes every descriptor from 3 up but those in `keep`: the command must get nothing
/// of the runtime's (chapter 1's close_other_fds, with more to keep).
pub fn close_fds_except(keep: &[RawFd]) -> Result<()> {
    let mut keep: Vec<u32> = keep.iter().map(|&fd| fd as u32).collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep.into_iter().filter(|&fd| fd >= 3) {
        if fd > first {
            close_range(first, fd - 1)?;
        }
        first = first.max(fd + 1);
    }
    close_range(first, u32::MAX)
}

fn close_range(first: u32, last: u32) -> Result<()> {
    // SAFETY: close_range only closes descriptors; the ones this process still needs are
    // outside the range.
    let result = unsafe { libc::close_range(first, last, 0) };
    trace::syscall(
        format_args!("close_range({first}, {last}, 0)"),
        Errno::result(result).map(drop),
    )?;
    Ok(())
}

/// `execve` of the program found, with the config's arguments and environment.
pub fn exec(path: &Path, process: &Process) -> Result<Infallible> {
    let path_c = to_c_string(path.as_os_str())?;
    let argv = process
        .args
        .iter()
        .map(|arg| to_c_string(arg))
        .collect::<Result<Vec<_>>>()?;
    let env = process
        .env
        .iter()
        .map(|var| to_c_string(OsStr::new(var)))
        .collect::<Result<Vec<_>>>()?;
    trace::announce(format_args!("execve({path_c:?}, {argv:?}, {env:?})"));
    match execve(&path_c, &argv, &env) {
        Ok(never) => match never {},
        Err(errno) => Err(CommandError::CannotExecute {
            path: path.to_path_buf(),
            errno,
        }
        .into()),
    }
}
