//! From the file as written ([`crate::raw`]) to the checked [`Config`]:
//! defaults, ranges, and the rules that span several keys (unique bay names
//! and LEDs, overlapping match entries, the idle-timeout clamp, auto bays
//! that must verify and have an operator of record...).

use crate::bay::{Bay, MatchRule, Policy, WipeDefaults};
use crate::diag::{explain_unknown, Diagnostic, Level as DiagLevel};
use crate::model::*;
use crate::raw::*;
use lethe_alert::{Label, RetryPolicy, Security};
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// Collects diagnostics against the source text.
pub(crate) struct Ctx<'a> {
    pub src: &'a str,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub fn new(src: &'a str) -> Self {
        Ctx {
            src,
            diags: Vec::new(),
        }
    }

    fn push(&mut self, level: DiagLevel, span: Range<usize>, msg: String, help: Option<String>) {
        let mut d = Diagnostic::new(level, self.src, span, msg);
        d.help = help;
        self.diags.push(d);
    }

    pub fn error(&mut self, span: Range<usize>, msg: impl Into<String>, help: Option<String>) {
        self.push(DiagLevel::Error, span, msg.into(), help);
    }

    pub fn warn(&mut self, span: Range<usize>, msg: impl Into<String>, help: Option<String>) {
        self.push(DiagLevel::Warning, span, msg.into(), help);
    }

    /// A parse or type error from toml, with the nearest valid key or value
    /// suggested for an unknown one (`extra`: valid keys serde did not list).
    pub fn toml_error(&mut self, e: &toml::de::Error, extra: &[&str]) {
        self.toml_error_at(e, 0..0, extra);
    }

    /// As [`Ctx::toml_error`], at `fallback` when toml gives no position.
    pub fn toml_error_at(&mut self, e: &toml::de::Error, fallback: Range<usize>, extra: &[&str]) {
        let (msg, help) = explain_unknown(e.message(), extra);
        self.push(DiagLevel::Error, e.span().unwrap_or(fallback), msg, help);
    }

    pub fn line_of(&self, offset: usize) -> usize {
        self.src[..offset.min(self.src.len())].matches('\n').count() + 1
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(|d| d.level == DiagLevel::Error)
    }
}

/// Idle timeout when none is configured.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(10 * 60);
/// Absolute session lifetime when none is configured.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Longest absolute session lifetime.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Highest LED index (the controller's status word has bay LEDs at bits 1..=31).
pub const MAX_LED: u8 = 30;
/// Most overwrite passes accepted (Gutmann's 35).
pub const MAX_PASSES: u32 = 35;
/// Channel timeout when none is configured.
pub const DEFAULT_CHANNEL_TIMEOUT: Duration = Duration::from_secs(10);
/// OWASP's Argon2id floor (m = 19 MiB, t = 2, p = 1).
const OWASP_MIN_KIB: u32 = 19 * 1024;

/// A short text that goes on certificates: trimmed, 1–200 characters, no control characters.
fn text(ctx: &mut Ctx, v: Option<Spanned<String>>, what: &str) -> Option<String> {
    let v = v?;
    let s = v.get_ref().trim();
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        ctx.error(
            v.span(),
            format!("{what} must be 1 to 200 characters without control characters"),
            None,
        );
        return None;
    }
    Some(s.to_string())
}

fn operator(
    ctx: &mut Ctx,
    id: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
) -> Option<Operator> {
    let name_span = name.as_ref().map(|n| n.span());
    let id = text(ctx, id, "operator_id");
    let name = text(ctx, name, "operator_name");
    match (id, name_span) {
        (Some(id), _) => Some(Operator { id, name }),
        (None, Some(span)) if name.is_some() => {
            ctx.error(
                span,
                "operator_name without operator_id",
                Some("certificates record the operator's id; add operator_id".into()),
            );
            None
        }
        _ => None,
    }
}

