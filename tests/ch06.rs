//! Chapter 6: the network namespace, the bridge, NAT and published ports.
//!
//! Every test here runs the runtime inside a network namespace it made (a `NetHost`), and
//! the world outside in another one: nothing touches the machine's own network.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use byoc_tests::netns::{leases_in, NetHost, OwnNetwork, World};
use byoc_tests::netns::{HOST_UPLINK_ADDRESS, WORLD_ADDRESS};
use byoc_tests::*;

/// A container that prints its network on stderr, then [`SHOWN`], says `ready`, and waits
/// for a line.
const SHOW_NETWORK_AND_WAIT: [&str; 3] = [
    "sh",
    "-c",
    "probe net >&2; echo network shown >&2; echo ready; read line",
];

/// The line after a container's network report: always there, whatever the report says.
const SHOWN: &str = "network shown";

/// What every test here needs: root, to make the network namespaces the runtime runs in
/// (the rootless runs too: the test makes their namespace), and the tools it looks with.
const NEEDS: [Need; 2] = [Need::NetworkNamespaces, Need::NetworkTools];

/// The runtimes a network test runs as root.
fn root_runtimes() -> Vec<Runtime> {
    if !meets(&NEEDS) {
        return Vec::new();
    }
    from_chapter_as_root(6)
}

/// Root's runtimes and the rootless ones, for what works both ways (`--net none`, `-p`).
fn all_runtimes() -> Vec<Runtime> {
    if !meets(&NEEDS) {
        return Vec::new();
    }
    from_chapter(6)
}

/// The value of `interface: NAME ...` in a `probe net` report: state and addresses.
fn interface<'a>(report: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("interface: {name} ");
    report.lines().find_map(|line| line.strip_prefix(&prefix))
}

/// The IPv4 address of `eth0` in a `probe net` report, without its prefix length.
fn eth0_address(report: &str) -> String {
    let eth0 =
        interface(report, "eth0").unwrap_or_else(|| panic!("no eth0 in:\n{report}"));
    let address = eth0.split_whitespace().nth(1).expect("eth0 has an address");
    address.split('/').next().unwrap_or(address).to_string()
}

#[test]
fn with_net_none_only_loopback_is_there_and_it_is_up() {
    for runtime in all_runtimes() {
        let host = NetHost::new();
        let run = host.run(&runtime, &["--net", "none"], &["probe", "net"]);
        run.expect_success();
        let names: Vec<&str> = run
            .values("interface")
            .iter()
            .map(|line| line.split_whitespace().next().unwrap_or(""))
            .map(|name| if name == "lo" { "lo" } else { "other" })
            .collect();
        assert_eq!(names, ["lo"], "{}: {}", runtime.name, run.report());
        assert!(
            interface(&run.stdout, "lo")
                .is_some_and(|lo| lo.starts_with("up 127.0.0.1/8")),
            "{}: loopback should be up with 127.0.0.1: {}",
            runtime.name,
            run.report()
        );
        assert!(
            run.values("route").is_empty(),
            "{}: a route out: {}",
            runtime.name,
            run.report()
        );
        host.assert_clean(&runtime);
    }
}

#[test]
fn with_net_host_the_container_sees_the_hosts_network_and_nothing_is_made() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        host.ip(&["link", "add", "other0", "type", "bridge"]);
        let run = host.run(&runtime, &["--net", "host"], &["probe", "net"]);
        run.expect_success();
        assert!(
            interface(&run.stdout, "other0").is_some(),
            "{}",
            run.report()
        );
        assert!(interface(&run.stdout, "eth0").is_none(), "{}", run.report());
        assert!(
            !host.links().iter().any(|link| link == "byoc0"),
            "{}: --net host made a bridge",
            runtime.name
        );
        host.ip(&["link", "delete", "other0"]);
        host.assert_clean(&runtime);
    }
}

#[test]
fn an_ordinary_users_container_gets_net_none_by_default() {
    let rootless = all_runtimes()
        .into_iter()
        .filter(|runtime| runtime.rootless.is_some());
    for runtime in rootless {
        let host = NetHost::new();
        let run = host.run(&runtime, &[], &["probe", "net"]);
        run.expect_success();
        assert!(interface(&run.stdout, "eth0").is_none(), "{}", run.report());
        assert!(interface(&run.stdout, "lo").is_some(), "{}", run.report());
    }
}

