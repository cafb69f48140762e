//! seccomp: a filter on system calls, installed last, so the command starts under it.
//! Book: section 11.5.
//!
//! A config's `linux.seccomp` is a list of rules: for these system calls (with these
//! arguments), allow, or fail with this errno; for the rest, the default action. The
//! kernel runs such a filter as a small BPF program at the entry of every system call.
//! The kit does not write the program itself: it hands the rules to libseccomp, the
//! library runc and crun use, which knows every architecture's system call numbers and
//! writes the program. The library is loaded when a config asks for a filter
//! (`dlopen("libseccomp.so.2")`, installed wherever podman, runc or crun is), so the kit
//! builds without it, and a machine without it refuses the config by name.
//!
//! The filter is compiled in `create`, before the clone (a mistake in the profile is an
//! error before anything starts); the child inherits it in its copy of the memory and
//! only loads it.

use std::ffi::{c_char, c_int, c_uint, c_void, CString};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::trace;

/// `linux.seccomp`, as the spec writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompConfig {
    pub default_action: String,
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub flags: Vec<String>,
    pub listener_path: Option<String>,
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: String,
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<ArgRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgRule {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// libseccomp's `struct scmp_arg_cmp`: which argument, how, against what.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct ArgCompare {
    arg: c_uint,
    op: c_uint,
    datum_a: u64,
    datum_b: u64,
}

/// The C signatures of the library's functions the kit calls (seccomp(3)).
type InitFn = unsafe extern "C" fn(u32) -> *mut c_void;
type ArchResolveFn = unsafe extern "C" fn(*const c_char) -> u32;
type ArchAddFn = unsafe extern "C" fn(*mut c_void, u32) -> c_int;
type AttrSetFn = unsafe extern "C" fn(*mut c_void, c_uint, u32) -> c_int;
type SyscallResolveFn = unsafe extern "C" fn(*const c_char) -> c_int;
type RuleAddFn =
    unsafe extern "C" fn(*mut c_void, u32, c_int, c_uint, *const ArgCompare) -> c_int;
type LoadFn = unsafe extern "C" fn(*mut c_void) -> c_int;

/// The library's functions the kit calls, found by name in `libseccomp.so.2`.
struct Library {
    init: InitFn,
    arch_resolve_name: ArchResolveFn,
    arch_add: ArchAddFn,
    attr_set: AttrSetFn,
    syscall_resolve_name: SyscallResolveFn,
    rule_add_array: RuleAddFn,
    load: LoadFn,
}

/// `SCMP_FLTATR_CTL_NNP`: the library sets `no_new_privs` itself when it loads a filter,
/// unless told not to; the kit sets it only when the config asks.
const ATTRIBUTE_NO_NEW_PRIVS: c_uint = 3;

/// A filter, compiled and ready to load into the kernel.
pub struct Filter {
    library: Library,
    context: *mut c_void,
    rules: usize,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({} rules)", self.rules)
    }
}

/// The config's part, read, or `None` when it has none (or an empty one).
pub fn from_value(value: Option<&Value>) -> Result<Option<SeccompConfig>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .context("linux.seccomp is not a seccomp profile the spec describes"),
    }
}

// ANCHOR: compile
/// Compiles the profile: the default action, the architectures, then each rule for each
/// of its system calls. A system call this machine's library does not know is passed
/// over, as runc does (a profile names calls of many kernels). `no_new_privs` is left to
/// the config.
pub fn compile(config: &SeccompConfig) -> Result<Filter> {
    if config.listener_path.is_some() || !config.flags.is_empty() {
        bail!("linux.seccomp asks for a listener or flags, which the kit does not do");
    }
    let library = open_library()?;
    let default = action(&config.default_action, config.default_errno_ret)?;
    // SAFETY: seccomp_init allocates a new filter context and returns it, or null.
    let context = unsafe { (library.init)(default) };
    if context.is_null() {
        bail!(
            "libseccomp could not make a filter (default action {})",
            config.default_action
        );
    }
    let mut filter = Filter {
        library,
        context,
        rules: 0,
    };
    // SAFETY: the context is the one seccomp_init made.
    unsafe { (filter.library.attr_set)(filter.context, ATTRIBUTE_NO_NEW_PRIVS, 0) };
    for arch in &config.architectures {
        filter.add_architecture(arch)?;
    }
    for rule in &config.syscalls {
        let action = action(&rule.action, rule.errno_ret)?;
        if action == default {
            continue; // the library refuses a rule that changes nothing
        }
        for name in &rule.names {
            filter.add_rule(name, action, &rule.args)?;
        }
    }
    Ok(filter)
}
// ANCHOR_END: compile

impl Filter {
    fn add_architecture(&mut self, name: &str) -> Result<()> {
        let short = name.trim_start_matches("SCMP_ARCH_").to_ascii_lowercase();
        let short = CString::new(short)?;
        // SAFETY: the name is a NUL-terminated string that lives across the call.
        let token = unsafe { (self.library.arch_resolve_name)(short.as_ptr()) };
        if token == 0 {
            bail!("linux.seccomp: {name} is not an architecture libseccomp knows");
        }
        // SAFETY: the context is this filter's; -EEXIST (the native one) is no error.
        let added = unsafe { (self.library.arch_add)(self.context, token) };
        if added != 0 && added != -libc::EEXIST {
            bail!("linux.seccomp: cannot add {name}: {}", errno_text(added));
        }
        Ok(())
    }

