//! `lethe --server … status | jobs | cert`: the same renderings as on the
//! appliance, from the API's views.

use super::client::Remote;
use crate::cmd_cert::{CertArgs, CertCmd};
use crate::cmd_jobs::{list_table, JobsArgs, JobsCmd, ListRow};
use crate::exit;
use anyhow::{bail, Result};
use lethe_wire::{JobState, JobView, StatusView};

pub fn status(r: &Remote, json: bool) -> Result<u8> {
    let s: StatusView = r.get("/api/v1/status")?;
    crate::cmd_status::show(&s, json)
}

/// A job state in the words `lethe jobs` uses on the appliance (its job
/// store's status names).
pub fn status_word(s: JobState) -> &'static str {
    match s {
        JobState::Running => "running",
        JobState::Interrupted => "interrupted",
        JobState::Incomplete => "incomplete",
        JobState::Passed => "pass",
        JobState::Failed => "fail",
        JobState::ClearOnly => "clear_only",
        JobState::Unverified => "unverified",
        JobState::NotStarted => "not_started",
    }
}

fn resumable(s: JobState) -> bool {
    matches!(s, JobState::Interrupted | JobState::Incomplete)
}

/// `lethe jobs --json`'s object for one job, as far as the API shows it
/// (the appliance's byte checkpoint is not part of the API's job view).
fn summary(j: &JobView) -> serde_json::Value {
    serde_json::json!({
        "job": j.id,
        "kind": j.kind,
        "status": status_word(j.state),
        "device": j.device,
        "bay": j.bay,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
        "certificate": j.certificate,
        "resumable": resumable(j.state),
        "progress": j.progress,
    })
}

fn jobs_list(r: &Remote) -> Result<Vec<JobView>> {
    Ok(r.get("/api/v1/jobs?limit=1000")?)
}

pub fn jobs(r: &Remote, args: &JobsArgs) -> Result<u8> {
    match &args.cmd {
        None | Some(JobsCmd::List) => {
            let jobs = jobs_list(r)?;
            if args.json {
                let v: Vec<_> = jobs.iter().map(summary).collect();
                outln!("{}", serde_json::to_string(&v)?);
            } else if jobs.is_empty() {
                outln!("no jobs on {}", r.server());
            } else {
                let rows = jobs.iter().map(|j| ListRow {
                    id: &j.id,
                    kind: &j.kind,
                    status: status_word(j.state),
                    updated_at: &j.updated_at,
                    device: &j.device,
                    resumable: resumable(j.state),
                });
                out!("{}", list_table(rows));
            }
        }
        Some(JobsCmd::Show { job }) => {
            let Some(j) = jobs_list(r)?.into_iter().find(|j| &j.id == job) else {
                bail!("no job {job} among the newest 1000 jobs on {}", r.server());
            };
            if args.json {
                outln!("{}", serde_json::to_string(&summary(&j))?);
            } else {
                outln!("job         {}", j.id);
                outln!("status      {}", status_word(j.state));
                outln!("device      {}", j.device);
                if let Some(b) = &j.bay {
                    outln!("bay         {b}");
                }
                if let Some(p) = &j.progress {
                    outln!("progress    {} {}/{} bytes", p.phase, p.done, p.total);
                }
                if let Some(c) = &j.certificate {
                    outln!("certificate {c}");
                }
                outln!(
                    "(its event history is in `lethe jobs show {}` on the appliance)",
                    j.id
                );
            }
        }
        Some(JobsCmd::Cancel { job }) => {
            r.post_unit(
                &format!("/api/v1/jobs/{}/cancel", seg(job)),
                &serde_json::json!({}),
            )?;
            if args.json {
                outln!(
                    "{}",
                    serde_json::json!({"job": job, "result": "cancelling"})
                );
            } else {
                eprintln!("lethe: job {job} was asked to stop at its next safe point");
            }
        }
    }
    Ok(exit::OK)
}

