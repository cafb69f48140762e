//! The probe: a small program that runs inside a container and reports what it sees, in a
//! stable format, so tests and the book do not depend on busybox's output. It is built
//! statically (no shared libraries needed in the root filesystem) and installed as
//! `/bin/probe` by `cargo xtask rootfs`. Book: "Setting up", section "The probe".
//!
//! Each subcommand prints `key: value` lines.

use std::ffi::CStr;
use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["pid"] => pid(),
        ["hostname"] => hostname(),
        ["mounts"] => mounts(),
        ["ps"] => ps(),
        ["dev"] => dev(),
        ["ipc"] => ipc(),
        ["env"] => env(),
        ["escape", marker] => escape(marker),
        ["walk-up", marker] => walk_up(marker),
        ["fds"] => fds(),
        ["tiocsti"] => tiocsti(),
        ["user"] => user(),
        ["privileged"] => privileged(),
        ["ignored"] => ignored(),
        ["orphans"] => orphans(),
        ["segfault"] => segfault(),
        ["net"] => net(),
        ["serve", port] => serve(port),
        ["connect", address] => connect(address),
        ["ask", address] => ask(address),
        ["rename", from, to] => rename(from, to),
        ["cgroup"] => cgroup(),
        ["hog", mebibytes] => hog(mebibytes),
        ["forks", count] => forks(count),
        ["spin", seconds] => spin(seconds),
        _ => {
            eprintln!(
                "usage: probe pid|hostname|mounts|ps|dev|ipc|env|fds|tiocsti|ignored|user|privileged|orphans|segfault|\
                 net|escape MARKER_PATH|walk-up MARKER_PATH|serve PORT|connect ADDRESS:PORT|ask ADDRESS:PORT|rename FROM TO|\
                 cgroup|hog MIB|forks N|spin SECONDS"
            );
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// This process's PID and its parent's, as the container's PID namespace numbers them.
fn pid() {
    println!("pid: {}", std::process::id());
    println!("ppid: {}", std::os::unix::process::parent_id());
}

/// The host name from `uname(2)`, which the UTS namespace decides.
fn hostname() {
    // SAFETY: uname fills the struct we hand it; an all-zero utsname is a valid start.
    let mut names: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `names` is a valid, writable utsname.
    unsafe { libc::uname(&mut names) };
    // SAFETY: the kernel writes a NUL-terminated string into nodename.
    let nodename = unsafe { CStr::from_ptr(names.nodename.as_ptr()) };
    println!("hostname: {}", nodename.to_string_lossy());
}

/// Each mount point and its filesystem type, from `/proc/self/mountinfo`.
fn mounts() {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        println!("mounts: unknown (no /proc)");
        return;
    };
    for line in table.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let separator = fields.iter().position(|field| *field == "-");
        if let (Some(point), Some(dash)) = (fields.get(4), separator) {
            let fstype = fields.get(dash + 1).unwrap_or(&"?");
            println!("mount: {point} {fstype}");
        }
    }
}

/// The PIDs this process can see in `/proc`.
fn ps() {
    let Ok(entries) = fs::read_dir("/proc") else {
        println!("pids: unknown (no /proc)");
        return;
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    println!("pids: {}", list.join(" "));
}

/// Each entry of `/dev`, with its kind and, for devices, major:minor numbers.
fn dev() {
    let mut names: Vec<String> = match fs::read_dir("/dev") {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect(),
        Err(error) => {
            println!("dev: unreadable ({error})");
            return;
        }
    };
    names.sort();
    for name in names {
        println!(
            "dev: {name} {}",
            describe_node(&Path::new("/dev").join(&name))
        );
    }
}

fn describe_node(path: &Path) -> String {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return "unreadable".to_string();
    };
    let kind = meta.file_type();
    let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
    let mode = meta.mode() & 0o7777;
    if kind.is_char_device() {
        format!("char {major}:{minor} {mode:04o}")
    } else if kind.is_block_device() {
        format!("block {major}:{minor}")
    } else if kind.is_dir() {
        "dir".to_string()
    } else if kind.is_symlink() {
        "symlink".to_string()
    } else {
        "file".to_string()
    }
}

