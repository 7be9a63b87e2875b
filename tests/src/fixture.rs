//! A server of a test's own, built from its parts: users, policy lines, `[server]`
//! settings, sources and other config sections, and the files they read, all in one
//! temporary folder that lives as long as the server.
//!
//! ```ignore
//! let server = Fixture::new()
//!     .admin("stats", "pw")
//!     .user_with("tehran", &["analyst"], &[("province_code", "23")], "tehran")
//!     .policy("p, role:analyst, dept.*, read, allow")
//!     .source("dept", "postgres", &[("url", &url), ("schema", &schema)])
//!     .start();
//! ```
//!
//! Paths in the config are written relative to the fixture's folder, as an operator
//! writes them beside `amar.toml`; the server's data folder is `data/` in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use amar_server::config::Overrides;
use amar_server::serve::ServeOptions;

use crate::TestServer;

struct User {
    name: String,
    roles: Vec<String>,
    attributes: BTreeMap<String, String>,
    password: String,
}

/// The files of one test server, written when it starts (or by [`Fixture::write`]).
pub struct Fixture {
    dir: tempfile::TempDir,
    users: Vec<User>,
    policy: Vec<String>,
    server: Vec<String>,
    sections: Vec<String>,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    /// An empty fixture in a fresh temporary folder.
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("a temporary folder"),
            users: vec![],
            policy: vec![],
            server: vec![],
            sections: vec![],
        }
    }

    /// The fixture's folder (where `amar.toml`, `users.toml` and `policy.csv` go).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the fixture's folder.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The config file's path.
    pub fn config_path(&self) -> PathBuf {
        self.path("amar.toml")
    }

    /// A user with the `admin` role.
    pub fn admin(self, name: &str, password: &str) -> Fixture {
        self.user(name, &["admin"], password)
    }

    /// A user with these roles and no attributes.
    pub fn user(self, name: &str, roles: &[&str], password: &str) -> Fixture {
        self.user_with(name, roles, &[], password)
    }

    /// A user with these roles and attributes (`province_code`, …), which policy lines
    /// read as `${user.NAME}`.
    pub fn user_with(
        mut self,
        name: &str,
        roles: &[&str],
        attributes: &[(&str, &str)],
        password: &str,
    ) -> Fixture {
        self.users.push(User {
            name: name.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            password: password.to_string(),
        });
        self
    }

    /// Policy lines (casbin CSV, one rule a line); the first one makes the config
    /// name `policy.csv`.
    pub fn policy(mut self, lines: &str) -> Fixture {
        self.policy.extend(
            lines
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
        self
    }

    /// One `key = value` line of `[server]`, as TOML (`"require_tls = true"`).
    pub fn server(mut self, line: &str) -> Fixture {
        self.server.push(line.to_string());
        self
    }

    /// A `[[source]]` of this name and kind with string settings (`url`, `path`,
    /// `schema`, …).
    pub fn source(self, name: &str, kind: &str, settings: &[(&str, &str)]) -> Fixture {
        let mut toml = format!(
            "[[source]]\nname = {}\nkind = {}\n",
            quote(name),
            quote(kind)
        );
        for (key, value) in settings {
            toml.push_str(&format!("{key} = {}\n", quote(value)));
        }
        self.config(&toml)
    }

    /// Any other part of the config, as TOML, after `[server]` and in the order given:
    /// a source with tables of settings, `[[indicator]]`, `[limits]`, ….
    pub fn config(mut self, toml: &str) -> Fixture {
        self.sections.push(toml.trim().to_string());
        self
    }

    /// A file in the fixture's folder (folders are made as needed): a CSV a source
    /// reads, a certificate, a SQLite database's bytes.
    pub fn file(self, relative: &str, contents: impl AsRef<[u8]>) -> Fixture {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the file's folder is made");
        }
        std::fs::write(&path, contents).expect("the file is written");
        self
    }

    /// The config's text as [`Fixture::write`] writes it.
    pub fn config_text(&self) -> String {
        let mut text = String::from("[server]\n");
        if !self.users.is_empty() {
            text.push_str("users_file = \"users.toml\"\n");
        }
        if !self.policy.is_empty() {
            text.push_str("policy_file = \"policy.csv\"\n");
        }
        for line in &self.server {
            text.push_str(line);
            text.push('\n');
        }
        for section in &self.sections {
            text.push('\n');
            text.push_str(section);
            text.push('\n');
        }
        text
    }

    /// Writes the users file (passwords hashed as `amar user add` does), the policy
    /// and the config; returns the config's path. Writing again replaces all three.
    pub fn write(&self) -> PathBuf {
        if !self.users.is_empty() {
            let path = self.path("users.toml");
            let _ = std::fs::remove_file(&path);
            let mut file = amar_policies::UsersFile::load(&path).expect("a new users file");
            for user in &self.users {
                file.add(
                    &user.name,
                    user.roles.clone(),
                    user.attributes.clone(),
                    &user.password,
                )
                .unwrap_or_else(|e| panic!("user {}: {e}", user.name));
            }
            file.save().expect("the users file is saved");
        }
        if !self.policy.is_empty() {
            let mut text = self.policy.join("\n");
            text.push('\n');
            std::fs::write(self.path("policy.csv"), text).expect("the policy is written");
        }
        let config = self.config_path();
        std::fs::write(&config, self.config_text()).expect("the config is written");
        config
    }

    /// Writes the files and starts a server on them; the server keeps the folder.
    pub fn start(self) -> TestServer {
        let options = self.options();
        TestServer::start(options, Some(self.dir)).expect("the server starts")
    }

    /// Writes the files and starts a server on them, keeping the fixture: for a
    /// server that must fail to start, or one that is stopped and started again on
    /// the same files and data.
    pub fn try_start(&self) -> anyhow::Result<TestServer> {
        TestServer::start(self.options(), None)
    }

    /// Loads the written users file, changes it and saves it, as `amar user` does to
    /// a running server's file.
    pub fn edit_users(
        &self,
        edit: impl FnOnce(&mut amar_policies::UsersFile) -> Result<(), amar_policies::PolicyError>,
    ) {
        let mut users =
            amar_policies::UsersFile::load(&self.path("users.toml")).expect("the users file");
        edit(&mut users).expect("the users file changes");
        users.save().expect("the users file is saved");
    }

    fn options(&self) -> ServeOptions {
        let config = self.write();
        ServeOptions {
            config: Some(config),
            overrides: Overrides {
                data_dir: Some(self.path("data")),
                ..Overrides::default()
            },
            demo_scale: None,
        }
    }
}

/// A TOML string.
fn quote(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}
