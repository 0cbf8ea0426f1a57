//! DVC remotes: read the remote's settings from `.dvc/config` and `.dvc/config.local` (where
//! credentials belong) and probe an HTTP remote with them before a pull or push.
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
    })
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Not an HTTP remote (a folder, S3, ...): nothing to check here.
    NotHttp,
    /// The server accepted the request (the object may or may not exist).
    Accepted(u16),
}

/// Probe an HTTP(S) remote with its credentials: `Ok` when they are accepted, an error that
/// says what to change when they are not.
pub fn probe(remote: &Remote) -> Result<Probe> {
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