/// The System V message queues this process can see (its IPC namespace's).
fn ipc() {
    let Ok(table) = fs::read_to_string("/proc/sysvipc/msg") else {
        println!("msqids: unknown (no /proc)");
        return;
    };
    let ids: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    println!(
        "msqids: {}",
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(" ")
        }
    );
}

/// The environment, sorted.
fn env() {
    let mut vars: Vec<String> =
        std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    vars.sort();
    for var in vars {
        println!("env: {var}");
    }
}

/// The classic chroot escape (book section 1.4). A process that may call `chroot` can
/// chroot into a subdirectory while its current directory stays outside it, walk up with
/// `..` past the old root, and chroot to what it finds there: the host's `/`.
fn escape(marker: &str) {
    println!("before: {}", visibility(marker));
    let steps = try_escape();
    println!("escape: {steps}");
    println!("after: {}", visibility(marker));
}

fn visibility(marker: &str) -> &'static str {
    if Path::new(marker).exists() {
        "host file visible"
    } else {
        "host file not visible"
    }
}

// ANCHOR: escape
fn try_escape() -> String {
    // Any directory below "/" will do; /etc exists in every root filesystem.
    if let Err(error) = chroot("/etc") {
        return format!("chroot(\"/etc\") failed: {error}");
    }
    // Our current directory is still the old "/", outside the new root, so ".." is not
    // stopped there. Walk up far more levels than any real tree has.
    for _ in 0..256 {
        if let Err(error) = std::env::set_current_dir("..") {
            return format!("chdir(\"..\") failed: {error}");
        }
    }
    match chroot(".") {
        Ok(()) => "chroot(\".\") = 0".to_string(),
        Err(error) => format!("chroot(\".\") failed: {error}"),
    }
}
// ANCHOR_END: escape

fn chroot(path: &str) -> std::io::Result<()> {
    let path = std::ffi::CString::new(path).expect("no NUL in the path");
    // SAFETY: `path` is a valid NUL-terminated string.
    if unsafe { libc::chroot(path.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The open file descriptors, found by asking the kernel about each number in turn (so it
/// works without `/proc`). A container should have only 0, 1 and 2.
fn fds() {
    // SAFETY: sysconf has no preconditions.
    let limit = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(3, 65536) as i32;
    // SAFETY: F_GETFD only asks about a descriptor; it changes nothing.
    let open: Vec<String> = (0..limit)
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } != -1)
        .map(|fd| fd.to_string())
        .collect();
    println!("fds: {}", open.join(" "));
}

/// Tries to push a character into the input of every terminal it can reach: its stdin,
/// stdout and stderr, and `/dev/tty` (its controlling terminal). On the host's terminal,
/// that character would be read by the host's shell as if typed there.
fn tiocsti() {
    let devtty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty");
    let mut targets: Vec<(String, i32)> =
        (0..3).map(|fd| (format!("fd{fd}"), fd)).collect();
    match &devtty {
        Ok(file) => {
            targets.push(("devtty".into(), std::os::fd::AsRawFd::as_raw_fd(file)))
        }
        Err(error) => println!("tiocsti: devtty cannot open ({error})"),
    }
    for (name, fd) in targets {
        let byte = b'X';
        // SAFETY: TIOCSTI reads one byte through the pointer, valid for the call.
        let result = unsafe { libc::ioctl(fd, libc::TIOCSTI, &byte) };
        let outcome = if result == 0 {
            "pushed".to_string()
        } else {
            std::io::Error::last_os_error().to_string()
        };
        println!("tiocsti: {name} {outcome}");
    }
}

/// Which of the signals below were ignored when the program started, one bit each. Rust's
/// own start-up code ignores SIGPIPE before `main` runs, so the probe looks earlier: the
/// C library calls the functions in `.init_array` before `main`, with the signal
/// dispositions just as `execve` left them.
static IGNORED_AT_START: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(0);

const WATCHED_SIGNALS: [(libc::c_int, &str); 5] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGPIPE, "SIGPIPE"),
];

