//! DVC remotes: read the remote's settings from `.dvc/config` and `.dvc/config.local` (where
//! credentials belong) and probe an HTTP or S3 remote with them before a pull or push.
//!
//! Why: with wrong credentials DVC reports only that files are missing. A probe of one object
//! path tells "refused the credentials" (401/403) apart from "object absent" (404), so the user
//! gets a message that says what to fix.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// Settings of one remote, local config over shared config.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Remote {
    pub name: String,
    pub url: String,
    pub auth: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Every key of the remote's section (an S3 remote's `endpointurl`, `region`,
    /// `access_key_id`, `secret_access_key`).
    pub settings: BTreeMap<String, String>,
}

/// `section -> key -> value` of a DVC (INI-style) config file; section names unquoted, so
/// `['remote "origin"']` becomes `remote origin`.
pub fn parse_config(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = inner.replace(['\'', '"'], "").split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(section.clone()).or_default();
        } else if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone()).or_default().insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

/// The remote `name` (or the default remote) of the repository at `root`.
pub fn load(root: &Path, name: Option<&str>) -> Result<Remote> {
    let shared_path = root.join(".dvc/config");
    let shared = std::fs::read_to_string(&shared_path).map_err(|e| Error::io(&shared_path, e))?;
    let local = std::fs::read_to_string(root.join(".dvc/config.local")).unwrap_or_default();
    let mut config = parse_config(&shared);
    for (section, keys) in parse_config(&local) {
        config.entry(section).or_default().extend(keys);
    }
    let name = match name {
        Some(n) => n.to_owned(),
        None => config
            .get("core")
            .and_then(|c| c.get("remote"))
            .cloned()
            .ok_or_else(|| Error::file(&shared_path, "no remote given and no default remote (core.remote)"))?,
    };
    let keys = config.get(&format!("remote {name}")).ok_or_else(|| {
        let known: Vec<&str> = config.keys().filter_map(|s| s.strip_prefix("remote ")).collect();
        Error::file(&shared_path, format!("no remote `{name}` (known: {})", known.join(", ")))
    })?;
    let url =
        keys.get("url").cloned().ok_or_else(|| Error::file(&shared_path, format!("remote `{name}` has no url")))?;
    Ok(Remote {
        name,
        url,
        auth: keys.get("auth").cloned(),
        user: keys.get("user").cloned(),
        password: keys.get("password").cloned(),
        settings: keys.clone(),
    })
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Not an HTTP or S3 remote (a folder, ...): nothing to check here.
    NotHttp,
    /// The server accepted the request (the object may or may not exist).
    Accepted(u16),
}

/// Probe an HTTP(S) remote with its credentials: `Ok` when they are accepted, an error that
/// says what to change when they are not.
pub fn probe(remote: &Remote) -> Result<Probe> {
    if remote.url.starts_with("s3://") {
        return probe_s3(remote);
    }
    if !(remote.url.starts_with("http://") || remote.url.starts_with("https://")) {
        return Ok(Probe::NotHttp);
    }
    let fail = |message: String| Error::Remote { url: remote.url.clone(), message };
    let agent = crate::http::agent(Duration::from_secs(30));
    // An object path of DVC 3's layout; any answer but 401/403 means the credentials work.
    let url = format!("{}/files/md5/00/000000000000000000000000000000", remote.url.trim_end_matches('/'));
    let mut req = agent.head(&url);
    if let (Some(user), Some(password)) = (&remote.user, &remote.password) {
        req = req.header("Authorization", crate::http::basic_auth(user, password));
    }
    let status =
        req.call().map_err(|e| fail(format!("cannot reach the remote `{}`: {e}", remote.name)))?.status().as_u16();
    let how = format!(
        "set them with `dvc remote modify {0} --local user <name>` and `dvc remote modify {0} --local password <token>` (for DagsHub: your user name and an access token); they stay in .dvc/config.local, never in git",
        remote.name
    );
    match status {
        401 | 403 if remote.user.is_none() || remote.password.is_none() => Err(fail(format!(
            "the remote `{}` needs credentials (HTTP {status}) and none are configured: {how}",
            remote.name
        ))),
        401 | 403 => Err(fail(format!(
            "the remote `{}` refused the credentials of user `{}` (HTTP {status}): {how}",
            remote.name,
            remote.user.as_deref().unwrap_or_default()
        ))),
        s => Ok(Probe::Accepted(s)),
    }
}

