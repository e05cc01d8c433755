//! Reading a password for `tws hash-password`: from the terminal, asked twice with echo off,
//! or as the first line of stdin when it is not a terminal (for scripts).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

/// Reads the password to hash.
pub fn read() -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            bail!("no password on stdin");
        }
        return Ok(password);
    }
    let first = prompt("Password: ")?;
    let again = prompt("Again: ")?;
    if first != again {
        bail!("the two passwords differ");
    }
    if first.is_empty() {
        bail!("the password is empty");
    }
    Ok(first)
}

/// Asks on stderr and reads a line from the terminal with echo off.
fn prompt(question: &str) -> Result<String> {
    let mut err = std::io::stderr();
    let _ = err.write_all(question.as_bytes());
    let _ = err.flush();
    let _echo = EchoOff::new();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let _ = err.write_all(b"\n");
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Turns the terminal's echo off while it lives.
struct EchoOff {
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr and tcsetattr read and write the struct passed; stdin is fd 0.
        unsafe {
            let mut term: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut term) != 0 {
                return EchoOff { saved: None };
            }
            let saved = term;
            term.c_lflag &= !libc::ECHO;
            term.c_lflag |= libc::ECHONL;
            libc::tcsetattr(0, libc::TCSANOW, &term);
            EchoOff { saved: Some(saved) }
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, saved);
            }
        }
    }
}