    /// One rule for one system call. Conditions on different arguments all hold at once
    /// (one rule); conditions on the same argument are alternatives (one rule each), as
    /// runc reads them.
    fn add_rule(&mut self, name: &str, action: u32, args: &[ArgRule]) -> Result<()> {
        let name_c = CString::new(name)?;
        // SAFETY: the name is a NUL-terminated string that lives across the call.
        let number = unsafe { (self.library.syscall_resolve_name)(name_c.as_ptr()) };
        if number < 0 {
            return Ok(()); // not a system call of this machine's architectures
        }
        let compares = args.iter().map(compare_of).collect::<Result<Vec<_>>>()?;
        let mut indexes: Vec<u32> = args.iter().map(|arg| arg.index).collect();
        indexes.sort_unstable();
        indexes.dedup();
        let groups: Vec<Vec<ArgCompare>> = match indexes.len() == compares.len() {
            true => vec![compares],
            false => compares.into_iter().map(|compare| vec![compare]).collect(),
        };
        for group in groups {
            // SAFETY: the context is this filter's; the array holds `len` comparisons
            // and lives across the call.
            let added = unsafe {
                (self.library.rule_add_array)(
                    self.context,
                    action,
                    number,
                    group.len() as c_uint,
                    group.as_ptr(),
                )
            };
            match added {
                0 => self.rules += 1,
                // The same rule twice (podman's profile has one): the first one stands.
                error if error == -libc::EEXIST => {}
                error => bail!(
                    "linux.seccomp: cannot add the rule for {name}: {}",
                    errno_text(error)
                ),
            }
        }
        Ok(())
    }

    // ANCHOR: load
    /// In the container, the last step but `execve` (or, without `no_new_privs`, before
    /// the capabilities go: loading a filter then needs `CAP_SYS_ADMIN`).
    pub fn load(&self) -> Result<()> {
        // SAFETY: the context is the one compiled in `create`, inherited in this copy of
        // its memory.
        let loaded = unsafe { (self.library.load)(self.context) };
        let result = match loaded {
            0 => Ok(()),
            error => Err(nix::errno::Errno::from_raw(-error)),
        };
        trace::syscall(
            format_args!("seccomp(SECCOMP_SET_MODE_FILTER, {} rules)", self.rules),
            result,
        )?;
        Ok(())
    }
    // ANCHOR_END: load
}

/// The spec's action names, as libseccomp's numbers.
fn action(name: &str, errno: Option<u32>) -> Result<u32> {
    let errno = errno.unwrap_or(libc::EPERM as u32) & 0xffff;
    Ok(match name {
        "SCMP_ACT_ALLOW" => 0x7fff_0000,
        "SCMP_ACT_ERRNO" => 0x0005_0000 | errno,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => 0x0000_0000,
        "SCMP_ACT_KILL_PROCESS" => 0x8000_0000,
        "SCMP_ACT_TRAP" => 0x0003_0000,
        "SCMP_ACT_TRACE" => 0x7ff0_0000 | errno,
        "SCMP_ACT_LOG" => 0x7ffc_0000,
        other => bail!("linux.seccomp: the action {other} is not one the kit does"),
    })
}

fn compare_of(arg: &ArgRule) -> Result<ArgCompare> {
    let op = match arg.op.as_str() {
        "SCMP_CMP_NE" => 1,
        "SCMP_CMP_LT" => 2,
        "SCMP_CMP_LE" => 3,
        "SCMP_CMP_EQ" => 4,
        "SCMP_CMP_GE" => 5,
        "SCMP_CMP_GT" => 6,
        "SCMP_CMP_MASKED_EQ" => 7,
        other => bail!("linux.seccomp: the comparison {other} is not one libseccomp has"),
    };
    if arg.index > 5 {
        bail!(
            "linux.seccomp: a system call has 6 arguments, not {}",
            arg.index + 1
        );
    }
    Ok(ArgCompare {
        arg: arg.index,
        op,
        datum_a: arg.value,
        datum_b: arg.value_two,
    })
}

fn errno_text(negative: c_int) -> String {
    nix::errno::Errno::from_raw(-negative).desc().to_string()
}

/// Loads `libseccomp.so.2` and finds the functions the kit calls.
fn open_library() -> Result<Library> {
    let name = c"libseccomp.so.2";
    // SAFETY: dlopen reads the NUL-terminated name; the library stays loaded for the
    // life of the process (it is never closed).
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) };
    if handle.is_null() {
        bail!(
            "config.json asks for a seccomp filter, and this machine has no libseccomp \
             (apt-get install libseccomp2), which the kit compiles it with (book 11.5)"
        );
    }
    let find = |symbol: &std::ffi::CStr| -> Result<*mut c_void> {
        // SAFETY: the handle is the library just opened; the name is NUL-terminated.
        let found = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
        match found.is_null() {
            true => bail!("libseccomp.so.2 has no {symbol:?}: too old a version"),
            false => Ok(found),
        }
    };
    // SAFETY: each symbol is the libseccomp function of that name, whose C signature
    // (seccomp(3)) the pointer type states.
    unsafe {
        Ok(Library {
            init: std::mem::transmute::<*mut c_void, InitFn>(find(c"seccomp_init")?),
            arch_resolve_name: std::mem::transmute::<*mut c_void, ArchResolveFn>(find(
                c"seccomp_arch_resolve_name",
            )?),
            arch_add: std::mem::transmute::<*mut c_void, ArchAddFn>(find(
                c"seccomp_arch_add",
            )?),
            attr_set: std::mem::transmute::<*mut c_void, AttrSetFn>(find(
                c"seccomp_attr_set",
            )?),
            syscall_resolve_name: std::mem::transmute::<*mut c_void, SyscallResolveFn>(
                find(c"seccomp_syscall_resolve_name")?,
            ),
            rule_add_array: std::mem::transmute::<*mut c_void, RuleAddFn>(find(
                c"seccomp_rule_add_array",
            )?),
            load: std::mem::transmute::<*mut c_void, LoadFn>(find(c"seccomp_load")?),
        })
    }
}