#[test]
fn containers_started_at_once_get_their_own_addresses_and_reach_each_other() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        // Started together, so that they ask for leases at the same moment.
        let containers: Vec<Waiting> = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        host.start_waiting(&runtime, &[], &SHOW_NETWORK_AND_WAIT)
                    })
                })
                .collect();
            starting
                .into_iter()
                .map(|thread| thread.join().unwrap())
                .collect()
        });
        let mut reports = Vec::new();
        for mut container in containers {
            let report = container.wait_for_stderr_line(SHOWN);
            reports.push((container, report));
        }
        let addresses: Vec<String> = reports
            .iter()
            .map(|(_, report)| eth0_address(report))
            .collect();
        let macs: Vec<&str> = reports
            .iter()
            .map(|(_, report)| {
                interface(report, "eth0")
                    .and_then(|eth0| eth0.split("mac ").nth(1))
                    .unwrap_or("")
            })
            .collect();
        let distinct = |items: &[&str]| {
            items
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        let address_refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
        assert_eq!(
            distinct(&address_refs),
            4,
            "{}: addresses {addresses:?}",
            runtime.name
        );
        assert_eq!(
            distinct(&macs),
            4,
            "{}: MAC addresses {macs:?}",
            runtime.name
        );
        for (_, report) in &reports {
            assert!(
                report.contains("route: default via 10.88.0.1 dev eth0"),
                "{}: no default route through the bridge:\n{report}",
                runtime.name
            );
        }
        assert_eq!(
            host.bridge_ports("byoc0").len(),
            4,
            "{}: one bridge port each",
            runtime.name
        );
        // Another container reaches each of them, across the bridge.
        for address in &addresses {
            let ping = host.run(&runtime, &[], &["ping", "-c", "1", "-W", "2", address]);
            assert_eq!(
                ping.code,
                0,
                "{}: cannot reach {address}: {}",
                runtime.name,
                ping.report()
            );
        }
        for (container, _) in reports {
            container.release().expect_success();
        }
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_container_has_its_own_hosts_hostname_and_resolv_conf() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let rootfs_hosts =
            std::fs::read_to_string(runtime.rootfs().join("etc/hosts")).unwrap();
        let run = host.run(
            &runtime,
            &["--hostname", "web"],
            &[
                "sh",
                "-c",
                "cat /etc/hostname /etc/hosts; echo extra >> /etc/hosts; probe net",
            ],
        );
        run.expect_success();
        let address = eth0_address(&run.stdout);
        assert!(run.stdout.starts_with("web\n"), "{}", run.report());
        assert!(
            run.stdout.contains(&format!("{address}\tweb")),
            "{}",
            run.report()
        );
        let after = std::fs::read_to_string(runtime.rootfs().join("etc/hosts")).unwrap();
        assert_eq!(
            after, rootfs_hosts,
            "{}: the rootfs's /etc/hosts was written",
            runtime.name
        );
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_container_reaches_the_world_with_the_hosts_address() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let world = World::joined_to(&host);
        let listener = world.within(|| {
            TcpListener::bind((WORLD_ADDRESS, 7000)).expect("the world listens")
        });
        let server = std::thread::spawn(move || answer_with_peer_address(listener));
        let address = format!("{WORLD_ADDRESS}:7000");
        let run = host.run(&runtime, &[], &["probe", "connect", &address]);
        run.expect_success();
        let seen = server.join().expect("the world's server ends");
        assert_eq!(
            seen.as_deref(),
            Some(HOST_UPLINK_ADDRESS),
            "{}: the world should see the host's address (NAT), not the container's: {}",
            runtime.name,
            run.report()
        );
        assert_eq!(
            run.stdout.trim(),
            format!("seen from {HOST_UPLINK_ADDRESS}"),
            "{}",
            run.report()
        );
        host.assert_clean(&runtime);
    }
}

