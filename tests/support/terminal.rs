//! Pseudo-terminals: a test standing in for a person at a terminal (`-t`), typing and
//! reading what the terminal shows.

use std::io::Write;
use std::process::Stdio;
use std::time::Instant;

use crate::{start, Runtime, Started, RUN_LIMIT};

/// A pseudo-terminal for a test to stand in for a person at a terminal: the runtime gets
/// the `terminal` side as its stdin, stdout and stderr; the test types and reads on the
/// `master` side.
pub struct Pty {
    pub master: std::fs::File,
    pub terminal: std::fs::File,
}

/// Opens a new pseudo-terminal pair on the host.
pub fn open_pty() -> Pty {
    use std::os::fd::FromRawFd;
    let (mut master, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two descriptors through valid pointers; the other arguments
    // may be null.
    let result = unsafe {
        libc::openpty(
            &mut master,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(
        result,
        0,
        "openpty failed: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: openpty has just made both descriptors for us.
    unsafe {
        Pty {
            master: std::fs::File::from_raw_fd(master),
            terminal: std::fs::File::from_raw_fd(terminal),
        }
    }
}

impl Pty {
    /// A copy of the terminal side, for one of a child process's stdin, stdout, stderr.
    pub fn terminal_stdio(&self) -> Stdio {
        Stdio::from(
            self.terminal
                .try_clone()
                .expect("the terminal can be copied"),
        )
    }

    /// Turns off line editing, so that a character pushed into the input counts at once
    /// in [`Pty::pending_input`] (in line mode, only finished lines do).
    pub fn raw(self) -> Pty {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.terminal);
        // SAFETY: tcgetattr and tcsetattr read and write one termios through valid
        // pointers; an all-zero termios is a valid place for tcgetattr to fill in.
        unsafe {
            let mut mode: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(fd, &mut mode), 0, "tcgetattr failed");
            libc::cfmakeraw(&mut mode);
            assert_eq!(
                libc::tcsetattr(fd, libc::TCSANOW, &mode),
                0,
                "tcsetattr failed"
            );
        }
        self
    }

    /// How many bytes wait in the terminal's input, typed (or pushed) but not yet read.
    pub fn pending_input(&self) -> i32 {
        let mut count: libc::c_int = 0;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.terminal);
        // SAFETY: FIONREAD writes one int through a pointer valid for the call.
        let result = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut count) };
        assert_eq!(result, 0, "FIONREAD failed");
        count
    }

    /// Resizes the terminal, as a person resizing the window would (the test then tells
    /// the runtime with SIGWINCH, as the terminal would tell its foreground programs).
    pub fn resize(&self, rows: u16, cols: u16) {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.master);
        // SAFETY: TIOCSWINSZ reads one winsize through a pointer valid for the call.
        let result = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) };
        assert_eq!(result, 0, "TIOCSWINSZ failed");
    }

    /// Types `text` on the terminal, as a person would.
    pub fn type_text(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .expect("typing works");
    }

    /// Reads what the terminal shows until `needle` appears, for at most `RUN_LIMIT`.
    pub fn read_until(&mut self, needle: &str) -> String {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.master);
        let deadline = Instant::now() + RUN_LIMIT;
        let mut seen = String::new();
        while !seen.contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {needle:?}; it showed:\n{seen}"
            );
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll reads and writes one pollfd through a valid pointer.
            if unsafe { libc::poll(&mut poll, 1, 100) } <= 0 {
                continue;
            }
            let mut buffer = [0u8; 4096];
            match std::io::Read::read(&mut self.master, &mut buffer) {
                Ok(count) if count > 0 => {
                    seen.push_str(&String::from_utf8_lossy(&buffer[..count]))
                }
                _ => break, // the other side is closed: nothing more will come
            }
        }
        seen
    }
}

/// Starts `sh` in a container under `-t`, with a new host pseudo-terminal as the
/// runtime's stdin, stdout and stderr, as a person at a terminal would, and waits for its
/// prompt.
pub fn shell_on_a_terminal(runtime: &Runtime) -> (Pty, Started) {
    let mut pty = open_pty();
    let mut command = runtime.command(&["-t"], &["sh"]);
    command
        .stdin(pty.terminal_stdio())
        .stdout(pty.terminal_stdio())
        .stderr(pty.terminal_stdio());
    let shell = start(command);
    pty.read_until("# ");
    (pty, shell)
}
