//! What bento's processes tell each other, and only that.
//!
//! A container is made by several processes: `bento create`, the supervisor it forks, PID 1
//! (forked in turn), and later `bento start`. They talk over pipes, a socketpair and the
//! gate's FIFO, and every one of those conversations is one of the messages below, one
//! byte each (a byte is written whole or not at all, and needs no framing). A pipe whose
//! other end is closed reads as end of file: [`receive`] returns `None`, which is how a
//! process learns that the other one died without a word.
//!
//! Real runtimes say more at this point (runc and youki pass JSON and netlink messages
//! between their processes: the config, namespace paths, the pid of a child); bento's
//! children inherit everything they need through fork(2), so a status is all they send.

use std::os::fd::AsFd;

use anyhow::{Context, Result};
use nix::errno::Errno;

/// One thing one of bento's processes tells another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// PID 1 → supervisor → `bento create`: everything is prepared, PID 1 waits at the gate.
    Ready,
    /// PID 1 → supervisor: it failed before its exec, and said why on stderr.
    Failed,
    /// Bento → the container, over the console socketpair: the user's terminal is in raw
    /// mode and the container's has its size: go on.
    TerminalReady,
    /// PID 1 → `bento start`, through the gate's FIFO: released, about to exec.
    Started,
}

impl Message {
    fn byte(self) -> u8 {
        match self {
            Message::Ready => b'1',
            Message::Failed => b'E',
            Message::TerminalReady => b'R',
            Message::Started => b'0',
        }
    }

    fn from_byte(byte: u8) -> Option<Message> {
        [
            Message::Ready,
            Message::Failed,
            Message::TerminalReady,
            Message::Started,
        ]
        .into_iter()
        .find(|message| message.byte() == byte)
    }
}

/// Writes `message` to `to` (a pipe, a socket, a FIFO).
pub fn send(to: impl AsFd, message: Message) -> Result<()> {
    loop {
        match nix::unistd::write(&to, &[message.byte()]) {
            Ok(1) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Ok(_) => anyhow::bail!("cannot send {message:?}: nothing was written"),
            Err(errno) => return Err(errno).with_context(|| format!("cannot send {message:?}")),
        }
    }
}

/// The next message from `from`; `None` at end of file (the sender is gone), on an error
/// (nothing to read yet on a non-blocking descriptor, too), or for a byte that is no
/// message.
pub fn receive(from: impl AsFd) -> Option<Message> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&from, &mut byte) {
            Ok(1) => return Message::from_byte(byte[0]),
            Err(Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_arrives_as_itself_and_a_closed_pipe_as_none() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        for message in [
            Message::Ready,
            Message::Failed,
            Message::TerminalReady,
            Message::Started,
        ] {
            send(&writer, message).unwrap();
            assert_eq!(receive(&reader), Some(message));
        }
        drop(writer);
        assert_eq!(receive(&reader), None);
    }
}