/// The world's server: accepts one connection (for a few seconds at most), tells the
/// client which address it came from, and returns that address.
fn answer_with_peer_address(listener: TcpListener) -> Option<String> {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match listener.accept() {
            Ok((mut connection, peer)) => {
                connection.set_nonblocking(false).expect("blocking");
                let peer = peer.ip().to_string();
                let _ = connection.write_all(format!("seen from {peer}\n").as_bytes());
                return Some(peer);
            }
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn a_published_port_reaches_the_container_both_ways_many_at_once() {
    for runtime in all_runtimes() {
        let host = NetHost::new();
        let container =
            host.start_waiting(&runtime, &["-p", "8080:80"], &["probe", "serve", "80"]);
        let host_ref = &host;
        let echoed: Vec<(Vec<u8>, Vec<u8>)> = std::thread::scope(|scope| {
            let clients: Vec<_> = (0..5u8)
                .map(|n| scope.spawn(move || host_ref.within(|| echo_through(8080, n))))
                .collect();
            clients
                .into_iter()
                .map(|client| client.join().unwrap())
                .collect()
        });
        // Its stderr says why, when the relay failed (an unfinished exercise, say).
        let run = container.release();
        for (sent, received) in &echoed {
            assert!(
                sent == received,
                "{}: sent {} bytes through the published port, {} came back: {}",
                runtime.name,
                sent.len(),
                received.len(),
                run.report()
            );
        }
        run.expect_success();
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_client_that_waits_for_the_answer_before_it_closes_gets_it() {
    for runtime in all_runtimes() {
        let host = NetHost::new();
        let container =
            host.start_waiting(&runtime, &["-p", "8080:80"], &["probe", "serve", "80"]);
        // As wget and browsers do: send the request, keep the sending side open, and read
        // the answer. A relay that copies one way to the end before the other never
        // answers.
        let answer = host.within(|| ask_and_wait(8080));
        let run = container.release();
        assert_eq!(
            answer.as_deref(),
            Some("ping\n"),
            "{}: no answer came back while the client kept its side open: {}",
            runtime.name,
            run.report()
        );
        run.expect_success();
        host.assert_clean(&runtime);
    }
}

/// Sends a line to the echo server behind host port `port` without closing, and reads the
/// answer for at most 5 seconds.
fn ask_and_wait(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"ping\n").ok()?;
    let mut answer = [0u8; 5];
    stream.read_exact(&mut answer).ok()?;
    String::from_utf8(answer.to_vec()).ok()
}

/// Sends 200 KB (different for each `n`) to the echo server behind host port `port`,
/// stops sending, and reads everything that comes back.
fn echo_through(port: u16, n: u8) -> (Vec<u8>, Vec<u8>) {
    let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ n).collect();
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).expect("the published port accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = stream.try_clone().unwrap();
    let receiving = std::thread::spawn(move || {
        let mut received = Vec::new();
        let _ = reader.read_to_end(&mut received);
        received
    });
    // A proxy that does not relay shows as a short answer below, not as a panic here.
    let _ = stream.write_all(&sent);
    let _ = stream.shutdown(Shutdown::Write);
    (sent, receiving.join().unwrap())
}

#[test]
fn bad_network_options_are_refused_with_one_line_and_nothing_left() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let taken = host
            .within(|| TcpListener::bind(("0.0.0.0", 8081)).expect("the test listens"));
        let cases: [(&[&str], &str); 5] = [
            (&["-p", "8081:80"], "cannot publish host port 0.0.0.0:8081: something on the host listens there already"),
            (&["-p", "70000:80"], "port 70000 is out of range (1-65535)"),
            (&["-p", "8080:80/udp"], "only tcp ports can be published"),
            (&["--net", "host", "-p", "8080:80"], "--net host has none"),
            (&["--net", "none", "--subnet", "10.99.0.0/24"], "--subnet is the bridge's"),
        ];
        for (options, expected) in cases {
            let run = host.run(&runtime, options, &["true"]);
            assert_one_line_error(&runtime, &run, expected);
        }
        drop(taken);
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_subnet_that_overlaps_a_host_route_is_refused() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        // A network the host is on already (a bridge: every kernel that runs chapter 6
        // has them).
        host.ip(&["link", "add", "other0", "type", "bridge"]);
        host.ip(&["addr", "add", "10.88.5.1/24", "dev", "other0"]);
        host.ip(&["link", "set", "other0", "up"]);
        let run = host.run(&runtime, &[], &["true"]);
        assert_one_line_error(
            &runtime,
            &run,
            "subnet 10.88.0.0/16 overlaps the host's route to 10.88.5.0/24 on other0",
        );
        let text = transcript(&[("--rootfs rootfs/busybox -- true", &run)]);
        transcript_settings()
            .bind(|| insta::assert_snapshot!("ch06_overlapping_subnet", text));
        let elsewhere = host.run(&runtime, &["--subnet", "10.99.0.0/24"], &["true"]);
        elsewhere.expect_success();
        host.ip(&["link", "delete", "other0"]);
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_full_subnet_is_refused_and_the_running_container_keeps_its_address() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let subnet = ["--subnet", "10.99.0.0/30"];
        let mut first = host.start_waiting(&runtime, &subnet, &SHOW_NETWORK_AND_WAIT);
        let report = first.wait_for_stderr_line(SHOWN);
        assert_eq!(eth0_address(&report), "10.99.0.2", "{}", runtime.name);
        let second = host.run(&runtime, &subnet, &["true"]);
        assert_one_line_error(&runtime, &second, "no free address in 10.99.0.0/30");
        assert_eq!(
            host.bridge_ports("byoc0").len(),
            1,
            "{}: the second left a port",
            runtime.name
        );
        first.release().expect_success();
        host.assert_clean(&runtime);
    }
}