fn dur(
    ctx: &mut Ctx,
    v: Option<Spanned<Dur>>,
    default: Duration,
    what: &str,
) -> (Duration, Option<Range<usize>>) {
    match v {
        None => (default, None),
        Some(v) if v.get_ref().0.is_zero() => {
            ctx.error(v.span(), format!("{what} must be longer than zero"), None);
            (default, Some(v.span()))
        }
        Some(v) => (v.get_ref().0, Some(v.span())),
    }
}

fn at_most(
    ctx: &mut Ctx,
    d: (Duration, Option<Range<usize>>),
    max: Duration,
    what: &str,
) -> Duration {
    if let (true, Some(span)) = (d.0 > max, d.1) {
        ctx.error(
            span,
            format!("{what} may be at most {}", humantime::format_duration(max)),
            None,
        );
    }
    d.0
}

pub(crate) fn build(raw: RawConfig, backups: Vec<BackupJob>, ctx: &mut Ctx) -> Config {
    let site = site(ctx, raw.site);
    let bays = bays(ctx, raw.bay, &site);
    let alerts = alerts(ctx, raw.alerts);
    let breakglass = breakglass(ctx, raw.breakglass, &alerts);
    let audit = audit(ctx, raw.audit, &alerts);
    Config {
        server: Server {
            listen: raw
                .server
                .listen
                .unwrap_or_else(|| "0.0.0.0:8443".parse().unwrap_or_else(|_| unreachable!())),
        },
        bays,
        session: session(ctx, raw.session),
        auth: auth(ctx, raw.auth),
        tls: tls(ctx, raw.tls),
        controller: controller(ctx, raw.controller),
        backups,
        alerts,
        audit,
        breakglass,
        site,
    }
}

fn site(ctx: &mut Ctx, s: RawSite) -> Site {
    Site {
        location: text(ctx, s.location, "location"),
        media_source: text(ctx, s.media_source, "media_source"),
        operator: operator(ctx, s.operator_id, s.operator_name),
        require_operator: s.require_operator.unwrap_or(true),
    }
}

