//! From `[alerts]` to live alert channels: reads the secret, password and CA
//! files the configuration names (in the privileged worker, which alone may
//! read them) and builds `lethe-alert` channels.

use crate::diag::ConfigError;
use crate::model::{Alerts, SmtpConf};
use lethe_alert::{Channel, Email, Secret, SmtpSettings, Webhook};
use std::path::Path;

/// The relay settings of `conf` with `password` (read from `password_file`).
pub(crate) fn settings(conf: &SmtpConf, password: Option<Secret>) -> SmtpSettings {
    SmtpSettings {
        host: conf.host.clone(),
        port: conf.port,
        security: conf.security,
        username: conf.username.clone(),
        password,
        from: conf.from.clone(),
        to: conf.to.clone(),
        ca_pem: None,
        timeout: conf.timeout,
    }
}

fn secret(what: &'static str, path: &Path) -> Result<Secret, ConfigError> {
    let s = Secret::from_file(path).map_err(|e| ConfigError::Referenced {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if s.expose().is_empty() {
        return Err(ConfigError::Referenced {
            what,
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    Ok(s)
}

fn pem(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::Referenced {
        what: "CA file",
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn channel_error(name: &lethe_alert::Label, e: lethe_alert::ChannelError) -> ConfigError {
    ConfigError::Channel {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

impl Alerts {
    /// Build every configured channel, reading the files it names.
    pub fn channels(&self) -> Result<Vec<Channel>, ConfigError> {
        let mut out = Vec::new();
        for w in &self.webhooks {
            let key = w
                .secret_file
                .as_deref()
                .map(|p| secret("webhook secret_file", p))
                .transpose()?;
            let ca = w.ca_file.as_deref().map(pem).transpose()?;
            let hook = Webhook::new(w.name.clone(), &w.url, key, ca.as_deref(), w.timeout)
                .map_err(|e| channel_error(&w.name, e))?;
            out.push(Channel::Webhook(hook));
        }
        if let Some(s) = &self.smtp {
            let password = s
                .password_file
                .as_deref()
                .map(|p| secret("SMTP password_file", p))
                .transpose()?;
            let mut settings = settings(s, password);
            settings.ca_pem = s.ca_file.as_deref().map(pem).transpose()?;
            let mail =
                Email::new(s.name.clone(), settings).map_err(|e| channel_error(&s.name, e))?;
            out.push(Channel::Email(mail));
        }
        Ok(out)
    }
}

impl crate::model::AuditPush {
    /// The webhook checkpoints are pushed to, if one is set, reading the
    /// secret and CA files it names (in the worker).
    pub fn webhook(&self) -> Result<Option<Webhook>, ConfigError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let key = self
            .secret_file
            .as_deref()
            .map(|p| secret("audit push secret_file", p))
            .transpose()?;
        let ca = self.ca_file.as_deref().map(pem).transpose()?;
        Webhook::new(self.name.clone(), url, key, ca.as_deref(), self.timeout)
            .map(Some)
            .map_err(|e| channel_error(&self.name, e))
    }
}