#[test]
fn what_a_runtime_killed_with_sigkill_leaves_is_cleaned_up_by_the_next() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let mut killed = host.start_waiting(&runtime, &[], &SHOW_NETWORK_AND_WAIT);
        let report = killed.wait_for_stderr_line(SHOWN);
        assert_eq!(eth0_address(&report), "10.88.0.2", "{}", runtime.name);
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(killed.runtime_pid(), libc::SIGKILL) };
        let _ = killed.child.wait();
        let left = leases_in(runtime.data_root.path());
        assert_eq!(
            left.len(),
            1,
            "{}: the killed runtime's lease: {left:?}",
            runtime.name
        );
        // The next runtime reclaims the lease (its address waits its turn: the next one
        // is given), and removes the killed one's files; the kernel removes its cable.
        // From chapter 7 it is started under the same cgroup parent, where it reclaims
        // cgroups.
        let mut next = runtime.command(&[], &["probe", "net"]);
        same_cgroup_parent(&mut next, killed.cgroup_parent());
        let next = host.within(|| run_command(&runtime.name, next));
        next.expect_success();
        assert_eq!(
            eth0_address(&next.stdout),
            "10.88.0.3",
            "{}: {}",
            runtime.name,
            next.report()
        );
        // From chapter 7, the killed runtime's cgroup too (found by its record).
        if let Some(parent) = killed.cgroup_parent() {
            cgroups::assert_none_left(parent, &[], &runtime.name, &next.report());
        }
        drop(killed);
        host.assert_clean(&runtime);
    }
}

/// Starts `next` under `parent`, the cgroup parent of an earlier run (chapter 7 on), so
/// that it reclaims what that run left: a runtime reclaims cgroups under its own parent
/// only.
fn same_cgroup_parent(next: &mut std::process::Command, parent: Option<&str>) {
    if let Some(parent) = parent {
        next.env(cgroups::PARENT_VARIABLE, parent);
    }
}

#[test]
fn a_runtime_killed_but_not_yet_reaped_is_dead_and_the_next_start_reclaims_its_lease() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let prepared = runtime.command(&[], &["sh", "-c", "echo ready; exec sleep 60"]);
        let cgroup_parent = cgroups::parent_of(&prepared);
        let mut parent = host.within(|| never_reaping_parent_of(&prepared));
        let pid = runtime_pid_once_ready(&mut parent);
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait_until_zombie(pid);
        let left = leases_in(runtime.data_root.path());
        assert_eq!(
            left.len(),
            1,
            "{}: the zombie's lease: {left:?}",
            runtime.name
        );
        let mut next = runtime.command(&[], &["true"]);
        same_cgroup_parent(&mut next, cgroup_parent.as_deref());
        let next = host.within(|| run_command(&runtime.name, next));
        let left = leases_in(runtime.data_root.path());
        // The parent ends, and the zombie, handed to init, is reaped at last.
        // SAFETY: kill has no memory-safety preconditions; a negative PID names the group.
        unsafe { libc::kill(-(parent.id() as i32), libc::SIGKILL) };
        let _ = parent.wait();
        next.expect_success();
        assert!(
            left.is_empty(),
            "{}: a zombie runtime was taken for alive, its lease kept: {left:?}\n{}",
            runtime.name,
            next.report()
        );
        if let Some(parent) = &cgroup_parent {
            cgroups::assert_none_left(parent, &[], &runtime.name, &next.report());
        }
        host.assert_clean(&runtime);
    }
}

/// Runs `runtime` as the child of a shell that prints its PID and then becomes `sleep`,
/// which never reaps it: killed, the runtime stays a zombie until `sleep` ends.
fn never_reaping_parent_of(runtime: &std::process::Command) -> std::process::Child {
    let mut shell = std::process::Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg("\"$@\" & echo \"runtime $!\"; exec /bin/sleep 60 >/dev/null")
        .arg("sh")
        .arg(runtime.get_program())
        .args(runtime.get_args())
        .env_clear()
        .stdout(std::process::Stdio::piped());
    for (name, value) in runtime.get_envs() {
        if let Some(value) = value {
            shell.env(name, value);
        }
    }
    in_own_group_with_umask(&mut shell);
    shell.spawn().expect("the shell starts")
}