/// A path segment: ids are plain, anything else is percent-encoded so it
/// cannot change the route.
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn cert(r: &Remote, args: &CertArgs) -> Result<u8> {
    match &args.cmd {
        CertCmd::List { json } => {
            let list: Vec<lethe_wire::CertView> = r.get("/api/v1/certificates?limit=1000")?;
            if *json {
                let v: Vec<_> = list
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "id": c.id, "issued_at": c.issued_at, "status": c.result,
                            "model": c.model, "serial": c.serial, "key_id": c.key_id,
                            "asset_tag": c.asset_tag, "customer": c.customer,
                            "problem": c.problem,
                        })
                    })
                    .collect();
                outln!("{}", serde_json::to_string(&v)?);
            } else if list.is_empty() {
                outln!("no certificates on {}", r.server());
            } else {
                let rows = list.iter().map(|c| crate::cmd_cert::ListRow {
                    id: &c.id,
                    issued_at: &c.issued_at,
                    status: c.result.as_deref(),
                    problem: c.problem.as_deref(),
                    model: &c.model,
                    serial: &c.serial,
                });
                out!("{}", crate::cmd_cert::list_table(rows));
            }
            Ok(exit::OK)
        }
        CertCmd::Verify { file, key, json } => {
            // Verified here, against the key the user names: the appliance
            // is not asked whether its own certificate is good.
            let expected = match key {
                Some(k) => match crate::cmd_cert::named_key(k, file, *json)? {
                    Ok(k) => Some(k),
                    Err(code) => return Ok(code),
                },
                None => None,
            };
            let bytes = r.get_bytes(&format!("/api/v1/certificates/{}", seg(file)))?;
            let shown = r.url(&format!("/api/v1/certificates/{}", seg(file)));
            crate::cmd_cert::check(&bytes, &shown, expected, *json)
        }
        CertCmd::Show { id, json } => {
            let bytes = r.get_bytes(&format!("/api/v1/certificates/{}", seg(id)))?;
            let v = lethe_cert::verify(&bytes, None)
                .map_err(|e| anyhow::anyhow!("certificate {id} from {}: {e}", r.server()))?;
            if *json {
                outln!("{}", serde_json::to_string(v.body())?);
            } else {
                outln!("{}", v.summary());
                outln!("{}", serde_json::to_string_pretty(v.body())?);
                outln!(
                    "signer: key {} (check who signed it: lethe --server {} cert verify {id} --key APPLIANCE.pub)",
                    v.key_id(),
                    r.server()
                );
                outln!("pdf: lethe --server {} cert get {id}", r.server());
            }
            Ok(exit::OK)
        }
        CertCmd::Get { id, out } => {
            let json = r.get_bytes(&format!("/api/v1/certificates/{}", seg(id)))?;
            let pdf = r.get_bytes(&format!("/api/v1/certificates/{}/pdf", seg(id)))?;
            crate::cmd_cert::save_pair(id, &json, &pdf, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_cannot_leave_their_route() {
        assert_eq!(
            seg("2026-12-04T10-00-00Z-ab12"),
            "2026-12-04T10-00-00Z-ab12"
        );
        assert_eq!(seg("../keys/signing"), "..%2Fkeys%2Fsigning");
        assert_eq!(seg("a b?c#d"), "a%20b%3Fc%23d");
    }

    #[test]
    fn job_states_use_the_job_stores_words() {
        // The words `lethe jobs` prints on the appliance, so scripts read
        // both the same way.
        use lethe_store::JobStatus as S;
        for (state, stored) in [
            (JobState::Running, S::Running),
            (JobState::Interrupted, S::Interrupted),
            (JobState::Incomplete, S::Incomplete),
            (JobState::Passed, S::Pass),
            (JobState::Failed, S::Fail),
            (JobState::ClearOnly, S::ClearOnly),
            (JobState::Unverified, S::Unverified),
            (JobState::NotStarted, S::NotStarted),
        ] {
            assert_eq!(status_word(state), stored.as_str());
            assert_eq!(resumable(state), stored.resumable());
        }
    }
}