fn bays(ctx: &mut Ctx, raw: Vec<Spanned<RawBay>>, site: &Site) -> Vec<Bay> {
    let mut names: BTreeMap<Label, usize> = BTreeMap::new();
    let mut leds: BTreeMap<u8, (Label, usize)> = BTreeMap::new();
    let mut out: Vec<(Bay, Vec<Range<usize>>)> = Vec::new();
    for b in raw {
        let b = b.into_inner();
        let name = b.name.get_ref().clone();
        if let Some(first) = names.get(&name) {
            let line = ctx.line_of(*first);
            ctx.error(
                b.name.span(),
                format!("bay name `{name}` is used twice"),
                Some(format!("first used on line {line}")),
            );
        } else {
            names.insert(name.clone(), b.name.span().start);
        }
        let led = b.led.map(|l| {
            let (n, span) = (*l.get_ref(), l.span());
            if n > MAX_LED {
                ctx.error(
                    span.clone(),
                    format!("LED {n} does not exist: the controller has bay LEDs 0 to {MAX_LED}"),
                    None,
                );
            } else if let Some((other, at)) = leds.get(&n) {
                let line = ctx.line_of(*at);
                ctx.error(
                    span.clone(),
                    format!("LED {n} is already bay `{other}`'s"),
                    Some(format!("on line {line}")),
                );
            } else {
                leds.insert(n, (name.clone(), span.start));
            }
            n
        });
        let (rules_span, entries) = (b.rules.span(), b.rules.into_inner());
        if entries.is_empty() {
            ctx.error(
                rules_span,
                format!("bay `{name}` has no match entry"),
                Some("add a /dev/disk/by-path/… glob, transport:NAME or loop:GLOB".into()),
            );
        }
        let mut rules = Vec::new();
        let mut spans = Vec::new();
        for e in entries {
            match MatchRule::parse(e.get_ref()) {
                Ok(r) => {
                    rules.push(r);
                    spans.push(e.span());
                }
                Err(err) => ctx.error(e.span(), err.message, err.help),
            }
        }
        let passes = match b.passes {
            Some(p) if *p.get_ref() == 0 || *p.get_ref() > MAX_PASSES => {
                ctx.error(p.span(), format!("passes must be 1 to {MAX_PASSES}"), None);
                1
            }
            Some(p) => *p.get_ref(),
            None => 1,
        };
        let policy = match b.policy.get_ref() {
            RawPolicy::Ask => Policy::Ask,
            RawPolicy::Auto => Policy::Auto,
        };
        let verify = match b.verify {
            Some(v) => {
                let mode = v.get_ref().0;
                if policy == Policy::Auto && mode == lethe_core::plan::VerifyMode::Off {
                    ctx.error(
                        v.span(),
                        format!("auto bay `{name}` must verify: a job without read-back is never certified"),
                        Some("use verify = \"full\" or \"sample:PERCENT\", or policy = \"ask\"".into()),
                    );
                }
                mode
            }
            None => lethe_core::plan::VerifyMode::Full,
        };
        let op = operator(ctx, b.operator_id, b.operator_name).or_else(|| site.operator.clone());
        if policy == Policy::Auto && op.is_none() && site.require_operator {
            ctx.error(
                b.policy.span(),
                format!("auto bay `{name}` starts jobs with nobody at the console: it needs an operator of record"),
                Some("set operator_id in this bay or in [site], or set [site] require_operator = false".into()),
            );
        }
        let wipe = WipeDefaults {
            level: b.level.unwrap_or_default(),
            method: b.method.unwrap_or_default(),
            pattern: b
                .pattern
                .map_or(lethe_core::pattern::Pattern::Random, |p| p.0),
            passes,
            verify,
            destination: b.destination,
            operator: op,
            location: text(ctx, b.location, "location").or_else(|| site.location.clone()),
            media_source: text(ctx, b.media_source, "media_source")
                .or_else(|| site.media_source.clone()),
        };
        out.push((
            Bay {
                name,
                rules,
                led,
                policy,
                wipe,
            },
            spans,
        ));
    }
    // Overlaps: warn at the later entry; the earlier bay takes such drives.
    for (j, (later, later_spans)) in out.iter().enumerate() {
        for (earlier, _) in &out[..j] {
            for (r, span) in later.rules.iter().zip(later_spans) {
                if let Some(o) = earlier.rules.iter().find(|e| e.overlaps(r)) {
                    let msg = format!(
                        "match entry \"{r}\" of bay `{}` overlaps \"{o}\" of bay `{}`",
                        later.name, earlier.name
                    );
                    let help = format!(
                        "a drive matching both goes to `{}`, the first in the file",
                        earlier.name
                    );
                    ctx.warn(span.clone(), msg, Some(help));
                }
            }
        }
    }
    out.into_iter().map(|(b, _)| b).collect()
}

fn session(ctx: &mut Ctx, s: RawSession) -> Session {
    let (mut idle, idle_span) = dur(ctx, s.idle_timeout, DEFAULT_IDLE, "idle_timeout");
    if let (true, Some(span)) = (idle > MAX_IDLE, idle_span) {
        ctx.warn(
            span,
            format!(
                "idle_timeout {} is above the 15 minute maximum: 15m is used",
                humantime::format_duration(idle)
            ),
            Some(
                "automatic logoff never waits more than 15 minutes (HIPAA §164.312(a)(2)(iii))"
                    .into(),
            ),
        );
        idle = MAX_IDLE;
    }
    let life = dur(
        ctx,
        s.absolute_lifetime,
        DEFAULT_LIFETIME,
        "absolute_lifetime",
    );
    let life_span = life.1.clone();
    let absolute_lifetime = at_most(ctx, life, MAX_LIFETIME, "absolute_lifetime");
    if let (true, Some(span)) = (absolute_lifetime < idle, life_span) {
        ctx.error(span, "absolute_lifetime is shorter than idle_timeout", None);
    }
    Session {
        idle_timeout: idle,
        absolute_lifetime,
    }
}