/// The runtime's PID, once its container has said `ready`.
fn runtime_pid_once_ready(parent: &mut std::process::Child) -> i32 {
    use std::io::BufRead;
    let stdout = parent.stdout.take().expect("stdout is piped");
    let (mut pid, mut ready) = (None, false);
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("the shell's stdout is readable");
        match line.strip_prefix("runtime ") {
            Some(number) => pid = number.parse().ok(),
            None => ready |= line == "ready",
        }
        if ready && pid.is_some() {
            break;
        }
    }
    assert!(ready, "the container did not start");
    pid.expect("the shell printed the runtime's PID")
}

/// Waits until `pid` is a zombie: field 3 of `/proc/PID/stat` is `Z`.
fn wait_until_zombie(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(") ")
            .next()
            .and_then(|after| after.chars().next());
        if state == Some('Z') {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pid} did not become a zombie: {stat}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A data root of a test's own, `DIR/data`, and beside it a victim directory,
/// `DIR/victim`, with a file in it: what a forged record aims at, which must stay as it
/// is.
struct Beside {
    dir: tempfile::TempDir,
}

impl Beside {
    fn new() -> Beside {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("byoc-test-")
            .tempdir()
            .expect("a temp dir");
        let beside = Beside { dir };
        for made in [beside.data_root(), beside.victim().join("inside")] {
            std::fs::create_dir_all(&made).expect("the test's dirs are made");
            let mode = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(&made, mode).expect("chmod works");
        }
        std::fs::write(beside.victim().join("inside/precious"), "keep me\n").unwrap();
        beside
    }

    fn data_root(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn victim(&self) -> std::path::PathBuf {
        self.dir.path().join("victim")
    }

    /// Writes a record under the data root as the kit would: the caller's, mode 0644.
    fn forge(&self, record: &str, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.data_root().join(record);
        let dir = path.parent().expect("a record is in a directory");
        std::fs::create_dir_all(dir).expect("the records' dir is made");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(&path, text).expect("the record is written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// The victim, every file with its bytes, to compare before and after.
    fn victim_tree(&self) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut tree = Vec::new();
        let mut dirs = vec![self.victim()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            tree.push((dir.clone(), Vec::new()));
            for entry in entries.flatten() {
                match entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    true => dirs.push(entry.path()),
                    false => {
                        tree.push((entry.path(), std::fs::read(entry.path()).unwrap()))
                    }
                }
            }
        }
        tree.sort();
        tree
    }
}

#[test]
fn a_forged_lease_line_is_ignored_and_the_directory_it_aims_at_stays() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let beside = Beside::new();
        let forged = "10.88.0.2 ../../victim 1 0";
        beside.forge("networks/byoc0.leases", &format!("{forged}\n"));
        // As an earlier run leaves it: `containers/..` leads back to the data root.
        beside.forge("containers/.keep", "");
        let before = beside.victim_tree();
        let mut command = runtime.command(&[], &["true"]);
        command.env("BYOC_ROOT", beside.data_root());
        let run = host.within(|| run_command(&runtime.name, command));
        run.expect_success();
        assert_eq!(
            beside.victim_tree(),
            before,
            "{}: the victim changed\n{}",
            runtime.name,
            run.report()
        );
        let said: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| line.contains(forged))
            .collect();
        assert!(
            said.len() == 1 && said[0].starts_with("byoc: ignoring"),
            "{}: one line should say the forged lease is ignored\n{}",
            runtime.name,
            run.report()
        );
        // Left alone: still in the file, as it was.
        assert_eq!(leases_in(&beside.data_root()), [forged], "{}", runtime.name);
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_data_root_that_is_not_the_callers_alone_is_refused_in_one_line() {
    use std::os::unix::fs::PermissionsExt;
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let cases: [(u32, u32, &str); 2] = [
            (65534, 0o755, "belongs to uid 65534, not to you (uid 0)"),
            (0, 0o777, "has mode 0777: others may write in it"),
        ];
        for (owner, mode, expected) in cases {
            let beside = Beside::new();
            let data_root = beside.data_root();
            std::os::unix::fs::chown(&data_root, Some(owner), None).expect("chown works");
            std::fs::set_permissions(&data_root, std::fs::Permissions::from_mode(mode))
                .unwrap();
            let mut command = runtime.command(&[], &["true"]);
            command.env("BYOC_ROOT", &data_root);
            let run = host.within(|| run_command(&runtime.name, command));
            assert_one_line_error(&runtime, &run, expected);
            let made: Vec<_> = std::fs::read_dir(&data_root).unwrap().flatten().collect();
            assert!(made.is_empty(), "{}: made {made:?}", runtime.name);
        }
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_data_root_at_the_top_or_on_the_kernels_file_systems_is_refused() {
    if !meets(&NEEDS) {
        return;
    }
    for runtime in from_chapter(6) {
        // --net none: an old runtime that took these would write nothing there.
        let cases = [
            ("/", "is the top of the file system"),
            ("/proc/byoc", "is under /proc"),
            ("/sys/fs/cgroup", "is under /sys"),
        ];
        for (root, expected) in cases {
            let run = runtime.run(&["--net", "none", "--root", root], &["true"]);
            assert_one_line_error(&runtime, &run, expected);
        }
    }
}

#[test]
fn the_trace_tells_the_story_of_a_run_on_the_bridge() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let prepared = runtime.trace_command(&["--hostname", "traced"], &["true"]);
        let run = host.within(|| run_command(&runtime.name, prepared));
        run.expect_success();
        let story = [
            "ip link add byoc0 type bridge",
            "ip addr add 10.88.0.1/16 dev byoc0",
            "nft create table ip byoc",
            "clone(",
            "ip link add veth",
            "ip link set lo up",
            "ip addr add 10.88.0.2/16 dev eth0",
            "ip route add default via 10.88.0.1",
            "pivot_root",
            "execve",
        ];
        assert_narrated_in_order(&run, &story);
        // The snapshot is chapter 6's story; later chapters add their own steps to it.
        if testing_solutions() && runtime.chapter == 6 {
            let settings = network_trace_filters();
            settings.bind(|| {
                insta::assert_snapshot!("ch06_trace", trace_by_actor(&run.stderr))
            });
        }
        host.assert_clean(&runtime);
    }
}