#[used]
#[link_section = ".init_array"]
static RECORD_IGNORED: extern "C" fn() = record_ignored;

extern "C" fn record_ignored() {
    let mut bits = 0;
    for (index, (signal, _)) in WATCHED_SIGNALS.iter().enumerate() {
        // SAFETY: with a null new action, sigaction only reads the current one into `old`.
        let ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(*signal, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
        };
        if ignored {
            bits |= 1 << index;
        }
    }
    IGNORED_AT_START.store(bits, std::sync::atomic::Ordering::SeqCst);
}

/// The signals this process ignored when it started. A runtime should start the command
/// with none ignored.
fn ignored() {
    let bits = IGNORED_AT_START.load(std::sync::atomic::Ordering::SeqCst);
    let names: Vec<&str> = WATCHED_SIGNALS
        .iter()
        .enumerate()
        .filter(|(index, _)| bits & (1 << index) != 0)
        .map(|(_, (_, name))| *name)
        .collect();
    let list = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(" ")
    };
    println!("ignored: {list}");
}

/// Who this process is: its ids, its effective capabilities, and its namespace's id maps.
fn user() {
    // SAFETY: getuid and getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    println!("uid: {uid}");
    println!("gid: {gid}");
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let capabilities = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .map_or("unknown (no /proc)", str::trim);
    println!("capeff: {capabilities}");
    for file in ["uid_map", "gid_map"] {
        match fs::read_to_string(format!("/proc/self/{file}")) {
            Ok(map) => {
                for line in map.lines() {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    println!("{file}: {}", fields.join(" "));
                }
            }
            Err(_) => println!("{file}: unknown (no /proc)"),
        }
    }
}

/// Tries what only the host's root may do, and says how each attempt ended.
fn privileged() {
    // SAFETY (each call below): the pointers are valid or null where the call allows it, and
    // a refused call changes nothing, which is what the probe expects.
    attempt("module", || unsafe {
        let no_image = std::ptr::null::<u8>();
        libc::syscall(libc::SYS_init_module, no_image, 0usize, c"".as_ptr()) as i32
    });
    attempt("clock", || unsafe {
        let mut now: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut now);
        libc::clock_settime(libc::CLOCK_REALTIME, &now)
    });
    attempt("mount-block-fs", || unsafe {
        let (device, target) = (c"/dev/null".as_ptr(), c"/tmp".as_ptr());
        libc::mount(device, target, c"ext4".as_ptr(), 0, std::ptr::null())
    });
    // A file of the host's root that every container can see, whoever staged its root
    // filesystem: a kernel setting, writable by root alone (opened, not written).
    attempt("write-host-file", || unsafe {
        libc::open(c"/proc/sys/vm/drop_caches".as_ptr(), libc::O_WRONLY)
    });
}