/// An S3 remote's location and credentials: the remote's settings, else the AWS environment
/// variables (`AWS_ENDPOINT_URL`, `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`), as DVC reads them.
pub fn s3_of(remote: &Remote) -> Result<(crate::s3::Location, Option<crate::s3::Credentials>)> {
    let get = |key: &str, env: &str| remote.settings.get(key).cloned().or_else(|| std::env::var(env).ok());
    let endpoint = get("endpointurl", "AWS_ENDPOINT_URL").unwrap_or_else(|| "https://s3.amazonaws.com".into());
    let region = get("region", "AWS_DEFAULT_REGION").unwrap_or_else(|| "us-east-1".into());
    let loc = crate::s3::Location::parse(&remote.url, &endpoint, &region)
        .map_err(|message| Error::Remote { url: remote.url.clone(), message })?;
    let creds = match (get("access_key_id", "AWS_ACCESS_KEY_ID"), get("secret_access_key", "AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key), Some(secret_key)) => Some(crate::s3::Credentials { access_key, secret_key }),
        _ => None,
    };
    Ok((loc, creds))
}

fn probe_s3(remote: &Remote) -> Result<Probe> {
    let fail = |message: String| Error::Remote { url: remote.url.clone(), message };
    let (loc, creds) = s3_of(remote)?;
    let how = format!(
        "set them with `dvc remote modify {0} --local access_key_id <id>` and `dvc remote modify {0} --local secret_access_key <secret>` (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); they stay in .dvc/config.local, never in git",
        remote.name
    );
    let Some(creds) = creds else {
        return Err(fail(format!("the S3 remote `{}` needs credentials and none are configured: {how}", remote.name)));
    };
    let answer = crate::s3::probe(&loc, &creds)
        .map_err(|e| fail(format!("cannot reach the S3 endpoint {} of remote `{}`: {e}", loc.endpoint, remote.name)))?;
    let code = answer.code().unwrap_or("").to_owned();
    match (answer.status, code.as_str()) {
        (200, _) => Ok(Probe::Accepted(200)),
        (_, "NoSuchBucket") => Err(fail(format!(
            "the S3 remote `{}`: bucket `{}` does not exist at {}",
            remote.name, loc.bucket, loc.endpoint
        ))),
        (400 | 401 | 403, _) => Err(fail(format!(
            "the S3 remote `{}` refused the credentials of access key `{}` (HTTP {}, {}): {how}",
            remote.name,
            creds.access_key,
            answer.status,
            if code.is_empty() { "no error code" } else { code.as_str() }
        ))),
        (s, _) => Err(fail(format!("the S3 remote `{}` answered HTTP {s} {code}", remote.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_config_overrides_and_sections_unquote() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".dvc")).unwrap();
        std::fs::write(
            dir.path().join(".dvc/config"),
            "[core]\n    remote = origin\n['remote \"origin\"']\n    url = https://dagshub.com/a/b.dvc\n    auth = basic\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".dvc/config.local"),
            "['remote \"origin\"']\n    user = alice\n    password = t0k\n",
        )
        .unwrap();
        let r = load(dir.path(), None).unwrap();
        assert_eq!(r.url, "https://dagshub.com/a/b.dvc");
        assert_eq!(
            (r.user.as_deref(), r.password.as_deref(), r.auth.as_deref()),
            (Some("alice"), Some("t0k"), Some("basic"))
        );
        assert!(load(dir.path(), Some("nope")).unwrap_err().to_string().contains("known: origin"));
    }
}