/// Asserts that the narration has lines starting with each of `expected`, in this order.
fn assert_narrated_in_order(run: &Run, expected: &[&str]) {
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|line| line.split_once("] ").map(|(_, call)| call))
        .collect();
    let mut position = 0;
    for step in expected {
        match said[position..]
            .iter()
            .position(|call| call.starts_with(step))
        {
            Some(offset) => position += offset + 1,
            None => panic!(
                "{}: --trace does not say {step:?} where it should; expected, in order: \
                 {expected:?}\n{}",
                run.runtime,
                run.report()
            ),
        }
    }
}

/// The trace filters, and the container's id and the names made from it.
fn network_trace_filters() -> insta::Settings {
    let mut settings = trace_filters();
    settings.add_filter(r"veth[0-9a-f]{8}", "veth[ID]");
    settings.add_filter(r"netns \d+", "netns [PID]");
    settings.add_filter(r"/containers/[0-9a-f]{12}", "/containers/[ID]");
    settings.add_filter(r#"/tmp/byoc-data-[^/"\s]+"#, "[DATA ROOT]");
    settings.add_filter(r#"nameserver [^"\n]*"#, "nameserver [HOST'S]");
    settings
}

#[test]
fn the_containers_own_files_are_never_mounted_through_a_symlink_or_on_a_fifo() {
    for runtime in from_chapter_as_root(6) {
        let root = hostile::HostileRoot::new();
        root.symlink("etc/hosts", &root.victim.join("file"));
        let run = root.run(&runtime, &["--net", "bridge"], &["true"]);
        root.assert_victim_unchanged(&runtime, &run);
        assert_one_line_error(&runtime, &run, "/etc/hosts in the root filesystem");
        assert!(run.stderr.contains("is a symlink to"), "{}", run.report());

        let root = hostile::HostileRoot::new();
        root.fifo("etc/resolv.conf");
        let run = root.run(&runtime, &["--net", "bridge"], &["true"]);
        assert_one_line_error(&runtime, &run, "/etc/resolv.conf in the root filesystem");
        assert!(run.stderr.contains("is a FIFO"), "{}", run.report());
    }
}

/// Fails the test if the runtime made a bridge or a NAT table on `host`.
fn assert_no_bridge_and_no_nat(host: &NetHost, runtime: &Runtime, after: &Run) {
    assert!(
        !host.links().iter().any(|link| link == "byoc0"),
        "{}: a bridge is left: {}",
        runtime.name,
        after.report()
    );
    let rules = host.nft_rules();
    assert!(
        !rules.contains("table ip byoc"),
        "{}: a NAT table is left:\n{rules}{}",
        runtime.name,
        after.report()
    );
}

#[test]
fn subnets_with_a_meaning_of_their_own_are_refused_and_nothing_is_made() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let cases = [
            ("224.0.0.0/8", "is in 224.0.0.0/4, the multicast range"),
            ("0.0.0.0/8", "is in 0.0.0.0/8, the \"this network\" range"),
            ("127.0.0.0/8", "is in 127.0.0.0/8, the loopback range"),
            (
                "169.254.0.0/16",
                "is in 169.254.0.0/16, the link-local range",
            ),
            ("255.255.255.0/30", "is in 240.0.0.0/4, the reserved range"),
            ("255.255.255.252/30", "the broadcast address"),
        ];
        for (subnet, expected) in cases {
            let run = host.run(&runtime, &["--subnet", subnet], &["true"]);
            assert_one_line_error(&runtime, &run, expected);
            assert_no_bridge_and_no_nat(&host, &runtime, &run);
            if subnet == "127.0.0.0/8" {
                let shown = "--subnet 127.0.0.0/8 --rootfs rootfs/busybox -- true";
                let text = transcript(&[(shown, &run)]);
                transcript_settings()
                    .bind(|| insta::assert_snapshot!("ch06_loopback_subnet", text));
            }
        }
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_host_port_published_twice_is_refused_in_one_line() {
    for runtime in from_chapter(6) {
        let run = runtime.run(&["-p", "8080:80", "-p", "8080:80"], &["true"]);
        assert_one_line_error(&runtime, &run, "publish the same host port 8080");
    }
}

#[test]
fn a_start_that_fails_removes_the_bridge_and_nat_it_made_and_only_those() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let failed = host.run(&runtime, &[], &["/no/such/command"]);
        assert_ne!(failed.code, 0, "{}: {}", runtime.name, failed.report());
        assert_no_bridge_and_no_nat(&host, &runtime, &failed);
        // A bridge that a container started with stays, for the next, whatever they do.
        host.run(&runtime, &[], &["true"]).expect_success();
        let failed_again = host.run(&runtime, &[], &["/no/such/command"]);
        assert_ne!(failed_again.code, 0, "{}", runtime.name);
        assert!(
            host.links().iter().any(|link| link == "byoc0"),
            "{}: a start that did not make the bridge removed it: {}",
            runtime.name,
            failed_again.report()
        );
        assert!(
            host.nft_rules().contains("table ip byoc"),
            "{}",
            runtime.name
        );
        host.assert_clean(&runtime);
    }
}

