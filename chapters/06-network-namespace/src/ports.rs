// Your copy of solutions/06-network-namespace/src/ports.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Published ports: `-p 8080:80`, a host port that leads to a port in the container.
//! Book: section 6.5.
//!
//! As `docker-proxy` does, the runtime itself listens on the host's port, and for each
//! connection it accepts opens one to the container and copies bytes both ways. On the
//! bridge, the connection to the container goes to its address. Without a bridge (`--net
//! none`, and every rootless container), the host cannot reach the container's network at
//! all: a helper process joins the container's namespaces and makes the sockets there, as
//! rootlesskit's port driver does. A socket belongs to the network namespace it was made
//! in, whoever uses it later.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::str::FromStr;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Error, Result};

use crate::dialer::InsideDialer;

/// One `-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
}

impl FromStr for PortMapping {
    type Err = Error;

    fn from_str(text: &str) -> Result<PortMapping> {
        let usage = "is not [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp], like 8080:80";
        let ports = match text.split_once('/') {
            Some((ports, "tcp")) => ports,
            Some((_, protocol)) => {
                bail!("-p {text:?}: only tcp ports can be published, not {protocol:?}")
            }
            None => text,
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, container_port) = match parts[..] {
            [host, container] => (Ipv4Addr::UNSPECIFIED, host, container),
            [ip, host, container] => {
                let ip = ip.parse().with_context(|| {
                    format!("-p {text:?}: {ip:?} is not an IPv4 address")
                })?;
                (ip, host, container)
            }
            _ => bail!("-p {text:?} {usage}"),
        };
        Ok(PortMapping {
            host_ip,
            host_port: port(text, host_port)?,
            container_port: port(text, container_port)?,
        })
    }
}

fn port(text: &str, port: &str) -> Result<u16> {
    match port.parse::<u32>() {
        Ok(number @ 1..=65535) => Ok(number as u16),
        Ok(number) => bail!("-p {text:?}: port {number} is out of range (1-65535)"),
        Err(_) => bail!("-p {text:?}: {port:?} is not a port number"),
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.host_ip, self.host_port, self.container_port
        )
    }
}

/// A host port the runtime listens on, and the container port it leads to.
pub struct Published {
    listener: TcpListener,
    mapping: PortMapping,
}

/// Listens on every host port, before anything else is made: a port already in use fails
/// the run here, with nothing to undo.
pub fn listen(mappings: &[PortMapping]) -> Result<Vec<Published>> {
    check_each_host_port_once(mappings)?;
    mappings
        .iter()
        .map(|mapping| {
            let address = SocketAddrV4::new(mapping.host_ip, mapping.host_port);
            let listener = TcpListener::bind(address)
                .map_err(|error| explain_bind(error, mapping))?;
            Ok(Published {
                listener,
                mapping: *mapping,
            })
        })
        .collect()
}

/// A host port can lead to one container port only: a second `-p` for it would otherwise
/// be refused by the kernel as "in use", which blames the host for the command line.
fn check_each_host_port_once(mappings: &[PortMapping]) -> Result<()> {
    for (index, mapping) in mappings.iter().enumerate() {
        let earlier = mappings[..index].iter().find(|other| {
            let any = Ipv4Addr::UNSPECIFIED;
            let same_address = other.host_ip == mapping.host_ip
                || other.host_ip == any
                || mapping.host_ip == any;
            same_address && other.host_port == mapping.host_port
        });
        if let Some(other) = earlier {
            bail!(
                "-p {mapping} and -p {other} publish the same host port {}: each host \
                 port can lead to one container port",
                mapping.host_port
            );
        }
    }
    Ok(())
}

fn explain_bind(error: io::Error, mapping: &PortMapping) -> Error {
    let why = match error.kind() {
        io::ErrorKind::AddrInUse => {
            "something on the host listens there already".to_string()
        }
        io::ErrorKind::PermissionDenied => format!(
            "ports below {} need root (sysctl net.ipv4.ip_unprivileged_port_start)",
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                .map_or("1024".to_string(), |text| text.trim().to_string())
        ),
        io::ErrorKind::AddrNotAvailable => "the host has no such address".to_string(),
        _ => error.to_string(),
    };
    anyhow::anyhow!(
        "cannot publish host port {}:{}: {why} ({error})",
        mapping.host_ip,
        mapping.host_port
    )
}

