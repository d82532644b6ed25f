//! `lethe user`: the appliance's user accounts (HTTPS API and console),
//! managed by root through the running daemon's admin socket
//! (`RUNTIME/admin.sock`). Reference: `docs/users.md`.
//!
//! What a person must see once (the `otpauth://` URI, its QR code, a
//! one-time password, the recovery codes) goes to stdout, so that it lands
//! wherever stdout goes; the explanations around it go to stderr. With
//! `--json` the last stdout line is one JSON object, errors included.

use crate::admin::{AdminClient, AdminError};
use crate::{exit, UsageError};
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use lethe_wire::paths::DEFAULT_RUNTIME_DIR;
use lethe_wire::{
    AdminReply, AdminRequest, Enrolment, RoleName, Secret, UserChange, UserView, MAX_NAME,
    MAX_SECRET,
};
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Args)]
pub struct UserArgs {
    /// The daemon's runtime directory (where its admin socket is).
    #[arg(long, global = true, env = "LETHE_RUNTIME_DIR", default_value = DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Print one JSON object as the last line on stdout (also on errors:
    /// {"result":…,"error":{"code","message"},"exit_code":…}).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: UserCmd,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user: prints the authenticator URI (and QR code on a
    /// terminal), the recovery codes and, without --password-file, a
    /// one-time password. Shown once.
    Add {
        /// The login name (lowercase letters, digits, '.', '_', '-').
        name: String,
        /// The user's role.
        #[arg(long, value_enum)]
        role: Role,
        /// Read the password from the first line of this file ('-': stdin).
        /// Without it the user gets a one-time password to change at the
        /// first login.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Give the emergency grant: the user may ask for break-glass access.
        #[arg(long)]
        emergency: bool,
    },
    /// List the users: role, grants, locks, recovery codes left, sessions.
    List,
    /// Disable a user: no login; their sessions end.
    Disable {
        /// The login name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The login name.
        name: String,
    },
    /// Remove a user (never the last enabled admin).
    Remove {
        /// The login name.
        name: String,
    },
    /// Give a user another role; their sessions end.
    Role {
        /// The login name.
        name: String,
        /// The new role.
        #[arg(value_enum)]
        role: Role,
    },
    /// Give (on) or take (off) the emergency grant.
    Emergency {
        /// The login name.
        name: String,
        /// on: may ask for break-glass access; off: may not.
        #[arg(value_enum)]
        grant: OnOff,
    },
    /// Lift the soft lock after failed logins.
    Unlock {
        /// The login name.
        name: String,
    },
    /// A new authenticator secret and new recovery codes (a lost phone):
    /// prints them like `add`; the old ones stop working.
    #[command(name = "reset-2fa")]
    Reset2fa {
        /// The login name.
        name: String,
    },
    /// Set a user's password: from --password-file, or asked twice on the
    /// terminal without echo.
    Passwd {
        /// The login name.
        name: String,
        /// Read the new password from the first line of this file ('-':
        /// stdin).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Break-glass recovery at the console (every admin locked out):
    /// enable the user, lift the lock, end their sessions, a one-time
    /// password and a new second factor; made an admin when no other
    /// enabled admin exists. Audited and alerted.
    Recover {
        /// The login name.
        name: String,
    },
}

/// A role on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum Role {
    /// Users, configuration, keys, restores onto devices.
    Admin,
    /// Wipes, purges, degauss cycles, backups, drills.
    Operator,
    /// Reads certificates, reports, the audit log, backup history.
    Auditor,
}

impl From<Role> for RoleName {
    fn from(r: Role) -> RoleName {
        match r {
            Role::Admin => RoleName::Admin,
            Role::Operator => RoleName::Operator,
            Role::Auditor => RoleName::Auditor,
        }
    }
}

/// `on` or `off`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    /// Granted.
    On,
    /// Not granted.
    Off,
}

