//! Everything a client sends to the identity core: user names, passwords,
//! second-factor codes, session cookies, API tokens, and stored PHC strings.
//! Parsers must never panic; a login with arbitrary fields must fail cleanly.
#![no_main]

use lethe_auth::password::PasswordHash;
use lethe_auth::session::SessionToken;
use lethe_auth::token::PresentedToken;
use lethe_auth::{
    AuthConfig, Authenticator, LoginRequest, OsEntropy, SecretString, SqliteStore, Timestamp,
    UserName,
};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    static AUTH: RefCell<Authenticator<SqliteStore, OsEntropy>> = RefCell::new(
        Authenticator::new(
            SqliteStore::open_in_memory().expect("in-memory store"),
            OsEntropy,
            AuthConfig::for_tests(),
            Timestamp::from_unix_secs(1_800_000_000),
        )
        .expect("authenticator"),
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = UserName::parse(s) {
        assert_eq!(UserName::parse(n.as_str()).ok(), Some(n));
    }
    if let Some(t) = SessionToken::parse(s) {
        assert_eq!(t.expose(), s);
    }
    let _ = PresentedToken::parse(s);
    let _ = lethe_auth::totp::parse_code(s, 6);
    let _ = lethe_auth::recovery::parse_code(s);
    let _ = PasswordHash::from_phc(s.to_owned());
    // split the input into the three login fields
    let mut parts = s.splitn(3, '\n');
    let (user, pw, code) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let pw = SecretString::from(pw);
    let code = SecretString::from(code);
    AUTH.with(|a| {
        let mut a = a.borrow_mut();
        let r = a.login(
            &LoginRequest { username: user, password: &pw, second_factor: &code, source: None },
            Timestamp::from_unix_secs(1_800_000_000),
        );
        assert!(r.is_err(), "no user exists, nothing may log in");
        a.take_events();
    });
});