/// How long the proxy waits for the container to answer a connection: a container that
/// is not listening answers at once (a reset); one that says nothing is not coming.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the runtime reaches a port in the container.
pub enum Dialer {
    /// On the bridge: the container's address, from the host.
    Address(Ipv4Addr),
    /// Without a bridge: sockets made inside the container's network namespace.
    Inside(InsideDialer),
}

impl Dialer {
    fn dial(&self, port: u16) -> io::Result<TcpStream> {
        match self {
            Dialer::Address(address) => {
                let container = SocketAddr::from((*address, port));
                TcpStream::connect_timeout(&container, CONNECT_TIMEOUT)
            }
            Dialer::Inside(inside) => inside.dial(port),
        }
    }
}

// ANCHOR: proxy
/// Starts one thread per published port that accepts connections and relays each one to
/// the container, until the runtime exits.
pub fn start_proxy(published: Vec<Published>, dialer: Dialer) {
    let dialer: &'static Dialer = Box::leak(Box::new(dialer));
    for port in published {
        thread::spawn(move || {
            for client in port.listener.incoming().flatten() {
                let container_port = port.mapping.container_port;
                thread::spawn(move || match dialer.dial(container_port) {
                    Ok(server) => relay(client, server),
                    // The client sees its connection closed, as with docker-proxy.
                    Err(error) => {
                        eprintln!(
                            "byoc: cannot reach container port {container_port}: {error}"
                        )
                    }
                });
            }
        });
    }
}
// ANCHOR_END: proxy

// ANCHOR: relay
/// Copies bytes from the client to the server and back until both sides are done. When
/// one side stops sending, the other is told (a half close), so a client that sends a
/// request and then `shutdown(SHUT_WR)` still gets its whole answer.
pub fn relay(client: TcpStream, server: TcpStream) {
    // TODO: EXERCISE 6.3 (book 6.5): copy both ways at once, passing on each side's end
    // HINT: a relay copies two ways at once, so one direction runs in a thread of its
    // HINT: own. When one side has no more to say, pass that on to the other. Read
    // HINT: section 6.5.
    todo!(
        "exercise 6.3: copy both ways at once, passing on each side's end (book section \
         6.5)"
    )
}
// ANCHOR_END: relay

/// Copies until `from` stops sending, then tells `to` that no more is coming (a half
/// close: `shutdown(SHUT_WR)`).
pub fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_port_is_published_once() {
        let mappings = |texts: &[&str]| -> Vec<PortMapping> {
            texts.iter().map(|text| text.parse().unwrap()).collect()
        };
        for twice in [
            &["8080:80", "8080:80"][..],
            &["8080:80", "8080:81"],
            &["127.0.0.1:8080:80", "8080:81"],
        ] {
            let error = check_each_host_port_once(&mappings(twice)).unwrap_err();
            assert!(
                error.to_string().contains("the same host port 8080"),
                "{error}"
            );
        }
        let apart = mappings(&["127.0.0.1:8080:80", "127.0.0.2:8080:80", "8081:80"]);
        assert!(check_each_host_port_once(&apart).is_ok());
    }

    #[test]
    fn mappings_are_read_like_dockers() {
        let mapping: PortMapping = "8080:80".parse().unwrap();
        assert_eq!(mapping.host_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!((mapping.host_port, mapping.container_port), (8080, 80));
        let mapping: PortMapping = "127.0.0.1:8080:80/tcp".parse().unwrap();
        assert_eq!(mapping.host_ip, Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn bad_mappings_say_what_is_wrong() {
        let error = |text: &str| text.parse::<PortMapping>().unwrap_err().to_string();
        assert!(error("70000:80").contains("port 70000 is out of range (1-65535)"));
        assert!(error("0:80").contains("port 0 is out of range"));
        assert!(error("8080:80/udp").contains("only tcp"));
        assert!(error("8080").contains("HOST_PORT:CONTAINER_PORT"));
        assert!(error("x:8080:80").contains("not an IPv4 address"));
        assert!(error("http:80").contains("\"http\" is not a port number"));
    }
}