/// The subnets the NAT table's rules masquerade, as `nft` lists them (`ip saddr X`).
fn masqueraded_subnets(host: &NetHost) -> Vec<String> {
    host.nft_rules()
        .lines()
        .filter(|line| line.contains("masquerade"))
        .filter_map(|line| line.split("ip saddr ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_nat_rule_left_for_another_subnet_is_replaced() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let old = host.run(&runtime, &["--subnet", "10.77.0.0/16"], &["true"]);
        old.expect_success();
        assert_eq!(
            masqueraded_subnets(&host),
            ["10.77.0.0/16"],
            "{}",
            runtime.name
        );
        // The bridge goes, by hand; its rule stays, as docker's stays without docker0.
        host.ip(&["link", "delete", "byoc0"]);
        let new = host.run(&runtime, &[], &["true"]);
        new.expect_success();
        assert_eq!(
            masqueraded_subnets(&host),
            ["10.88.0.0/16"],
            "{}: the containers of the new bridge have no way out:\n{}{}",
            runtime.name,
            host.nft_rules(),
            new.report()
        );
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_container_still_on_the_old_subnet_is_named_when_a_new_one_is_asked_for() {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let old = ["--subnet", "10.77.0.0/16"];
        let mut running = host.start_waiting(&runtime, &old, &SHOW_NETWORK_AND_WAIT);
        running.wait_for_stderr_line(SHOWN);
        host.ip(&["link", "delete", "byoc0"]);
        let refused = host.run(&runtime, &[], &["true"]);
        assert_one_line_error(
            &runtime,
            &refused,
            "still runs with address 10.77.0.2, outside subnet 10.88.0.0/16",
        );
        assert!(
            !host.links().iter().any(|link| link == "byoc0"),
            "{}: the refused start made a bridge",
            runtime.name
        );
        running.release().expect_success();
        // What the test removed by hand, the rule of the bridge it deleted goes by hand
        // too.
        host.within(|| {
            let status = std::process::Command::new("nft")
                .args(["delete", "table", "ip", "byoc"])
                .status()
                .expect("nft runs");
            assert!(status.success(), "nft delete table ip byoc");
        });
        host.assert_clean(&runtime);
    }
}

#[test]
fn a_second_data_root_is_refused_on_the_bridge_and_one_data_root_gives_distinct_addresses(
) {
    for runtime in root_runtimes() {
        let host = NetHost::new();
        let mut first = host.start_waiting(&runtime, &[], &SHOW_NETWORK_AND_WAIT);
        let first_report = first.wait_for_stderr_line(SHOWN);
        let other_root = tempfile::Builder::new()
            .prefix("byoc-data-other-")
            .tempdir()
            .unwrap();
        let other = other_root.path().to_str().unwrap();
        // Three more on the bridge's own data root, and three on another, all at once.
        let (same, refused): (Vec<Waiting>, Vec<Run>) = std::thread::scope(|scope| {
            let same: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        host.start_waiting(&runtime, &[], &SHOW_NETWORK_AND_WAIT)
                    })
                })
                .collect();
            let refused: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| host.run(&runtime, &["--root", other], &["true"]))
                })
                .collect();
            (
                same.into_iter()
                    .map(|thread| thread.join().unwrap())
                    .collect(),
                refused
                    .into_iter()
                    .map(|thread| thread.join().unwrap())
                    .collect(),
            )
        });
        let ours = format!("{:?}", runtime.data_root.path().canonicalize().unwrap());
        for run in &refused {
            assert_one_line_error(
                &runtime,
                run,
                &format!("bridge byoc0 keeps its leases in data root {ours}"),
            );
            assert!(
                run.stderr.contains(other) && run.stderr.contains("unshare -n"),
                "{}",
                run.report()
            );
        }
        let mut settings = transcript_settings();
        settings.add_filter(&regex::escape(&ours), "\"/tmp/A\"");
        settings.add_filter(&regex::escape(other), "/tmp/B");
        let shown = "--root /tmp/B --rootfs rootfs/busybox -- true";
        let text = transcript(&[(shown, &refused[0])]);
        settings.bind(|| insta::assert_snapshot!("ch06_second_data_root", text));
        let mut addresses = vec![eth0_address(&first_report)];
        let mut containers = vec![first];
        for mut container in same {
            addresses.push(eth0_address(&container.wait_for_stderr_line(SHOWN)));
            containers.push(container);
        }
        let distinct: std::collections::BTreeSet<&String> = addresses.iter().collect();
        assert_eq!(
            distinct.len(),
            4,
            "{}: addresses {addresses:?}",
            runtime.name
        );
        for container in containers {
            container.release().expect_success();
        }
        assert!(
            leases_in(other_root.path()).is_empty(),
            "{}: leases in the other data root",
            runtime.name
        );
        host.assert_clean(&runtime);
    }
}

