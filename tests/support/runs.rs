//! Running a runtime to its end or while a test talks to it: the time limit, the process
//! group, network namespace and umask of each run, what it printed, and the leak checks after.

use std::io::BufReader;
use std::io::{BufRead, Write};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{assert_nothing_left, cgroups, host_state, new_data_root, HostState, Runtime};

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
            if libc::geteuid() == 0 && in_machine_network && libc::unshare(libc::CLONE_NEWNET) != 0
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
        .filter(|line| !line.trim().is_empty() && !line.starts_with("For more information"))
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
pub fn run_command(runtime: &str, mut command: Command) -> Run {
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
    let child = command
        .stdin(Stdio::null())
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

/// Waits for a started runtime to end and collects what it printed. Past `limit`, ends its
/// whole process group and fails the test.
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
fn read_in_background(
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
fn rest_of(runtime: &str, text: std::sync::mpsc::Receiver<String>) -> String {
    text.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| {
            panic!(
                "{runtime}: the runtime has ended, but a process it started still holds its output"
            )
        })
}

/// A read from a running container that never comes must fail the test, not hang it: unless
/// the returned sender is dropped within [`RUN_LIMIT`], the runtime's process group is
/// ended, and the read sees the end of its pipe.
pub(crate) fn end_group_unless_done(group: i32) -> std::sync::mpsc::Sender<()> {
    let (done, waiting) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = waiting.recv_timeout(RUN_LIMIT) {
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

/// A container that is running, set up, and waiting for a line on its stdin.
pub struct Waiting {
    pub runtime: String,
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
    stderr: Option<BufReader<ChildStderr>>,
    /// What [`Waiting::wait_for_stderr_line`] has read so far.
    stderr_seen: String,
    before: HostState,
    /// The cgroup parent the run was given, checked when it ends.
    cgroup_parent: Option<String>,
}

impl Waiting {
    /// Starts a prepared runtime command whose container prints `ready` once it is set up,
    /// and waits for that line; see [`crate::Runtime::start_waiting`].
    pub fn start(runtime: &str, mut command: Command) -> Waiting {
        let cgroup_parent = cgroups::parent_of(&command);
        let before = host_state();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the runtime starts");
        let stdin = child.stdin.take();
        let stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        let watchdog = end_group_unless_done(child.id() as i32);
        stdout
            .read_line(&mut line)
            .expect("the container's stdout is readable");
        drop(watchdog);
        let waiting = Waiting {
            runtime: runtime.to_string(),
            child,
            stdin,
            stdout: Some(stdout),
            stderr: Some(stderr),
            stderr_seen: String::new(),
            before,
            cgroup_parent,
        };
        assert_eq!(
            line.trim(),
            "ready",
            "{}: the container did not start",
            runtime
        );
        waiting
    }

    /// The host PID of the runtime's own process.
    pub fn runtime_pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The host PID of the container's first process: the runtime's only child.
    pub fn container_pid(&self) -> i32 {
        let pid = self.runtime_pid();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("the runtime's children are listed in /proc");
        let first = children
            .split_whitespace()
            .next()
            .expect("the runtime has a child");
        first.parse().expect("a PID is a number")
    }

    /// The cgroup parent this run was given (chapter 7 on puts its container's cgroup there).
    pub fn cgroup_parent(&self) -> Option<&str> {
        self.cgroup_parent.as_deref()
    }

    /// Lets the container go on (sends it a line) and waits for the runtime to end.
    pub fn release(mut self) -> Run {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        self.finish()
    }

    /// Waits for the runtime to end, for at most [`RUN_LIMIT`].
    pub fn finish(mut self) -> Run {
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting works") {
                break status;
            }
            if Instant::now() > deadline {
                kill_group(&mut self.child);
                panic!(
                    "{}: the container did not end within {RUN_LIMIT:?}",
                    self.runtime
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(self.stdin.take()); // a command still reading its stdin now gets end of file
        let stdout = read_in_background(self.stdout.take());
        let stderr = read_in_background(self.stderr.take());
        let (stdout, stderr) = (
            rest_of(&self.runtime, stdout),
            std::mem::take(&mut self.stderr_seen) + &rest_of(&self.runtime, stderr),
        );
        let run = Run {
            runtime: self.runtime.clone(),
            code: exit_code(status),
            stdout,
            stderr,
        };
        assert_nothing_left(&self.before, &run);
        if let Some(parent) = &self.cgroup_parent {
            cgroups::assert_none_left(parent, &[], &self.runtime, &run.report());
        }
        run
    }

    /// Reads the runtime's stderr until a line contains `text`: with `--trace`, the line
    /// that says a call has been made. A handshake, where a sleep would only guess. Returns
    /// all of stderr read so far.
    pub fn wait_for_stderr_line(&mut self, text: &str) -> String {
        let _watchdog = end_group_unless_done(self.runtime_pid());
        loop {
            let mut line = String::new();
            let stderr = self
                .stderr
                .as_mut()
                .expect("stderr is read only here until finish");
            let read = stderr.read_line(&mut line).expect("stderr is readable");
            self.stderr_seen.push_str(&line);
            assert!(
                read > 0,
                "{}: stderr ended without a line with {text:?}:\n{}",
                self.runtime,
                self.stderr_seen
            );
            if line.contains(text) {
                return self.stderr_seen.clone();
            }
        }
    }
}

impl Drop for Waiting {
    /// A test that fails half-way must not leave a container running, nor its cgroup.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_group(&mut self.child);
        }
        if let Some(parent) = &self.cgroup_parent {
            cgroups::remove_all_under(parent, &[]);
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A runtime started by a test that talks to it as it runs (through a terminal, say).
/// Dropped while it still runs (a test that fails half-way), it is ended with its process
/// group, so no runtime or container outlives the test.
pub struct Started {
    child: Child,
    cgroup_parent: Option<String>,
}

/// Starts a prepared runtime command; see [`Started`].
pub fn start(mut command: Command) -> Started {
    Started {
        cgroup_parent: cgroups::parent_of(&command),
        child: command.spawn().expect("the runtime starts"),
    }
}

impl Started {
    /// The runtime's PID on the host.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the runtime to end, for at most [`RUN_LIMIT`].
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting works") {
                if let Some(parent) = &self.cgroup_parent {
                    cgroups::assert_none_left(parent, &[], "the runtime", "");
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the runtime did not end within {RUN_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_group(&mut self.child);
        }
        if let Some(parent) = &self.cgroup_parent {
            cgroups::remove_all_under(parent, &[]);
        }
    }
}