fn auth(ctx: &mut Ctx, a: RawAuth) -> Auth {
    let get = |v: &Option<Spanned<u32>>, d: u32| v.as_ref().map_or(d, |v| *v.get_ref());
    let a2 = a.argon2.map(Spanned::into_inner).unwrap_or_default();
    let (m, t, p) = (
        get(&a2.memory_kib, 65_536),
        get(&a2.iterations, 3),
        get(&a2.parallelism, 1),
    );
    let span = |v: &Option<Spanned<u32>>| v.as_ref().map(|v| v.span());
    if let (true, Some(s)) = (!(1..=16).contains(&p), span(&a2.parallelism)) {
        ctx.error(s, "parallelism must be 1 to 16", None);
    }
    if let (true, Some(s)) = (t == 0, span(&a2.iterations)) {
        ctx.error(s, "iterations must be at least 1", None);
    }
    if let (true, Some(s)) = (
        m < 8 * p.max(1) || m > 4 * 1024 * 1024,
        span(&a2.memory_kib),
    ) {
        ctx.error(
            s,
            "memory_kib must be at least 8 × parallelism and at most 4194304 (4 GiB)",
            None,
        );
    }
    if m < OWASP_MIN_KIB || t < 2 {
        if let Some(s) = span(&a2.memory_kib).or(span(&a2.iterations)) {
            ctx.warn(
                s,
                "Argon2id parameters below OWASP's minimum (memory_kib = 19456, iterations = 2)",
                Some("weak hashing makes stolen password hashes cheap to crack".into()),
            );
        }
    }
    let pw = a.password;
    let min_length = get(&pw.min_length, 12);
    if let (true, Some(s)) = (!(8..=128).contains(&min_length), span(&pw.min_length)) {
        ctx.error(
            s,
            "min_length must be 8 to 128 (NIST SP 800-63B asks for at least 8)",
            None,
        );
    }
    let min_score = pw.min_score.as_ref().map_or(3, |v| *v.get_ref());
    if let (true, Some(v)) = (min_score > 4, &pw.min_score) {
        ctx.error(v.span(), "min_score is a zxcvbn score, 0 to 4", None);
    }
    let history = get(&pw.history, 5);
    if let (true, Some(s)) = (history > 50, span(&pw.history)) {
        ctx.error(s, "history may be at most 50", None);
    }
    Auth {
        argon2: Argon2Params {
            memory_kib: m,
            iterations: t,
            parallelism: p,
        },
        password: PasswordPolicy {
            min_length,
            min_score,
            history,
            deny_list: pw.deny_list,
        },
    }
}

fn tls(ctx: &mut Ctx, t: Option<Spanned<RawTls>>) -> Option<TlsFiles> {
    let t = t?;
    let span = t.span();
    match t.into_inner() {
        RawTls {
            cert: Some(cert),
            key: Some(key),
        } => Some(TlsFiles { cert, key }),
        RawTls {
            cert: None,
            key: None,
        } => None,
        _ => {
            ctx.error(
                span,
                "[tls] needs both cert and key (or neither, for a self-signed certificate)",
                None,
            );
            None
        }
    }
}

fn controller(ctx: &mut Ctx, c: Option<Spanned<RawController>>) -> Option<Controller> {
    let c = c?.into_inner();
    if c.port.get_ref().trim().is_empty() {
        ctx.error(
            c.port.span(),
            "port is empty",
            Some("e.g. port = \"/dev/ttyACM0\"".into()),
        );
    }
    let baud = match c.baud {
        Some(b) if *b.get_ref() == 0 => {
            ctx.error(b.span(), "baud must be above zero", None);
            115_200
        }
        Some(b) => *b.get_ref(),
        None => 115_200,
    };
    Some(Controller {
        port: c.port.into_inner().into(),
        baud,
    })
}

