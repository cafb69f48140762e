//! The one way the tests start a runtime's binary, for any subcommand (`run` today; `ps`,
//! `diff`, `image import`, `pull` from chapter 8 on): `BINARY [--trace] ARGS...` with a
//! clean environment, the run's data root, its own process group, umask, network
//! namespace and cgroup parent, as root or as the rootless test user from a staged copy.
//! Run to its end with [`Invocation::run`], it gets the time limit and the leak checks of
//! [`run_command`].

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{
    become_as_at_login, in_own_group_with_umask, run_command_fed, Run, TestUser,
};

/// A start of a runtime's binary, being put together: see the module's header.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The name the run is reported under (the runtime's name).
    name: String,
    binary: PathBuf,
    data_root: PathBuf,
    /// `None`: this process's own user starts it. `Some`: the test user, with a login's
    /// groups.
    user: Option<TestUser>,
    /// Staged copies are started from `/`, so the test user never needs to enter this
    /// process's own working directory.
    working_dir: Option<PathBuf>,
    trace: bool,
    args: Vec<OsString>,
    /// A file for its standard input (none by default).
    input: Option<PathBuf>,
    /// Variables set in its otherwise clean environment (`HOME`, say).
    env: Vec<(String, OsString)>,
}

impl Invocation {
    /// `binary`, reported as `name`, with `data_root` as its `BYOC_ROOT`, run by this
    /// process.
    pub fn new(name: &str, binary: &Path, data_root: &Path) -> Invocation {
        Invocation {
            name: name.to_string(),
            binary: binary.to_path_buf(),
            data_root: data_root.to_path_buf(),
            user: None,
            working_dir: None,
            trace: false,
            args: Vec::new(),
            input: None,
            env: Vec::new(),
        }
    }

    /// Reported as `name`.
    pub fn named(mut self, name: &str) -> Invocation {
        self.name = name.to_string();
        self
    }

    /// Started by `user` (with the groups a login gives it), or by this process's own
    /// user.
    pub fn by(mut self, user: Option<&TestUser>) -> Invocation {
        self.user = user.cloned();
        self
    }

    /// Started from `dir` rather than this process's working directory.
    pub fn from_dir(mut self, dir: &Path) -> Invocation {
        self.working_dir = Some(dir.to_path_buf());
        self
    }

    /// With `--trace` before the subcommand, when `on`: the narration goes to stderr.
    pub fn trace(mut self, on: bool) -> Invocation {
        self.trace = on;
        self
    }

    /// With `name` set to `value` in its environment.
    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Invocation {
        self.env
            .push((name.to_string(), value.as_ref().to_os_string()));
        self
    }

    /// With the file `input` as its standard input.
    pub fn input(mut self, input: &Path) -> Invocation {
        self.input = Some(input.to_path_buf());
        self
    }

    /// The subcommand and its arguments: `["help", "run"]`, say.
    pub fn args<S: AsRef<OsStr>>(
        mut self,
        args: impl IntoIterator<Item = S>,
    ) -> Invocation {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_os_string()));
        self
    }

    /// `run --rootfs ROOTFS OPTIONS... -- COMMAND...`: a container.
    pub fn container(
        self,
        rootfs: &Path,
        options: &[&str],
        command: &[&str],
    ) -> Invocation {
        let rootfs = rootfs.as_os_str();
        self.args([OsStr::new("run"), OsStr::new("--rootfs"), rootfs])
            .args(options)
            .args(["--"])
            .args(command)
    }

    /// The command, not yet started, to adjust before running it with [`run_command`].
    pub fn command(&self) -> Command {
        let mut process = Command::new(&self.binary);
        if self.trace {
            process.arg("--trace");
        }
        process
            .args(&self.args)
            .env_clear()
            .env("TERM", "xterm")
            .env("RUST_BACKTRACE", "0")
            .env("BYOC_ROOT", &self.data_root)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null());
        if let Some(dir) = &self.working_dir {
            process.current_dir(dir);
        }
        if let Some(user) = &self.user {
            become_as_at_login(&mut process, user);
        }
        in_own_group_with_umask(&mut process);
        process
    }

    /// Runs it to its end (for at most [`crate::RUN_LIMIT`]) and checks that it left
    /// nothing behind.
    pub fn run(&self) -> Run {
        let input = self.input.as_ref().map(|path| {
            std::fs::File::open(path).unwrap_or_else(|error| panic!("{path:?}: {error}"))
        });
        run_command_fed(&self.name, self.command(), input)
    }
}