fn role_name(r: RoleName) -> &'static str {
    match r {
        RoleName::Admin => "admin",
        RoleName::Operator => "operator",
        RoleName::Auditor => "auditor",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The `--json` ending of a failed command.
#[derive(Serialize)]
struct ErrorEnding<'a> {
    result: &'a str,
    error: ErrorBody<'a>,
    exit_code: u8,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
}

/// `lethe user list --json`.
#[derive(Serialize)]
struct UsersOut<'a> {
    users: &'a [UserView],
}

/// `--json` of a change: the user as changed, none once removed.
#[derive(Serialize)]
struct UserOut<'a> {
    user: &'a Option<UserView>,
}

/// One line of JSON (the types here are plain data: this cannot fail).
fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| {
        serde_json::json!({"error": {"code": "internal", "message": e.to_string()}}).to_string()
    })
}

/// Something in the input (a password file, the terminal) that stops the
/// command before anything is asked of the daemon.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InputError(String);

pub fn run(args: &UserArgs) -> Result<u8> {
    match run_inner(args) {
        Ok(()) => Ok(exit::OK),
        Err(e) => Ok(report_error(&e, args.json)),
    }
}

/// Print `e` (stderr; under `--json` also the JSON ending on stdout) and
/// return the exit code: [`exit::USAGE`] for a command-line mistake,
/// [`exit::ERROR`] for everything else (a refusal by the daemon, a daemon
/// that is not running, not root, a bad password file).
fn report_error(e: &anyhow::Error, json: bool) -> u8 {
    let (code, result, exit_code) = if let Some(a) = e.downcast_ref::<AdminError>() {
        let result = if a.is_refusal() { "refused" } else { "error" };
        (a.code(), result, exit::ERROR)
    } else if e.downcast_ref::<UsageError>().is_some() {
        ("usage_error".to_owned(), "usage_error", exit::USAGE)
    } else if e.downcast_ref::<InputError>().is_some() {
        ("bad_input".to_owned(), "refused", exit::ERROR)
    } else {
        ("error".to_owned(), "error", exit::ERROR)
    };
    eprintln!("lethe: error: {e:#}");
    if exit_code == exit::USAGE {
        eprintln!("For more information, try '--help'.");
    }
    if json {
        let ending = ErrorEnding {
            result,
            error: ErrorBody {
                code: &code,
                message: format!("{e:#}"),
            },
            exit_code,
        };
        outln!("{}", to_json(&ending));
    }
    exit_code
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(UsageError(format!(
            "a user name is 1 to {MAX_NAME} bytes; this one is {}",
            name.len()
        ))
        .into());
    }
    Ok(())
}

/// The first line of `path` ('-': stdin), without its line ending.
fn password_from(path: &Path) -> Result<Secret> {
    let what = if path == Path::new("-") {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    };
    // No more than the longest password and its line ending: a file
    // named by mistake (a disk image, /dev/zero) is not read whole.
    let limit = MAX_SECRET as u64 + 2;
    let mut text = Zeroizing::new(String::new());
    let read = if path == Path::new("-") {
        std::io::stdin().lock().take(limit).read_line(&mut text)
    } else {
        std::fs::File::open(path)
            .and_then(|f| std::io::BufReader::new(f.take(limit)).read_line(&mut text))
    };
    read.map_err(|e| InputError(format!("reading the password from {what}: {e}")))?;
    let line = text.split('\n').next().unwrap_or_default();
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(InputError(format!(
            "{what} is empty (the password is its first line): nothing was changed"
        ))
        .into());
    }
    if line.len() > MAX_SECRET {
        return Err(InputError(format!(
            "the password in {what} is longer than {MAX_SECRET} bytes: nothing was changed"
        ))
        .into());
    }
    Ok(Secret(line.to_owned()))
}

/// One line from the terminal without echo, as `lethe backup` asks for a
/// passphrase.
fn prompt_hidden(prompt: &str) -> Result<Zeroizing<String>> {
    crate::cmd_backup::secret::read_hidden_line(prompt, "the password")
}