fn alerts(ctx: &mut Ctx, a: RawAlerts) -> Alerts {
    let d = RetryPolicy::default();
    let first = dur(ctx, a.retry_first, d.first, "retry_first");
    let max_delay = dur(ctx, a.retry_max_delay, d.max_delay, "retry_max_delay");
    if let (true, Some(span)) = (max_delay.0 < first.0, max_delay.1.clone()) {
        ctx.error(span, "retry_max_delay is shorter than retry_first", None);
    }
    let attempts = match a.retry_attempts {
        Some(n) if *n.get_ref() == 0 || *n.get_ref() > 100 => {
            ctx.error(n.span(), "retry_attempts must be 1 to 100", None);
            d.attempts
        }
        Some(n) => *n.get_ref(),
        None => d.attempts,
    };
    let mut names: BTreeMap<Label, usize> = BTreeMap::new();
    let mut unique = |ctx: &mut Ctx, name: &Spanned<Label>| {
        if let Some(first) = names.get(name.get_ref()) {
            let line = ctx.line_of(*first);
            ctx.error(
                name.span(),
                format!("alert channel name `{}` is used twice", name.get_ref()),
                Some(format!("first used on line {line}")),
            );
        } else {
            names.insert(name.get_ref().clone(), name.span().start);
        }
    };
    let mut webhooks = Vec::new();
    for w in a.webhook {
        let w = w.into_inner();
        unique(ctx, &w.name);
        if let Err(e) = lethe_alert::webhook::check_url(w.url.get_ref()) {
            ctx.error(w.url.span(), e.to_string(), None);
        }
        let timeout = dur(ctx, w.timeout, DEFAULT_CHANNEL_TIMEOUT, "timeout").0;
        webhooks.push(WebhookConf {
            name: w.name.into_inner(),
            url: w.url.into_inner(),
            secret_file: w.secret_file,
            ca_file: w.ca_file,
            timeout,
        });
    }
    let smtp = a.smtp.map(|s| {
        let span = s.span();
        let s = s.into_inner();
        let name = s.name.unwrap_or_else(|| {
            Spanned::new(
                span.clone(),
                Label::new("email").unwrap_or_else(|_| unreachable!()),
            )
        });
        unique(ctx, &name);
        let security = match s.security.unwrap_or(RawSecurity::Starttls) {
            RawSecurity::Starttls => Security::StartTls,
            RawSecurity::Tls => Security::Tls,
            RawSecurity::Plain => Security::Plain,
        };
        if let Err(e) = lethe_alert::email::parse_mailbox(s.from.get_ref()) {
            ctx.error(s.from.span(), e.to_string(), None);
        }
        for t in s.to.get_ref() {
            if let Err(e) = lethe_alert::email::parse_mailbox(t) {
                ctx.error(s.to.span(), e.to_string(), None);
            }
        }
        let timeout = dur(ctx, s.timeout, DEFAULT_CHANNEL_TIMEOUT, "timeout").0;
        let conf = SmtpConf {
            name: name.into_inner(),
            host: s.host.get_ref().clone(),
            port: s.port,
            security,
            username: s.username,
            password_file: s.password_file,
            from: s.from.into_inner(),
            to: s.to.get_ref().clone(),
            ca_file: s.ca_file,
            timeout,
        };
        // The rest of the relay's rules (loopback-only plain text, no login
        // without TLS, both or neither of username and password_file).
        let probe = crate::channels::settings(
            &conf,
            conf.password_file
                .as_ref()
                .map(|_| lethe_alert::Secret::new(Vec::new())),
        );
        match lethe_alert::email::check(&probe) {
            Err(lethe_alert::ChannelError::Address(_)) | Ok(()) => {}
            Err(lethe_alert::ChannelError::PlainToRemote(h)) => ctx.error(
                s.host.span(),
                format!(
                    "plain (unencrypted) SMTP to {h} refused: only a loopback relay may use it"
                ),
                Some("use security = \"starttls\" or \"tls\"".into()),
            ),
            Err(e) => ctx.error(span, e.to_string(), None),
        }
        conf
    });
    Alerts {
        host: a.host,
        retry: RetryPolicy {
            first: first.0,
            max_delay: max_delay.0,
            attempts,
        },
        webhooks,
        smtp,
    }
}

