//! Running a runtime to its end: the time limit, the process group, network namespace and
//! umask of each run, what it printed, and the leak checks after. (One that a test talks
//! to while it runs is in `running`.)

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{assert_nothing_left, cgroups, host_state, new_data_root, Runtime};

/// What a finished container run left: its exit code and what it printed.
#[derive(Debug)]
pub struct Run {
    pub runtime: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Fails with everything the run printed, so a learner sees why.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            code,
            "{}: wrong exit code\n{}",
            self.runtime,
            self.report()
        );
        self
    }

    pub fn expect_success(&self) -> &Run {
        self.expect_code(0)
    }

    /// The values of `key: value` lines the probe printed, in order.
    pub fn values(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}: ");
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// The single value of a `key: value` line.
    pub fn value(&self, key: &str) -> String {
        let values = self.values(key);
        assert_eq!(
            values.len(),
            1,
            "{}: expected one {key:?} line\n{}",
            self.runtime,
            self.report()
        );
        values[0].clone()
    }

    pub fn report(&self) -> String {
        format!(
            "--- exit code: {}\n--- stdout:\n{}--- stderr:\n{}---",
            self.code, self.stdout, self.stderr
        )
    }
}

/// How long a container run may take before the test gives up on it. A run that hangs
/// (an exercise that never returns, say) must fail the test, not stop the whole suite.
pub const RUN_LIMIT: Duration = Duration::from_secs(20);

/// Puts the runtime in a process group of its own, so that a test can end it and every
/// process it started at once, and gives it the usual umask (022), so that a mode the
/// runtime forgets to set shows up the same way on every machine. A runtime that root
/// starts in the machine's own network namespace is moved to a new, empty one: from
/// chapter 6 on it makes a bridge, links and NAT rules, and those must never touch the
/// machine's network. (A test that means it to share one with others starts it in a
/// [`NetHost`].) From chapter 7 each run also gets a cgroup parent of its own (see
/// [`cgroups`]).
pub fn in_own_group_with_umask(command: &mut Command) {
    cgroups::give_own_parent(command);
    let machine_network = machine_network_namespace();
    // SAFETY: the closure runs in the forked child before exec and makes only system calls
    // that are safe there: setpgid, umask, geteuid, stat and unshare.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            libc::umask(0o022);
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let in_machine_network = network_namespace_of_self() == Some(machine_network);
            if libc::geteuid() == 0
                && in_machine_network
                && libc::unshare(libc::CLONE_NEWNET) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// The machine's own network namespace: the one this test process started in.
fn machine_network_namespace() -> u64 {
    static MACHINE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MACHINE.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self/ns/net")
            .expect("/proc/self/ns/net is readable")
            .ino()
    })
}

/// The network namespace of the calling thread, by `stat` alone (safe after `fork`).
fn network_namespace_of_self() -> Option<u64> {
    // SAFETY: stat writes only into the zeroed struct it is given.
    unsafe {
        let mut status: libc::stat = std::mem::zeroed();
        let path = c"/proc/thread-self/ns/net";
        (libc::stat(path.as_ptr(), &mut status) == 0).then_some(status.st_ino)
    }
}

/// The run failed before the container started (125, the runtime's failure; 2 would be a
/// usage error), with one line that says `expected` (clap's "For more information" hint
/// aside).
pub fn assert_one_line_error(runtime: &Runtime, run: &Run, expected: &str) {
    assert!(
        [2, 125].contains(&run.code) && run.stderr.contains(expected),
        "{}: expected an error with {expected:?}: {}",
        runtime.name,
        run.report()
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| {
            !line.trim().is_empty() && !line.starts_with("For more information")
        })
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: one line, not:\n{}",
        runtime.name,
        run.stderr
    );
}

/// Runs a prepared container command to its end (for at most [`RUN_LIMIT`]) and checks
/// that it left nothing behind on the host.
pub fn run_command(runtime: &str, command: Command) -> Run {
    run_command_fed(runtime, command, None)
}

/// The same, with `input` as its standard input (`login --password-stdin`), where
/// [`run_command`] gives it none.
pub fn run_command_fed(
    runtime: &str,
    mut command: Command,
    input: Option<std::fs::File>,
) -> Run {
    // A command a test put together itself gets the same guards as the harness's own: a
    // network namespace of its own when root starts it, and a data root of its own.
    in_own_group_with_umask(&mut command);
    let own_data_root = command
        .get_envs()
        .all(|(name, _)| name != "BYOC_ROOT")
        .then(new_data_root);
    if let Some(dir) = &own_data_root {
        command.env("BYOC_ROOT", dir.path());
    }
    let cgroup_parent = cgroups::parent_of(&command);
    let before = host_state();
    let stdin = input.map_or_else(Stdio::null, Stdio::from);
    let child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {runtime}: {error}"));
    let run = finish_within(runtime, child, RUN_LIMIT);
    assert_nothing_left(&before, &run);
    if let Some(parent) = cgroup_parent {
        cgroups::assert_none_left(&parent, &[], runtime, &run.report());
    }
    run
}

/// Waits for a started runtime to end and collects what it printed. Past `limit`, ends
/// its whole process group and fails the test.
fn finish_within(runtime: &str, mut child: Child, limit: Duration) -> Run {
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting works") {
            break status;
        }
        if Instant::now() > deadline {
            kill_group(&mut child);
            let stderr = stderr.recv_timeout(Duration::from_secs(1));
            panic!(
                "{runtime}: the container did not end within {} s\n--- stderr:\n{}",
                limit.as_secs(),
                stderr.unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        runtime: runtime.to_string(),
        code: exit_code(status),
        stdout: rest_of(runtime, stdout),
        stderr: rest_of(runtime, stderr),
    }
}

/// Reads a pipe to its end in a thread of its own; [`rest_of`] collects what it read.
pub(crate) fn read_in_background(
    pipe: Option<impl std::io::Read + Send + 'static>,
) -> std::sync::mpsc::Receiver<String> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut text);
        }
        let _ = send.send(String::from_utf8_lossy(&text).into_owned());
    });
    receive
}

/// What a pipe of the runtime held after the runtime ended. The pipe ends when the last
/// process holding it does; if that takes seconds, a container outlived its runtime.
pub(crate) fn rest_of(runtime: &str, text: std::sync::mpsc::Receiver<String>) -> String {
    text.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| {
            panic!(
                "{runtime}: the runtime has ended, but a process it started still holds its output"
            )
        })
}

/// A read from a running container that never comes must fail the test, not hang it:
/// unless the returned sender is dropped within [`RUN_LIMIT`], the runtime's process
/// group is ended, and the read sees the end of its pipe.
pub(crate) fn end_group_unless_done(group: i32) -> std::sync::mpsc::Sender<()> {
    let (done, waiting) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            waiting.recv_timeout(RUN_LIMIT)
        {
            // SAFETY: kill has no memory-safety preconditions; a negative PID names the group.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    });
    done
}

/// Ends the runtime and every process in its group (its containers too, unless they made
/// a group of their own), then collects it.
pub(crate) fn kill_group(child: &mut Child) {
    // SAFETY: kill has no memory-safety preconditions; a negative PID names the group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
}

pub(crate) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