/// A new password asked twice on the terminal, without echo.
fn password_prompt(name: &str) -> Result<Secret> {
    let input = |e: anyhow::Error| InputError(format!("{e:#}"));
    let a = prompt_hidden(&format!("New password of {name}: ")).map_err(input)?;
    if a.is_empty() {
        return Err(InputError("empty password: nothing was changed".into()).into());
    }
    let b = prompt_hidden("The same password again: ").map_err(input)?;
    if a != b {
        return Err(InputError("the two entries differ: nothing was changed".into()).into());
    }
    if a.len() > MAX_SECRET {
        return Err(InputError(format!(
            "the password is longer than {MAX_SECRET} bytes: nothing was changed"
        ))
        .into());
    }
    Ok(Secret(a.as_str().to_owned()))
}

fn connect(args: &UserArgs) -> Result<AdminClient> {
    Ok(AdminClient::connect(&args.runtime_dir)?)
}

fn unexpected(reply: &AdminReply) -> anyhow::Error {
    anyhow!("lethe serve answered with an unexpected reply: {reply:?}")
}

fn run_inner(args: &UserArgs) -> Result<()> {
    let json = args.json;
    match &args.cmd {
        UserCmd::Add {
            name,
            role,
            password_file,
            emergency,
        } => {
            check_name(name)?;
            let password = password_file.as_deref().map(password_from).transpose()?;
            let mut c = connect(args)?;
            let reply = c.request(AdminRequest::UserAdd {
                name: name.clone(),
                role: (*role).into(),
                password,
                emergency: *emergency,
            })?;
            let AdminReply::Enrolled { enrolment } = reply else {
                return Err(unexpected(&reply));
            };
            if !json {
                let u = &enrolment.user;
                eprintln!(
                    "Added user {} (role {}{}).",
                    u.name,
                    role_name(u.role),
                    if u.emergency { ", emergency grant" } else { "" }
                );
            }
            show_enrolment(&enrolment, json)
        }
        UserCmd::List => {
            let mut c = connect(args)?;
            let reply = c.request(AdminRequest::Users {})?;
            let AdminReply::Users { users } = reply else {
                return Err(unexpected(&reply));
            };
            if json {
                outln!("{}", to_json(&UsersOut { users: &users }));
            } else {
                print_table(&users);
            }
            Ok(())
        }
        UserCmd::Disable { name } => change(
            args,
            name,
            UserChange::Disable {},
            &format!("{name} is disabled: no login; their sessions ended."),
        ),
        UserCmd::Enable { name } => change(
            args,
            name,
            UserChange::Enable {},
            &format!("{name} is enabled."),
        ),
        UserCmd::Remove { name } => change(
            args,
            name,
            UserChange::Remove {},
            &format!("{name} was removed; their sessions ended."),
        ),
        UserCmd::Role { name, role } => change(
            args,
            name,
            UserChange::SetRole {
                role: (*role).into(),
            },
            &format!(
                "{name} is now {}; their sessions ended.",
                role_name((*role).into())
            ),
        ),
        UserCmd::Emergency { name, grant } => change(
            args,
            name,
            UserChange::SetEmergency {
                granted: *grant == OnOff::On,
            },
            &if *grant == OnOff::On {
                format!("{name} holds the emergency grant (may ask for break-glass access).")
            } else {
                format!("{name} no longer holds the emergency grant.")
            },
        ),
        UserCmd::Unlock { name } => change(
            args,
            name,
            UserChange::Unlock {},
            &format!("{name} is unlocked."),
        ),
        UserCmd::Reset2fa { name } => {
            check_name(name)?;
            let mut c = connect(args)?;
            let reply = c.request(AdminRequest::UserChange {
                name: name.clone(),
                change: UserChange::ResetSecondFactor {},
            })?;
            let AdminReply::Enrolled { enrolment } = reply else {
                return Err(unexpected(&reply));
            };
            if !json {
                eprintln!(
                    "New second factor for {}: the old authenticator entry and recovery codes no longer work.",
                    enrolment.user.name
                );
            }
            show_enrolment(&enrolment, json)
        }
        UserCmd::Passwd {
            name,
            password_file,
        } => {
            check_name(name)?;
            let from_file = password_file.as_deref().map(password_from).transpose()?;
            if from_file.is_none() && !std::io::stdin().is_terminal() {
                return Err(InputError(
                    "no password: give --password-file FILE ('-' for stdin), or run on a terminal to be asked"
                        .into(),
                )
                .into());
            }
            // Connect first: a daemon that is not running is said before
            // the password is typed twice.
            let mut c = connect(args)?;
            let password = match from_file {
                Some(p) => p,
                None => password_prompt(name)?,
            };
            let reply = c.request(AdminRequest::UserPassword {
                name: name.clone(),
                password,
            })?;
            let AdminReply::User { user } = reply else {
                return Err(unexpected(&reply));
            };
            if json {
                outln!("{}", to_json(&UserOut { user: &user }));
            } else {
                outln!("The password of {name} was changed; their sessions ended.");
                if user.as_ref().is_some_and(|u| u.must_change_password) {
                    outln!("{name} must change it at the next login.");
                }
            }
            Ok(())
        }
        UserCmd::Recover { name } => {
            check_name(name)?;
            let mut c = connect(args)?;
            eprintln!("{}", recover_banner(name));
            let reply = c.request(AdminRequest::UserRecover { name: name.clone() })?;
            let AdminReply::Enrolled { enrolment } = reply else {
                return Err(unexpected(&reply));
            };
            if !json {
                let u = &enrolment.user;
                eprintln!(
                    "{} is enabled and unlocked, role {}; their sessions ended. A one-time \
                     password and a new second factor replace the old ones.",
                    u.name,
                    role_name(u.role)
                );
            }
            show_enrolment(&enrolment, json)
        }
    }
}