/// Runs one attempt (a C call that returns -1 and sets errno when refused) and reports
/// it.
fn attempt(name: &str, call: impl FnOnce() -> i32) {
    if call() >= 0 {
        println!("privileged: {name} allowed");
        return;
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    println!("privileged: {name} refused ({})", errno_name(errno));
}

fn errno_name(errno: i32) -> String {
    match errno {
        libc::EPERM => "EPERM".to_string(),
        libc::EACCES => "EACCES".to_string(),
        libc::ENODEV => "ENODEV".to_string(),
        libc::ENOTBLK => "ENOTBLK".to_string(),
        other => format!("errno {other}"),
    }
}

/// Walks up from the working directory, with no privilege at all, and looks for the host
/// file `marker` from where it ends up. A runtime that calls `chroot` but not
/// `chdir("/")` leaves the working directory outside the new root, and `..` leads out
/// (book 1.3).
fn walk_up(marker: &str) {
    for _ in 0..256 {
        if std::env::set_current_dir("..").is_err() {
            break;
        }
    }
    // A relative path: from the real root it names the marker, from the container's it
    // names nothing.
    let relative = marker.trim_start_matches('/');
    println!("walk-up: {}", visibility(relative));
}

// ANCHOR: orphans
/// Makes one orphan and reports how many zombies are left once it has ended (book section
/// 3.3). The orphan is re-parented to PID 1: if PID 1 never calls `wait`, it stays a
/// zombie.
fn orphans() {
    let Some(orphan) = make_orphan() else {
        println!("zombies: unknown (fork failed)");
        return;
    };
    if !wait_until_ended(orphan) {
        println!("zombies: unknown (the orphan did not end)");
        return;
    }
    match count_zombies() {
        Some(count) => println!("zombies: {count}"),
        None => println!("zombies: unknown (no /proc)"),
    }
}

/// Forks a middle process, which forks the orphan-to-be and exits at once. The orphan
/// waits until it has a new parent, tells us its PID through a pipe, and exits.
fn make_orphan() -> Option<i32> {
    let mut ends = [0; 2];
    // SAFETY: pipe writes two descriptors into the array.
    if unsafe { libc::pipe(ends.as_mut_ptr()) } != 0 {
        return None;
    }
    let [read_end, write_end] = ends;
    // SAFETY: the probe is single-threaded, so the forked children may do anything.
    let middle = unsafe { libc::fork() };
    if middle == 0 {
        // SAFETY: as above; `_exit` leaves without running the parent's clean-up code.
        unsafe {
            let middle = libc::getpid();
            if libc::fork() == 0 {
                become_orphan_and_report(middle, write_end);
            }
            libc::_exit(0);
        }
    }
    if middle < 0 {
        return None;
    }
    // SAFETY: waiting for our own child; closing our copy of the write end; reading into
    // a buffer that is valid for its length.
    unsafe {
        libc::waitpid(middle, std::ptr::null_mut(), 0);
        libc::close(write_end);
        let mut pid = [0u8; 4];
        let got = libc::read(read_end, pid.as_mut_ptr().cast(), pid.len());
        libc::close(read_end);
        (got == 4).then(|| i32::from_ne_bytes(pid))
    }
}

/// In the orphan: waits until the middle process is gone and someone else is its parent
/// (PID 1), sends its PID, and exits.
fn become_orphan_and_report(middle: i32, write_end: i32) -> ! {
    // SAFETY: getppid, write and _exit have no memory-safety preconditions; the buffer is
    // valid for its length.
    unsafe {
        while libc::getppid() == middle {
            sleep(Duration::from_millis(1));
        }
        let pid = libc::getpid().to_ne_bytes();
        libc::write(write_end, pid.as_ptr().cast(), pid.len());
        libc::_exit(0)
    }
}
// ANCHOR_END: orphans

/// Waits until the orphan `pid` has ended for good: gone, because its new parent reaped
/// it, or a zombie whose parent is this probe, which never waits (so it will stay one).
/// False if that takes more than five seconds.
fn wait_until_ended(pid: i32) -> bool {
    let stat = format!("/proc/{pid}/stat");
    let me = std::process::id().to_string();
    for _ in 0..5000 {
        let Ok(text) = fs::read_to_string(&stat) else {
            return true;
        };
        let mut fields = text.rsplit_once(") ").map(|(_, rest)| rest.split(' '));
        let state = fields.as_mut().and_then(|fields| fields.next());
        let parent = fields.as_mut().and_then(|fields| fields.next());
        if state == Some("Z") && parent == Some(me.as_str()) {
            return true;
        }
        sleep(Duration::from_millis(1));
    }
    false
}

/// The state letter of a `/proc/PID/stat` line: the field after the command name, which
/// is in parentheses and may itself hold spaces or parentheses.
fn process_state(stat: &str) -> Option<char> {
    stat.rsplit_once(") ")?.1.chars().next()
}

/// How many processes in `/proc` are zombies; `None` without a `/proc`.
fn count_zombies() -> Option<usize> {
    let entries = fs::read_dir("/proc").ok()?;
    let zombies = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| process_state(stat) == Some('Z'))
        .count();
    Some(zombies)
}

