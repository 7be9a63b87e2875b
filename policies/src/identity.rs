//! Users, their roles and attributes, and the users file they live in.
//!
//! The users file is TOML, one `[[user]]` table per person:
//!
//! ```toml
//! [[user]]
//! name = "tehran"
//! roles = ["analyst"]
//! password = "SCRAM-SHA-256$4096:…$…:…"
//! attributes = { province_code = "23" }
//! ```
//!
//! It is written only through [`UsersFile`] (by `amar user add|passwd|disable`), always
//! atomically (a temporary file renamed over the old one), so a crash never leaves
//! half a file. A running server reads it through [`UserDirectory`], which notices
//! changes without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{PolicyError, Result};
use crate::scram::ScramVerifier;

/// The built-in role that reads everything, as a PostgreSQL superuser does.
pub const ADMIN_ROLE: &str = "admin";
/// The built-in role for anonymous, internet-facing use.
pub const PUBLIC_ROLE: &str = "public";

/// A person (or service) that may log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub roles: Vec<String>,
    /// Facts about the user that policies may name, e.g. `province_code`.
    pub attributes: BTreeMap<String, String>,
    pub verifier: ScramVerifier,
    pub disabled: bool,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }

    /// In the public role (and not an admin): reads published indicators only, with
    /// small cells suppressed.
    pub fn is_public(&self) -> bool {
        !self.is_admin() && self.roles.iter().any(|r| r == PUBLIC_ROLE)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    #[serde(default, rename = "user")]
    users: Vec<UserRepr>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRepr {
    name: String,
    #[serde(default)]
    roles: Vec<String>,
    password: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    disabled: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, String>,
}

/// The users file, loaded for reading and changing.
#[derive(Debug)]
pub struct UsersFile {
    path: PathBuf,
    users: BTreeMap<String, User>,
}

impl UsersFile {
    /// Loads `path`; a file that does not exist yet is an empty users file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(PolicyError::ReadUsers {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let users = parse_users(path, &text)?;
        Ok(Self {
            path: path.to_path_buf(),
            users,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Adds a user; fails if the name is taken.
    pub fn add(
        &mut self,
        name: &str,
        roles: Vec<String>,
        attributes: BTreeMap<String, String>,
        password: &str,
    ) -> Result<()> {
        validate_name(name)?;
        for key in attributes.keys() {
            validate_attribute_key(key)?;
        }
        if self.users.contains_key(name) {
            return Err(PolicyError::UserExists(name.to_string()));
        }
        let user = User {
            name: name.to_string(),
            roles,
            attributes,
            verifier: ScramVerifier::new(password)?,
            disabled: false,
        };
        self.users.insert(name.to_string(), user);
        Ok(())
    }

    /// Replaces a user's password (and enables the user again).
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<()> {
        let user = self
            .users
            .get_mut(name)
            .ok_or_else(|| PolicyError::UnknownUser(name.to_string()))?;
        user.verifier = ScramVerifier::new(password)?;
        user.disabled = false;
        Ok(())
    }

    /// Marks a user as unable to log in; the entry stays, for the audit trail.
    pub fn disable(&mut self, name: &str) -> Result<()> {
        let user = self
            .users
            .get_mut(name)
            .ok_or_else(|| PolicyError::UnknownUser(name.to_string()))?;
        user.disabled = true;
        Ok(())
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn save(&self) -> Result<()> {
        let repr = FileRepr {
            users: self
                .users
                .values()
                .map(|u| UserRepr {
                    name: u.name.clone(),
                    roles: u.roles.clone(),
                    password: u.verifier.to_string(),
                    disabled: u.disabled,
                    attributes: u.attributes.clone(),
                })
                .collect(),
        };
        let text = toml::to_string_pretty(&repr).map_err(|e| PolicyError::InvalidUsers {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let text = format!(
            "# Amar users. Change with `amar user add|passwd|disable`; passwords are SCRAM-SHA-256 verifiers.\n{text}"
        );
        write_atomically(&self.path, text.as_bytes()).map_err(|source| PolicyError::WriteUsers {
            path: self.path.clone(),
            source,
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users.toml".to_string());
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn parse_users(path: &Path, text: &str) -> Result<BTreeMap<String, User>> {
    let invalid = |message: String| PolicyError::InvalidUsers {
        path: path.to_path_buf(),
        message,
    };
    let repr: FileRepr = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut users = BTreeMap::new();
    for (i, u) in repr.users.into_iter().enumerate() {
        let at = format!("user[{i}] (\"{}\")", u.name);
        validate_name(&u.name).map_err(|e| invalid(format!("{at}: key `name`: {e}")))?;
        for key in u.attributes.keys() {
            validate_attribute_key(key)
                .map_err(|e| invalid(format!("{at}: key `attributes`: {e}")))?;
        }
        let verifier = ScramVerifier::parse(&u.password)
            .map_err(|e| invalid(format!("{at}: key `password`: {e}")))?;
        let user = User {
            name: u.name.clone(),
            roles: u.roles,
            attributes: u.attributes,
            verifier,
            disabled: u.disabled,
        };
        if users.insert(u.name.clone(), user).is_some() {
            return Err(invalid(format!("{at}: the name appears twice")));
        }
    }
    Ok(users)
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(PolicyError::InvalidUserName(name.to_string()))
    }
}

fn validate_attribute_key(key: &str) -> Result<()> {
    let ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::InvalidAttribute(key.to_string()))
    }
}

/// Parses `KEY=VALUE` as given on the command line.
pub fn parse_attribute(text: &str) -> Result<(String, String)> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| PolicyError::InvalidAttribute(text.to_string()))?;
    validate_attribute_key(k).map_err(|_| PolicyError::InvalidAttribute(text.to_string()))?;
    Ok((k.to_string(), v.to_string()))
}

/// The users a running server authenticates against. It re-reads the users file
/// when the file changes, so `amar user add` takes effect without a restart; a file
/// that fails to parse is reported and the last good set of users stays in force.
#[derive(Debug)]
pub struct UserDirectory {
    path: Option<PathBuf>,
    state: RwLock<DirectoryState>,
}

#[derive(Debug)]
struct DirectoryState {
    stamp: Option<(SystemTime, u64)>,
    users: Arc<BTreeMap<String, User>>,
}

impl UserDirectory {
    /// A directory backed by a users file, loaded now (errors are fatal at start).
    pub fn from_file(path: &Path) -> Result<Self> {
        let file = UsersFile::load(path)?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            state: RwLock::new(DirectoryState {
                stamp: file_stamp(path),
                users: Arc::new(file.users),
            }),
        })
    }

    /// A fixed set of users, with no file behind it (tests, embedded use).
    pub fn fixed(users: Vec<User>) -> Self {
        Self {
            path: None,
            state: RwLock::new(DirectoryState {
                stamp: None,
                users: Arc::new(users.into_iter().map(|u| (u.name.clone(), u)).collect()),
            }),
        }
    }

    /// The current entry for `name`, re-reading the file first if it changed.
    pub fn lookup(&self, name: &str) -> Option<User> {
        self.refresh();
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.users.get(name).cloned()
    }

    /// Every user (for building policies' role membership).
    pub fn all(&self) -> Vec<User> {
        self.refresh();
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.users.values().cloned().collect()
    }

    /// The names of all users, for `pg_roles`.
    pub fn names(&self) -> Vec<String> {
        self.refresh();
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.users.keys().cloned().collect()
    }

    fn refresh(&self) {
        let Some(path) = &self.path else { return };
        let stamp = file_stamp(path);
        {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            if state.stamp == stamp {
                return;
            }
        }
        match UsersFile::load(path) {
            Ok(file) => {
                let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                state.stamp = stamp;
                state.users = Arc::new(file.users);
                tracing::info!(path = %path.display(), users = state.users.len(), "users file reloaded");
            }
            Err(e) => {
                let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                // Remember the stamp so that a broken file is reported once, not per login.
                state.stamp = stamp;
                tracing::error!("{e}; keeping the previous users");
            }
        }
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_save_load_and_change_users() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let mut file = UsersFile::load(&path).unwrap();
        let attrs = BTreeMap::from([("province_code".to_string(), "23".to_string())]);
        file.add("tehran", vec!["analyst".into()], attrs, "tehran")
            .unwrap();
        assert!(matches!(
            file.add("tehran", vec![], BTreeMap::new(), "x"),
            Err(PolicyError::UserExists(_))
        ));
        file.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"tehran\"\npassword = \"tehran\""));
        assert!(text.contains("SCRAM-SHA-256$4096:"));

        let mut again = UsersFile::load(&path).unwrap();
        let user = again.get("tehran").unwrap();
        assert_eq!(user.attributes["province_code"], "23");
        assert!(user.verifier.verify_password("tehran"));
        again.set_password("tehran", "new").unwrap();
        again.disable("tehran").unwrap();
        again.save().unwrap();
        let user = UsersFile::load(&path)
            .unwrap()
            .get("tehran")
            .cloned()
            .unwrap();
        assert!(user.disabled);
        assert!(user.verifier.verify_password("new"));
    }

    #[test]
    fn broken_files_name_the_entry_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "[[user]]\nname = \"a\"\npassword = \"plain\"\n").unwrap();
        let err = UsersFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("user[0] (\"a\")"), "{err}");
        assert!(err.contains("`password`"), "{err}");
        std::fs::write(&path, "[[user]]\nname = \"a\"\npasword = \"x\"\n").unwrap();
        let err = UsersFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("pasword"), "{err}");
    }

    #[test]
    fn directory_sees_new_users_and_survives_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let mut file = UsersFile::load(&path).unwrap();
        file.add("a", vec![], BTreeMap::new(), "a").unwrap();
        file.save().unwrap();
        let directory = UserDirectory::from_file(&path).unwrap();
        assert!(directory.lookup("a").is_some());
        assert!(directory.lookup("b").is_none());
        file.add("b", vec![], BTreeMap::new(), "b").unwrap();
        file.save().unwrap();
        assert!(directory.lookup("b").is_some());
        std::fs::write(&path, "this is not toml at all [[[").unwrap();
        assert!(directory.lookup("a").is_some(), "last good users stay");
    }

    #[test]
    fn attributes_parse_from_the_command_line() {
        assert_eq!(
            parse_attribute("province_code=23").unwrap(),
            ("province_code".into(), "23".into())
        );
        assert!(parse_attribute("novalue").is_err());
        assert!(parse_attribute("bad key=1").is_err());
    }
}
