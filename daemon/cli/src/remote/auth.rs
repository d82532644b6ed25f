//! `lethe --server … login | reauth | logout`.
//!
//! The password comes from `--password-file` or a prompt that does not
//! echo; the second factor (a TOTP code, or a recovery code) is read as one
//! line from stdin, so a script can pipe it in.

use super::client::{Remote, RemoteError};
use super::session::SavedSession;
use crate::exit;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The user name (default: $USER).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Read the password from this file (first line) instead of asking.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ReauthArgs {
    /// Read the password from this file (first line) instead of asking.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

fn password(file: Option<&Path>) -> Result<Zeroizing<String>> {
    if let Some(f) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the password file {}", f.display()))?,
        );
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            bail!("the password file {} is empty", f.display());
        }
        return Ok(Zeroizing::new(line.to_string()));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for the password on: give --password-file FILE");
    }
    crate::cmd_backup::secret::read_hidden_line("password: ", "the password")
}

fn second_factor() -> Result<Zeroizing<String>> {
    eprint!("second factor (authenticator code, or a recovery code): ");
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the second factor")?;
    let code = line.trim();
    if code.is_empty() {
        bail!("no second factor was given");
    }
    Ok(Zeroizing::new(code.to_string()))
}

pub fn login(r: &Remote, args: &LoginArgs) -> Result<u8> {
    let user = match &args.user {
        Some(u) => u.clone(),
        None => std::env::var("USER").context("no --user given and $USER is not set")?,
    };
    let pw = password(args.password_file.as_deref())?;
    let code = second_factor()?;
    let cookie = r.login(&user, &pw, &code)?;
    let path = r.sessions().save(&SavedSession {
        server: r.server(),
        user: user.clone(),
        cookie,
    })?;
    eprintln!(
        "lethe: logged in to {} as {user}; the session is saved in {} and ends after the \
         appliance's idle timeout without a user action (progress polling does not count)",
        r.server(),
        path.display()
    );
    Ok(exit::OK)
}

/// Password and second factor again, for a destructive action.
pub fn reauth_now(r: &Remote, password_file: Option<&Path>) -> Result<String> {
    if !r.has_session() {
        bail!(
            "re-authentication needs a session: run `lethe --server {} login` (an API token \
             cannot start destructive actions)",
            r.server()
        );
    }
    let pw = password(password_file)?;
    let code = second_factor()?;
    let v: serde_json::Value = r.post(
        "/api/v1/reauth",
        &serde_json::json!({"password": pw.as_str(), "totp": code.as_str()}),
    )?;
    Ok(v["reauth_until"].as_str().unwrap_or("?").to_string())
}

pub fn reauth(r: &Remote, args: &ReauthArgs) -> Result<u8> {
    let until = reauth_now(r, args.password_file.as_deref())?;
    eprintln!(
        "lethe: re-authenticated on {}: destructive actions are allowed until {until}",
        r.server()
    );
    Ok(exit::OK)
}

pub fn logout(r: &Remote) -> Result<u8> {
    if !r.has_session() {
        eprintln!("lethe: not logged in to {}", r.server());
        return Ok(exit::OK);
    }
    let res = r.post_unit("/api/v1/logout", &serde_json::json!({}));
    r.sessions().forget(&r.server());
    match res {
        Ok(_) | Err(RemoteError::SessionEnded { .. }) => {
            eprintln!("lethe: logged out of {}", r.server());
            Ok(exit::OK)
        }
        Err(e) => Err(e.into()),
    }
}