/// Root's runtimes and the rootless ones, each run in a user namespace and a network
/// namespace of its own user's making ([`OwnNetwork`]): no test here needs root for it.
fn runtimes_in_own_networks() -> Vec<Runtime> {
    if !meets(&[Need::NetworkTools, Need::UserNamespaces]) {
        return Vec::new();
    }
    from_chapter(6)
}

#[test]
fn root_of_a_user_namespace_builds_the_bridge_in_a_network_of_its_own() {
    for runtime in runtimes_in_own_networks() {
        let own = OwnNetwork::for_runtime(&runtime);
        let options = ["--net", "bridge", "-p", "8080:80"];
        let mut command = runtime.command(&options, &["probe", "serve", "80"]);
        own.enter(&mut command);
        let container = runtime.start_waiting_command(command);
        // The client keeps its sending side open until the answer comes, as wget does.
        let mut client = std::process::Command::new(runtime.rootfs().join("bin/probe"));
        client.args(["ask", "127.0.0.1:8080"]);
        own.enter(&mut client);
        let asked = client.output().expect("the probe runs on the host's side");
        let answer = String::from_utf8_lossy(&asked.stdout).into_owned();
        let run = container.release();
        assert_eq!(
            answer.trim(),
            "answer: ping",
            "{}: through the bridge of a network of its own, port 8080 gave no answer\n{}",
            runtime.name,
            run.report()
        );
        run.expect_success();
    }
}