fn recover_banner(name: &str) -> String {
    let bar = "!".repeat(72);
    format!(
        "{bar}\n\
         !!  BREAK-GLASS ACCOUNT RECOVERY of user {name}\n\
         !!  This is recorded in the audit log as a console recovery by root\n\
         !!  and ALERTED to every configured alert channel, now.\n\
         !!  Every other admin will see it. Use it only when no admin can log in.\n\
         {bar}"
    )
}

/// One change to a user, answered with the user as changed (none once
/// removed); `done` says what happened.
fn change(args: &UserArgs, name: &str, change: UserChange, done: &str) -> Result<()> {
    check_name(name)?;
    let mut c = connect(args)?;
    let reply = c.request(AdminRequest::UserChange {
        name: name.to_owned(),
        change,
    })?;
    let AdminReply::User { user } = reply else {
        return Err(unexpected(&reply));
    };
    if args.json {
        outln!("{}", to_json(&UserOut { user: &user }));
    } else {
        outln!("{done}");
    }
    Ok(())
}

/// What a new user, a second-factor reset or a recovery hands back: the
/// secrets on stdout (the QR code only on a terminal), the explanations on
/// stderr; under `--json` the enrolment as one JSON object.
fn show_enrolment(e: &Enrolment, json: bool) -> Result<()> {
    if json {
        outln!("{}", to_json(e));
        return Ok(());
    }
    let name = &e.user.name;
    let uri = e.otpauth_uri.expose();
    if !uri.is_empty() {
        let qr = std::io::stdout().is_terminal() && !e.qr_terminal.expose().is_empty();
        if qr {
            eprintln!("Authenticator app (TOTP) for {name}: scan the QR code, or enter this URI:");
        } else {
            eprintln!(
                "Authenticator app (TOTP) for {name}: enter this URI (on a terminal, a QR code follows it):"
            );
        }
        outln!("{uri}");
        if qr {
            outln!();
            outln!("{}", e.qr_terminal.expose().trim_end_matches('\n'));
            outln!();
        }
    }
    if let Some(p) = &e.one_time_password {
        eprintln!("One-time password: {name} must change it at the first login.");
        outln!("one-time password: {}", p.expose());
    }
    if !e.recovery_codes.is_empty() {
        eprintln!(
            "Recovery codes: each logs in once in place of an authenticator code (a lost phone)."
        );
        outln!("recovery codes:");
        for c in &e.recovery_codes {
            outln!("  {}", c.expose());
        }
    }
    eprintln!();
    eprintln!(
        "SHOWN ONCE: these cannot be shown again. Hand them to {name} and store them now \
         (the recovery codes offline, for example printed and sealed)."
    );
    if crate::out::closed() {
        bail!("stdout closed before the enrolment was written: reset the second factor (`lethe user reset-2fa {name}`) to get new ones");
    }
    Ok(())
}

