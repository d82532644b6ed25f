//! Where passphrases come from, restic's way: `--password-file` /
//! `LETHE_PASSWORD_FILE`, `--password-command` / `LETHE_PASSWORD_COMMAND`,
//! `LETHE_PASSWORD`, and on a terminal a prompt that does not echo. Every copy
//! is zeroized when dropped. A password command runs without the repository
//! secrets in its environment.

use anyhow::{anyhow, bail, Context, Result};
use lethe_backup::connect;
use std::io::{BufRead, IsTerminal};
use std::os::fd::AsFd;
use std::path::Path;
use zeroize::Zeroizing;

/// A passphrase or recovery key in memory.
pub type Secret = Zeroizing<Vec<u8>>;

/// Restores the terminal's echo when dropped (also on an early return).
struct NoEcho<F: AsFd> {
    fd: F,
    saved: nix::sys::termios::Termios,
}

impl<F: AsFd> Drop for NoEcho<F> {
    fn drop(&mut self) {
        let _ =
            nix::sys::termios::tcsetattr(&self.fd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// Ask on stderr and read one line from the terminal on stdin without echo
/// (`what` names it in errors). `lethe user` asks for passwords this way too.
pub fn read_hidden_line(prompt: &str, what: &str) -> Result<Zeroizing<String>> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let saved = tcgetattr(stdin.as_fd()).context("reading the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet).context("turning echo off")?;
    let _guard = NoEcho {
        fd: stdin.as_fd(),
        saved,
    };
    let mut line = Zeroizing::new(String::new());
    stdin
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading {what}"))?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

/// Ask on stderr and read one passphrase from the terminal without echo.
pub fn prompt_hidden(prompt: &str) -> Result<Secret> {
    let s = read_hidden_line(prompt, "the passphrase")?;
    if s.is_empty() {
        bail!("empty passphrase");
    }
    Ok(Zeroizing::new(s.as_bytes().to_vec()))
}

/// Ask twice (a new passphrase).
pub fn prompt_new(what: &str) -> Result<Secret> {
    let a = prompt_hidden(&format!("enter {what}: "))?;
    let b = prompt_hidden(&format!("enter {what} again: "))?;
    if a != b {
        bail!("the two entries differ; nothing was changed");
    }
    Ok(a)
}

/// Is there a terminal to ask on?
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal()
}

/// The output of a password command (trailing newline removed).
pub fn from_command(cmd: &str) -> Result<Secret> {
    let out = lethe_backup::scheduled::shell(cmd)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running the password command {cmd:?}"))?;
    if !out.status.success() {
        bail!("the password command {cmd:?} failed ({})", out.status);
    }
    let v = Zeroizing::new(out.stdout);
    let s = v.strip_suffix(b"\n").unwrap_or(&v);
    let s = s.strip_suffix(b"\r").unwrap_or(s);
    if s.is_empty() {
        bail!("the password command {cmd:?} printed nothing");
    }
    Ok(Zeroizing::new(s.to_vec()))
}

/// A secret from a file (a trailing newline is not part of it).
pub fn from_file(path: &Path) -> Result<Secret> {
    Ok(Zeroizing::new(
        connect::read_secret(path).with_context(|| path.display().to_string())?,
    ))
}

/// The repository passphrase from the options, the environment or a prompt.
pub fn passphrase(file: Option<&Path>, command: Option<&str>, what: &str) -> Result<Secret> {
    if let Some(p) = file {
        return from_file(p);
    }
    if let Some(c) = command {
        return from_command(c);
    }
    if let Ok(p) = std::env::var("LETHE_PASSWORD") {
        if !p.is_empty() {
            return Ok(Zeroizing::new(p.into_bytes()));
        }
    }
    if can_prompt() {
        return prompt_hidden(&format!("{what}: "));
    }
    Err(anyhow!(
        "no passphrase: give --password-file, --password-command, LETHE_PASSWORD_FILE, LETHE_PASSWORD_COMMAND or LETHE_PASSWORD (or run on a terminal to be asked)"
    ))
}

/// A new passphrase: from a file, or asked twice on a terminal.
pub fn new_passphrase(file: Option<&Path>, what: &str) -> Result<Secret> {
    match file {
        Some(p) => from_file(p),
        None if can_prompt() => prompt_new(what),
        None => {
            bail!("no new passphrase: give --new-password-file (or run on a terminal to be asked)")
        }
    }
}

/// The recovery key: from a file (`-`: stdin), or asked on a terminal.
pub fn recovery_key(file: Option<&Path>) -> Result<Secret> {
    match file {
        Some(p) if p == Path::new("-") => {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the recovery key from stdin")?;
            Ok(Zeroizing::new(line.trim().as_bytes().to_vec()))
        }
        Some(p) => from_file(p),
        None if can_prompt() => prompt_hidden("recovery key (as printed by `init`): "),
        None => bail!("no recovery key: give --recovery-key-file FILE (or - for stdin), or run on a terminal to be asked"),
    }
}
