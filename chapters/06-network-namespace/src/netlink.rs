// Your copy of solutions/06-network-namespace/src/netlink.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Netlink: how a program asks the kernel to change its network. Book: section 6.2.
//!
//! `ip link add`, `ip addr add` and `nft add rule` are not system calls of their own:
//! each opens a netlink socket and writes a message that describes the change, and the
//! kernel answers with an acknowledgement or an errno. The kit does the same, through the
//! rust-netlink crates, and narrates each request as the `ip` or `nft` command that would
//! send it, so `--trace` reads like a shell session.

use std::fmt;
use std::marker::PhantomData;

use anyhow::{bail, Context, Result};
use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols, Socket, SocketAddr};
use nix::errno::Errno;

use crate::trace::{self, SyscallError};

/// The largest answer the kernel sends in one datagram for the requests the kit makes.
const RECEIVE_BUFFER: usize = 64 * 1024;

/// A netlink socket that speaks one family of messages: `RouteNetlinkMessage` for links,
/// addresses and routes (what `ip` sends), netfilter messages for `nft`'s tables and
/// rules.
pub struct Netlink<M> {
    socket: Socket,
    sequence: u32,
    messages: PhantomData<M>,
}

impl Netlink<RouteNetlinkMessage> {
    /// A socket for links, addresses and routes, in this process's network namespace.
    pub fn route() -> Result<Self> {
        Netlink::open(protocols::NETLINK_ROUTE)
    }
}

impl<M> Netlink<M>
where
    M: NetlinkSerializable + NetlinkDeserializable + fmt::Debug,
{
    /// Opens a netlink socket of `protocol`. It belongs to the network namespace this
    /// process is in now, for as long as it lives.
    pub fn open(protocol: isize) -> Result<Self> {
        let mut socket = Socket::new(protocol).context("cannot open a netlink socket")?;
        socket.bind_auto().context("cannot bind a netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context("cannot connect a netlink socket to the kernel")?;
        Ok(Netlink {
            socket,
            sequence: 0,
            messages: PhantomData,
        })
    }

    // ANCHOR: request
    /// Sends one request and waits for the kernel's acknowledgement. `says` is the
    /// command that does the same from a shell, for `--trace` and for the error.
    pub fn request(
        &mut self,
        message: M,
        flags: u16,
        says: fmt::Arguments<'_>,
    ) -> Result<(), SyscallError> {
        let answer = self.send_and_acknowledge(vec![(message, flags | NLM_F_ACK)], 1);
        trace::syscall(says, answer)
    }
    // ANCHOR_END: request

    /// Sends several messages in one datagram (a netfilter batch is one), and waits for
    /// `acknowledged` acknowledgements: the messages sent with `NLM_F_ACK`.
    pub fn request_all(
        &mut self,
        messages: Vec<(M, u16)>,
        acknowledged: usize,
        says: fmt::Arguments<'_>,
    ) -> Result<(), SyscallError> {
        let answer = self.send_and_acknowledge(messages, acknowledged);
        trace::syscall(says, answer)
    }

    /// Asks for a list (every link, every route) and collects the kernel's answers.
    pub fn dump(&mut self, message: M) -> Result<Vec<M>> {
        self.send(vec![(message, NLM_F_DUMP)])
            .map_err(|errno| anyhow::anyhow!("netlink dump request failed: {errno:?}"))?;
        let mut answers = Vec::new();
        loop {
            for reply in self.receive()? {
                match reply.payload {
                    NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(error) if error.code.is_some() => {
                        bail!("netlink dump failed: {}", error.to_io());
                    }
                    _ => {}
                }
            }
        }
    }

    fn send_and_acknowledge(
        &mut self,
        messages: Vec<(M, u16)>,
        acknowledged: usize,
    ) -> nix::Result<()> {
        self.send(messages)?;
        let mut waiting = acknowledged;
        while waiting > 0 {
            for reply in self.receive().map_err(|_| Errno::EIO)? {
                if let NetlinkPayload::Error(error) = reply.payload {
                    // An "error" with code 0 is the acknowledgement.
                    match error.code {
                        None => waiting -= 1,
                        Some(code) => return Err(Errno::from_raw(-code.get())),
                    }
                }
            }
        }
        Ok(())
    }

    /// Numbers the messages, and writes them to the kernel in one datagram.
    fn send(&mut self, messages: Vec<(M, u16)>) -> nix::Result<()> {
        let mut datagram = Vec::new();
        for (inner, flags) in messages {
            self.sequence += 1;
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | flags;
            header.sequence_number = self.sequence;
            let mut message =
                NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
            message.finalize();
            let start = datagram.len();
            datagram.resize(start + message.buffer_len(), 0);
            message.serialize(&mut datagram[start..]);
        }
        self.socket.send(&datagram, 0).map_err(|error| {
            Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
        })?;
        Ok(())
    }

    /// Reads one datagram and splits it into the messages it holds.
    fn receive(&mut self) -> Result<Vec<NetlinkMessage<M>>> {
        let mut buffer = Vec::with_capacity(RECEIVE_BUFFER);
        let length = self
            .socket
            .recv(&mut buffer, 0)
            .context("cannot read the kernel's netlink answer")?;
        let mut messages = Vec::new();
        let mut offset = 0;
        while offset < length {
            let message = NetlinkMessage::<M>::deserialize(&buffer[offset..length])
                .context("cannot read the kernel's netlink answer")?;
            let size = message.header.length as usize;
            if size == 0 {
                break;
            }
            offset += size.next_multiple_of(4);
            messages.push(message);
        }
        Ok(messages)
    }
}