fn print_table(users: &[UserView]) {
    if users.is_empty() {
        outln!("no users: add the first admin with `lethe user add NAME --role admin`");
        return;
    }
    let w = users
        .iter()
        .map(|u| u.name.len())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    outln!(
        "{:<w$}  {:<8}  {:<9}  {:<8}  {:<20}  {:<11}  {:>14}  {:>8}",
        "NAME",
        "ROLE",
        "EMERGENCY",
        "DISABLED",
        "LOCKED UNTIL",
        "MUST CHANGE",
        "RECOVERY CODES",
        "SESSIONS"
    );
    for u in users {
        outln!(
            "{:<w$}  {:<8}  {:<9}  {:<8}  {:<20}  {:<11}  {:>14}  {:>8}",
            u.name,
            role_name(u.role),
            yes_no(u.emergency),
            yes_no(u.disabled),
            u.locked_until.as_deref().unwrap_or("-"),
            if u.must_change_password {
                "password"
            } else {
                "-"
            },
            u.recovery_codes_left,
            u.sessions
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_gives_its_first_line_and_refuses_an_empty_one() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("pw");
        std::fs::write(&p, "Tq7#vLp2 x\r\nsecond line\n").unwrap();
        assert_eq!(password_from(&p).unwrap().expose(), "Tq7#vLp2 x");
        std::fs::write(&p, "only\n").unwrap();
        assert_eq!(password_from(&p).unwrap().expose(), "only");
        for empty in ["", "\n", "\r\nsecond\n"] {
            std::fs::write(&p, empty).unwrap();
            let e = password_from(&p).unwrap_err();
            assert!(e.downcast_ref::<InputError>().is_some());
            assert!(e.to_string().contains("is empty"), "{e}");
        }
        std::fs::write(&p, "x".repeat(MAX_SECRET + 1)).unwrap();
        assert!(password_from(&p)
            .unwrap_err()
            .to_string()
            .contains("longer than"));
        let e = password_from(&t.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("reading the password from"), "{e}");
    }

    #[test]
    fn errors_are_classified_for_the_exit_code() {
        let refused = anyhow::Error::from(AdminError::Refused(lethe_wire::WireError::new(
            lethe_wire::ErrorCode::Conflict,
            "refused: this would leave no enabled admin",
        )));
        assert_eq!(report_error(&refused, false), exit::ERROR);
        let usage = anyhow::Error::from(UsageError("bad".into()));
        assert_eq!(report_error(&usage, false), exit::USAGE);
        let input = anyhow::Error::from(InputError("empty".into()));
        assert_eq!(report_error(&input, false), exit::ERROR);
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(MAX_NAME + 1)).is_err());
        assert!(check_name("alice").is_ok());
    }

    #[test]
    fn the_banner_names_the_user_and_says_audited_and_alerted() {
        let b = recover_banner("bob");
        assert!(b.contains("BREAK-GLASS"));
        assert!(b.contains("user bob"));
        assert!(b.contains("audit log"));
        assert!(b.contains("ALERTED"));
    }
}