fn audit(ctx: &mut Ctx, a: RawAudit, alerts: &Alerts) -> Audit {
    let push = a.push.map(|p| {
        let table = p.span();
        let p = p.into_inner();
        if let Some(u) = &p.url {
            if let Err(e) = lethe_alert::webhook::check_url(u.get_ref()) {
                ctx.error(u.span(), e.to_string(), None);
            }
        }
        let syslog = p.syslog.as_ref().and_then(|s| {
            SyslogTarget::parse(s.get_ref())
                .map_err(|e| ctx.error(s.span(), e, None))
                .ok()
        });
        if p.url.is_none() && p.syslog.is_none() {
            ctx.error(
                table.clone(),
                "[audit.push] has no target",
                Some("set `url` (a webhook), `syslog` (a collector), or both".into()),
            );
        }
        // The secret and the CA are the webhook's: set without one, they
        // would be silently unused.
        for (what, span) in [
            ("secret_file", p.secret_file.as_ref().map(|s| s.span())),
            ("ca_file", p.ca_file.as_ref().map(|s| s.span())),
        ] {
            if let (Some(span), None) = (span, &p.url) {
                ctx.error(span, format!("{what} is for the webhook, and no `url` is set"), None);
            }
        }
        let day = Duration::from_secs(86_400);
        let every = dur(ctx, p.every, Duration::from_secs(60), "every");
        let every = at_most(ctx, every, day, "every");
        let timeout = dur(ctx, p.timeout, Duration::from_secs(10), "timeout");
        let timeout = at_most(ctx, timeout, Duration::from_secs(300), "timeout");
        let retry_first = dur(ctx, p.retry_first, Duration::from_secs(10), "retry_first");
        let retry_first = at_most(ctx, retry_first, day, "retry_first");
        let max = dur(ctx, p.retry_max_delay, Duration::from_secs(900), "retry_max_delay");
        if let (true, Some(span)) = (max.0 < retry_first, max.1.clone()) {
            ctx.error(span, "retry_max_delay must not be shorter than retry_first", None);
        }
        let retry_max_delay = at_most(ctx, max, day, "retry_max_delay");
        let alert_after = match p.alert_after {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > 1000 => {
                ctx.error(n.span(), "alert_after must be 1 to 1000", None);
                3
            }
            Some(n) => n.into_inner(),
            None => 3,
        };
        if alerts.webhooks.is_empty() && alerts.smtp.is_none() {
            ctx.warn(
                table,
                "a checkpoint push that keeps failing is told through [alerts], and no alert channel is configured",
                Some("add an [[alerts.webhook]] or [alerts.smtp]".into()),
            );
        }
        AuditPush {
            name: p
                .name
                .unwrap_or_else(|| Label::new("audit-push").unwrap_or_else(|_| unreachable!())),
            url: p.url.map(Spanned::into_inner),
            syslog,
            secret_file: p.secret_file.map(Spanned::into_inner),
            ca_file: p.ca_file.map(Spanned::into_inner),
            every,
            timeout,
            retry_first,
            retry_max_delay,
            alert_after,
        }
    });
    Audit { push }
}

fn breakglass(ctx: &mut Ctx, b: RawBreakglass, alerts: &Alerts) -> BreakGlass {
    let mut seen = BTreeMap::new();
    for a in &b.approvers {
        if seen.insert(a.get_ref().clone(), ()).is_some() {
            ctx.error(
                a.span(),
                format!("approver `{}` is listed twice", a.get_ref()),
                None,
            );
        }
    }
    if let Some(first) = b.approvers.first() {
        if alerts.webhooks.is_empty() && alerts.smtp.is_none() {
            ctx.warn(
                first.span(),
                "break-glass approvers are told through [alerts], and no alert channel is configured",
                Some("add an [[alerts.webhook]] or [alerts.smtp]".into()),
            );
        }
    }
    let wait = dur(ctx, b.wait, Duration::from_secs(15 * 60), "wait");
    let wait = at_most(ctx, wait, Duration::from_secs(24 * 3600), "wait");
    let lifetime = dur(ctx, b.lifetime, Duration::from_secs(3600), "lifetime");
    let lifetime = at_most(ctx, lifetime, Duration::from_secs(8 * 3600), "lifetime");
    BreakGlass {
        approvers: b.approvers.into_iter().map(Spanned::into_inner).collect(),
        wait,
        lifetime,
    }
}
