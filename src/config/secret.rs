//! Values a config can keep out of its own text: a webhook address that carries a token, a
//! signing secret, an `Authorization` header. Each is written inline, or as where to read it:
//!
//! ```toml
//! url = { credential = "slack-url" }     # systemd credential, or <config folder>/credentials/
//! secret = { file = "hook-secret" }      # a file, relative to the config's folder
//! headers = { Authorization = { env = "CHAT_TOKEN" } }
//! ```
//!
//! A service's config is often world-readable (`/etc/feedwatch/config.toml`); its secrets then
//! live in files only the service can read. Problems name the key and where feedwatch looked,
//! never the value.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::problems::Problems;

/// A secret as written in the file.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a string, or a table naming where to read it: { credential = \"NAME\" }, \
                 { file = \"PATH\" } or { env = \"VARIABLE\" }"
)]
pub(super) enum RawSecret {
    Inline(String),
    Source(SecretSource),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum SecretSource {
    /// systemd's `$CREDENTIALS_DIRECTORY/NAME` (or `feedwatch_NAME`, as the shipped unit's
    /// `LoadCredential=feedwatch:DIR` names them), else `<config folder>/credentials/NAME`.
    Credential(String),
    File(PathBuf),
    Env(String),
}

/// Reads secrets for one pass over the config, and remembers which were written inline so
/// `check` can warn when the file holding them is readable by others.
pub(super) struct Secrets<'a> {
    config_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<OsString>,
    inline: Vec<String>,
}

impl<'a> Secrets<'a> {
    pub(super) fn new(config_dir: &'a Path, env: &'a dyn Fn(&str) -> Option<OsString>) -> Self {
        Secrets {
            config_dir,
            env,
            inline: Vec::new(),
        }
    }

    /// The value of `what` (e.g. "`url` of `team-chat`"); `None`, with a problem at its
    /// position, when it cannot be read or is empty. `sensitive` says whether an inline value
    /// is worth a warning (a Slack address is, a plain header usually is not).
    pub(super) fn read(
        &mut self,
        value: &Spanned<RawSecret>,
        what: &str,
        sensitive: bool,
        problems: &mut Problems,
    ) -> Option<String> {
        let read = match value.get_ref() {
            RawSecret::Inline(text) => {
                if sensitive {
                    self.inline.push(what.to_string());
                }
                Ok(text.clone())
            }
            RawSecret::Source(source) => self.read_source(source),
        };
        match read {
            Ok(text) if text.trim().is_empty() => {
                problems.add(value.span(), format!("{what} is empty"));
                None
            }
            Ok(text) => Some(text),
            Err(why) => {
                problems.add(value.span(), format!("{what}: {why}"));
                None
            }
        }
    }

    /// The config's folder, which relative paths in it start from.
    pub(super) fn config_dir(&self) -> &Path {
        self.config_dir
    }

    /// What was written inline, in the order read.
    pub(super) fn into_inline(self) -> Vec<String> {
        self.inline
    }

    fn read_source(&self, source: &SecretSource) -> Result<String, String> {
        match source {
            SecretSource::Credential(name) => self.credential(name),
            SecretSource::File(path) => {
                let path = self.config_dir.join(path);
                read_secret_file(&path)
                    .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))
            }
            SecretSource::Env(variable) => match (self.env)(variable) {
                Some(value) => value
                    .into_string()
                    .map_err(|_| format!("environment variable {variable} is not UTF-8")),
                None => Err(format!("environment variable {variable} is not set")),
            },
        }
    }

    fn credential(&self, name: &str) -> Result<String, String> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(format!(
                "credential name `{name}` must be a plain file name"
            ));
        }
        let mut places = Vec::new();
        if let Some(dir) = (self.env)("CREDENTIALS_DIRECTORY").map(PathBuf::from) {
            places.push(dir.join(name));
            places.push(dir.join(format!("feedwatch_{name}")));
        }
        places.push(self.config_dir.join("credentials").join(name));
        for place in &places {
            match read_secret_file(place) {
                Ok(text) => return Ok(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read credential {}: {e}", place.display())),
            }
        }
        let looked: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
        Err(format!(
            "credential `{name}` not found (looked for {})",
            looked.join(", ")
        ))
    }
}

/// Whether a header by this name usually carries a secret (`Authorization`, `X-Api-Key`), so
/// that an inline value is worth a warning.
pub(super) fn sensitive_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["auth", "token", "key", "secret", "cookie", "password"]
        .iter()
        .any(|word| lower.contains(word))
}

/// A secret file's text without the line end an editor or `echo` leaves after it.
fn read_secret_file(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        toml_value: &str,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Holder {
            value: Spanned<RawSecret>,
        }
        let text = format!("value = {toml_value}\n");
        let holder: Holder = toml::from_str(&text).map_err(|e| e.to_string())?;
        let mut problems = Problems::new(&text);
        let mut secrets = Secrets::new(dir, env);
        let value = secrets.read(&holder.value, "`value`", true, &mut problems);
        let inline = secrets.into_inline();
        assert_eq!(
            inline.len(),
            usize::from(matches!(holder.value.get_ref(), RawSecret::Inline(_)))
        );
        let found = problems.into_found();
        value.ok_or_else(|| found[0].message.clone())
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn a_credential_comes_from_systemd_first_then_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let systemd = dir.path().join("run-credentials");
        std::fs::create_dir_all(dir.path().join("credentials")).unwrap();
        std::fs::create_dir_all(&systemd).unwrap();
        std::fs::write(dir.path().join("credentials/hook"), "from-config-dir\n").unwrap();
        assert_eq!(
            read(r#"{ credential = "hook" }"#, dir.path(), &no_env).unwrap(),
            "from-config-dir"
        );
        std::fs::write(systemd.join("feedwatch_hook"), "from-unit-dir").unwrap();
        let env = |v: &str| (v == "CREDENTIALS_DIRECTORY").then(|| systemd.clone().into());
        assert_eq!(
            read(r#"{ credential = "hook" }"#, dir.path(), &env).unwrap(),
            "from-unit-dir"
        );
    }

    #[test]
    fn a_missing_secret_says_where_it_looked_and_never_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(r#"{ credential = "hook" }"#, dir.path(), &no_env).unwrap_err();
        assert!(err.contains("credential `hook` not found"), "{err}");
        assert!(err.contains(&dir.path().join("credentials/hook").display().to_string()));
        let err = read(r#"{ env = "FW_TOKEN" }"#, dir.path(), &no_env).unwrap_err();
        assert!(err.contains("FW_TOKEN is not set"), "{err}");
        let err = read(r#"{ credential = "../etc/passwd" }"#, dir.path(), &no_env).unwrap_err();
        assert!(err.contains("plain file name"), "{err}");
        std::fs::write(dir.path().join("blank"), "\n").unwrap();
        let err = read(r#"{ file = "blank" }"#, dir.path(), &no_env).unwrap_err();
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn files_and_environment_variables_are_read_and_inline_values_remembered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), "s3cret\r\n").unwrap();
        assert_eq!(
            read(r#"{ file = "s" }"#, dir.path(), &no_env).unwrap(),
            "s3cret"
        );
        let env = |v: &str| (v == "FW_TOKEN").then(|| OsString::from("t0ken"));
        assert_eq!(
            read(r#"{ env = "FW_TOKEN" }"#, dir.path(), &env).unwrap(),
            "t0ken"
        );
        assert_eq!(read(r#""inline""#, dir.path(), &no_env).unwrap(), "inline");
        let err = read(r#"{ vault = "x" }"#, dir.path(), &no_env).unwrap_err();
        assert!(err.contains("credential"), "{err}");
    }
}