/// Dies of a real memory fault (SIGSEGV). A fault's signal is forced on the process, so
/// it ends even a PID 1, which ignores a `kill` it has no handler for (book section 3.3).
fn segfault() {
    let nowhere = std::ptr::null_mut::<u8>();
    // SAFETY: it is not safe, on purpose: the write faults and the kernel ends the process.
    unsafe { nowhere.write_volatile(1) };
}

/// The network the container sees: each interface (up or down, its IPv4 addresses and its
/// MAC address), and the IPv4 routes, from `getifaddrs(3)` and `/proc/net/route`.
fn net() {
    let mut interfaces: Vec<(String, bool, Vec<String>, Option<String>)> = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        println!("net: unknown (getifaddrs failed)");
        return;
    }
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs made, not yet freed.
        let node = unsafe { &*entry };
        entry = node.ifa_next;
        // SAFETY: every node has a NUL-terminated name.
        let name = unsafe { CStr::from_ptr(node.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let position = match interfaces.iter().position(|i| i.0 == name) {
            Some(position) => position,
            None => {
                let up = node.ifa_flags & libc::IFF_UP as u32 != 0;
                interfaces.push((name, up, Vec::new(), None));
                interfaces.len() - 1
            }
        };
        if node.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says what it really is.
        match i32::from(unsafe { (*node.ifa_addr).sa_family }) {
            libc::AF_INET => {
                // SAFETY: an AF_INET address is a sockaddr_in, and so is its netmask.
                let (address, mask) = unsafe {
                    let address = &*(node.ifa_addr as *const libc::sockaddr_in);
                    let mask = &*(node.ifa_netmask as *const libc::sockaddr_in);
                    (address.sin_addr.s_addr, mask.sin_addr.s_addr)
                };
                let address = std::net::Ipv4Addr::from(u32::from_be(address));
                let prefix = u32::from_be(mask).count_ones();
                interfaces[position].2.push(format!("{address}/{prefix}"));
            }
            libc::AF_PACKET => {
                // SAFETY: an AF_PACKET address is a sockaddr_ll.
                let link = unsafe { &*(node.ifa_addr as *const libc::sockaddr_ll) };
                let bytes = &link.sll_addr[..usize::from(link.sll_halen)];
                let mac: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                interfaces[position].3 = Some(mac.join(":"));
            }
            _ => {}
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    for (name, up, addresses, mac) in interfaces {
        let state = if up { "up" } else { "down" };
        let mac = mac.map(|mac| format!(" mac {mac}")).unwrap_or_default();
        println!("interface: {name} {state} {}{mac}", addresses.join(" "));
    }
    routes();
}

/// The IPv4 routes of `/proc/net/route`, as `ip route` would show them.
fn routes() {
    let Ok(table) = fs::read_to_string("/proc/net/route") else {
        println!("route: unknown (no /proc)");
        return;
    };
    let hex = |text: &str| {
        u32::from_str_radix(text, 16).map(|n| std::net::Ipv4Addr::from(u32::from_be(n)))
    };
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [device, destination, gateway, _, _, _, _, mask, ..] = fields[..] else {
            continue;
        };
        let (Ok(destination), Ok(gateway), Ok(mask)) =
            (hex(destination), hex(gateway), hex(mask))
        else {
            continue;
        };
        let prefix = u32::from(mask).count_ones();
        if prefix == 0 {
            println!("route: default via {gateway} dev {device}");
        } else {
            println!("route: {destination}/{prefix} dev {device}");
        }
    }
}

/// A TCP echo server on `port`: says `ready` once it listens, echoes what each connection
/// sends until that side stops sending, many at once, and ends when a line arrives on
/// stdin.
fn serve(port: &str) {
    let listener = match std::net::TcpListener::bind(format!("0.0.0.0:{port}")) {
        Ok(listener) => listener,
        Err(error) => {
            println!("serve: cannot listen on port {port}: {error}");
            return;
        }
    };
    println!("ready");
    std::thread::spawn(move || {
        for connection in listener.incoming().flatten() {
            std::thread::spawn(move || echo(connection));
        }
    });
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

fn echo(connection: std::net::TcpStream) {
    let Ok(mut reader) = connection.try_clone() else {
        return;
    };
    let mut writer = connection;
    let _ = std::io::copy(&mut reader, &mut writer);
    let _ = writer.shutdown(std::net::Shutdown::Write);
}

/// Connects to `address`, sends `hello`, stops sending, and prints what comes back.
fn connect(address: &str) {
    use std::io::{Read, Write};
    let mut stream = match std::net::TcpStream::connect(address) {
        Ok(stream) => stream,
        Err(error) => {
            println!("connect: {address}: {error}");
            return;
        }
    };
    let _ = stream.write_all(b"hello\n");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    print!("{answer}");
}

/// Connects to `address`, sends `ping`, and prints the answer while it keeps its own
/// sending side open, as wget and browsers do; it waits 5 seconds at most.
fn ask(address: &str) {
    use std::io::{Read, Write};
    let mut stream = match std::net::TcpStream::connect(address) {
        Ok(stream) => stream,
        Err(error) => {
            println!("ask: {address}: {error}");
            return;
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(b"ping\n");
    let mut answer = [0u8; 5];
    match stream.read_exact(&mut answer) {
        Ok(()) => print!("answer: {}", String::from_utf8_lossy(&answer)),
        Err(error) => println!("ask: no answer from {address}: {error}"),
    }
}

/// rename(2) itself, which `mv` hides (it copies and deletes when rename fails with
/// EXDEV): `renamed`, or the error.
fn rename(from: &str, to: &str) {
    match fs::rename(from, to) {
        Ok(()) => println!("rename: renamed"),
        Err(error) if error.raw_os_error() == Some(libc::EXDEV) => {
            println!("rename: EXDEV")
        }
        Err(error) => println!("rename: {error}"),
    }
}

/// The cgroup this process is in, as its cgroup namespace shows it, and the limits it can
/// read under `/sys/fs/cgroup`, in the same words on v1 and v2.
fn cgroup() {
    let membership = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let own = membership.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let wanted = if v2 {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == "memory")
        };
        wanted.then(|| path.to_string())
    });
    println!("cgroup: {}", own.as_deref().unwrap_or("unknown"));
    if !Path::new("/sys/fs/cgroup")
        .read_dir()
        .is_ok_and(|mut dir| dir.next().is_some())
    {
        println!("cgroup fs: not mounted");
        return;
    }
    println!("cgroup fs: {}", if v2 { "v2" } else { "v1" });
    let read = |path: &str| {
        fs::read_to_string(path)
            .map(|text| text.trim().to_string())
            .ok()
    };
    let (memory, cpu, pids) = if v2 {
        let cpu = read("/sys/fs/cgroup/cpu.max").map(|max| max.replace(' ', "/"));
        (
            read("/sys/fs/cgroup/memory.max"),
            cpu,
            read("/sys/fs/cgroup/pids.max"),
        )
    } else {
        let quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
        let period = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
        let cpu = quota
            .zip(period)
            .map(|(quota, period)| format!("{quota}/{period}"));
        let memory = read("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        (memory, cpu, read("/sys/fs/cgroup/pids/pids.max"))
    };
    println!("memory limit: {}", no_limit_as_max(memory));
    println!(
        "cpu limit: {}",
        no_limit_as_max(cpu.map(|cpu| cpu.replace("-1/", "max/")))
    );
    println!("pids limit: {}", no_limit_as_max(pids));
    println!("memory+swap limit: {}", memory_and_swap_limit(v2));
}

/// Memory and swap together, as docker's `--memory-swap` counts them: v1 has that figure
/// (`memory.memsw.limit_in_bytes`); v2 counts swap apart (`memory.swap.max`), so the two
/// are added. `none` where the kernel does not count swap.
fn memory_and_swap_limit(v2: bool) -> String {
    let read = |path: &str| {
        fs::read_to_string(path)
            .map(|text| text.trim().to_string())
            .ok()
    };
    let (memory, swap) = if v2 {
        (
            read("/sys/fs/cgroup/memory.max"),
            read("/sys/fs/cgroup/memory.swap.max"),
        )
    } else {
        (
            Some("0".to_string()),
            read("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
        )
    };
    let Some(swap) = swap else {
        return "none (swap is not counted)".to_string();
    };
    match (
        memory.and_then(|m| m.parse::<u64>().ok()),
        swap.parse::<u64>(),
    ) {
        (Some(memory), Ok(swap)) if swap < 1 << 62 => (memory + swap).to_string(),
        _ => "max".to_string(),
    }
}

/// v2 says `max` where there is no limit; v1 says -1 for CPU and a huge number for
/// memory.
fn no_limit_as_max(value: Option<String>) -> String {
    match value {
        None => "unknown".to_string(),
        Some(value) if value.starts_with("max") => "max".to_string(),
        Some(value) if value.parse::<u64>().is_ok_and(|n| n >= 1 << 62) => {
            "max".to_string()
        }
        Some(value) => value,
    }
}

/// Takes `mebibytes` of memory, 1 MiB at a time, touching every page so the kernel must
/// really give it, then says how much it got. A memory limit below that kills it on the
/// way.
fn hog(mebibytes: &str) {
    let wanted: usize = mebibytes.parse().expect("hog takes a number of MiB");
    let mut held: Vec<Vec<u8>> = Vec::new();
    for _ in 0..wanted {
        held.push(vec![1u8; 1 << 20]); // vec! of a non-zero value writes every byte
    }
    println!("hog: holding {} MiB", held.len());
}

/// Starts `count` children that wait, and says how many the kernel let it start and why
/// it stopped; then ends them all, and exits 0, so a process limit is seen from inside.
fn forks(count: &str) {
    let wanted: usize = count.parse().expect("forks takes a number");
    let mut children = Vec::new();
    let mut stopped_by = None;
    for _ in 0..wanted {
        // SAFETY: the child only calls pause and _exit, both async-signal-safe.
        match unsafe { libc::fork() } {
            -1 => {
                stopped_by = Some(std::io::Error::last_os_error());
                break;
            }
            0 => unsafe {
                libc::pause();
                libc::_exit(0);
            },
            pid => children.push(pid),
        }
    }
    println!("forks: {} of {wanted}", children.len());
    if let Some(error) = stopped_by {
        println!("fork failed: {error}");
    }
    for pid in children {
        // SAFETY: each pid is a child of this process.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Runs a busy loop for `seconds` of wall-clock time, then says how much CPU time its
/// cgroup was given meanwhile, read from the cgroup's own counter (`cpu.stat` on v2,
/// `cpuacct.usage` on v1).
fn spin(seconds: &str) {
    let seconds: f64 = seconds.parse().expect("spin takes a number of seconds");
    let before = cgroup_cpu_seconds();
    let start = std::time::Instant::now();
    let mut counter: u64 = 0;
    while start.elapsed().as_secs_f64() < seconds {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
    let wall = start.elapsed().as_secs_f64();
    match (before, cgroup_cpu_seconds()) {
        (Some(before), Some(after)) => {
            println!("cpu: {:.2} s in {wall:.2} s", after - before);
            println!("cpu share: {:.2}", (after - before) / wall);
        }
        _ => println!("cpu: unknown (no cgroup CPU counter under /sys/fs/cgroup)"),
    }
}

/// The CPU time the cgroup has used, in seconds.
fn cgroup_cpu_seconds() -> Option<f64> {
    if let Ok(stat) = fs::read_to_string("/sys/fs/cgroup/cpu.stat") {
        let usec: f64 = stat
            .lines()
            .find_map(|line| line.strip_prefix("usage_usec "))?
            .trim()
            .parse()
            .ok()?;
        return Some(usec / 1e6);
    }
    [
        "/sys/fs/cgroup/cpuacct/cpuacct.usage",
        "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage",
    ]
    .iter()
    .find_map(|path| fs::read_to_string(path).ok())
    .and_then(|text| text.trim().parse::<f64>().ok())
    .map(|nanoseconds| nanoseconds / 1e9)
}
