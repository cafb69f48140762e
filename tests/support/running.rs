//! Runtimes that a test talks to while they run: a container waiting for the test
//! ([`Waiting`]), or a runtime on a terminal ([`Started`]). Dropped half way (a test that
//! fails), they are ended with their process group and their cgroups removed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{
    assert_nothing_left, cgroups, end_group_unless_done, exit_code, host_state,
    kill_group, read_in_background, rest_of, HostState, Run, RUN_LIMIT,
};

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
    /// Starts a prepared runtime command whose container prints `ready` once it is set
    /// up, and waits for that line; see [`crate::Runtime::start_waiting`].
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
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .expect("the runtime's children are listed in /proc");
        let first = children
            .split_whitespace()
            .next()
            .expect("the runtime has a child");
        first.parse().expect("a PID is a number")
    }

    /// The cgroup parent this run was given (chapter 7 on puts its container's cgroup
    /// there).
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
    /// that says a call has been made. A handshake, where a sleep would only guess.
    /// Returns all of stderr read so far.
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
