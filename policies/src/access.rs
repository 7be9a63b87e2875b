//! Who may read what: the casbin policy store and the per-user decisions it yields.
//!
//! The policy file is casbin CSV under a built-in model (overridable) with three
//! policy types and role membership:
//!
//! ```csv
//! # table rules: who, what (schema.table, * wildcards), action, allow|deny
//! p, role:analyst, insurance.*, read, allow
//! p, tehran, pension.payments, read, deny
//! # column rules: who, table, column, deny | mask, how (hash | null | an SQL expression)
//! p2, role:analyst, insurance.insured_persons, national_id, mask, hash
//! # row filters: who, table, SQL predicate naming ${user.<attribute>}
//! p3, role:provincial, insurance.*, province_code = ${user.province_code}
//! # role membership; users' roles from the users file are added as g lines too
//! g, tehran, role:provincial
//! ```
//!
//! Deny wins over allow, and nothing is readable unless a rule allows it. Users with
//! the built-in role `admin` read everything, unmasked and unfiltered, as a
//! PostgreSQL superuser does. A user's several row filters on one table combine with
//! OR, as PostgreSQL combines permissive row-security policies.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use casbin::prelude::*;

use crate::error::{PolicyError, Result};
use crate::identity::User;

/// The built-in casbin model.
pub const DEFAULT_MODEL: &str = r#"
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft
p2 = sub, obj, col, act, arg
p3 = sub, obj, cond

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (g(r.sub, p.sub) || r.sub == p.sub) && keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == "*")
"#;

/// How a column is shown to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRule {
    /// The column does not exist for this user.
    Deny,
    /// The column shows the value of this mask.
    Mask(Mask),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mask {
    /// A SHA-256 of the value's text, hex-encoded: stable, so joins and counts of
    /// distinct values still work, but the value is not shown.
    Hash,
    /// NULL of the column's type.
    Null,
    /// An SQL expression that may name the column, e.g. `left(national_id, 3) || '…'`.
    Expression(String),
}

/// Everything one user may do with one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableAccess {
    pub readable: bool,
    /// By column name.
    pub columns: BTreeMap<String, ColumnRule>,
    /// SQL predicates with the user's attributes already substituted; rows pass if
    /// any holds. Empty means every row.
    pub row_filters: Vec<String>,
}

impl TableAccess {
    pub fn everything() -> Self {
        TableAccess {
            readable: true,
            columns: BTreeMap::new(),
            row_filters: vec![],
        }
    }

    pub fn hidden_columns(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|(_, r)| matches!(r, ColumnRule::Deny))
            .map(|(c, _)| c.as_str())
    }
}

/// The state of the policy file, for `amar.policy_status`.
#[derive(Debug, Clone)]
pub struct PolicyStatus {
    pub path: Option<PathBuf>,
    pub loaded_at: SystemTime,
    pub rules: usize,
    /// The last reload's error, if the file on disk was rejected.
    pub error: Option<String>,
}

struct Loaded {
    enforcer: Arc<Enforcer>,
    stamp: Option<(SystemTime, u64)>,
    users_stamp: u64,
    /// The users as last read, so open sessions pick up changed roles and attributes.
    users: HashMap<String, User>,
    /// Bumped whenever the decisions may have changed.
    generation: u64,
    status: PolicyStatus,
}

/// The policy store: the file, its casbin enforcer, and reloads.
pub struct PolicyStore {
    path: Option<PathBuf>,
    model: String,
    loaded: RwLock<Loaded>,
    /// Set while a reload runs, so reloads never overlap.
    reloading: AtomicBool,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Substitutes `${user.<attribute>}` (and `${user.name}`) with SQL literals.
pub fn substitute(template: &str, user: &User) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("an unclosed ${ in a row filter")?;
        let name = after[..end].trim();
        let key = name.strip_prefix("user.").ok_or_else(|| {
            format!("${{{name}}}: row filters may name ${{user.<attribute>}} only")
        })?;
        let value = if key == "name" {
            Some(user.name.clone())
        } else {
            user.attributes.get(key).cloned()
        };
        let value =
            value.ok_or_else(|| format!("user \"{}\" has no attribute \"{key}\"", user.name))?;
        // Numbers stay numbers; everything else is a quoted string literal.
        if is_plain_number(&value) {
            out.push_str(&value);
        } else {
            out.push('\'');
            out.push_str(&value.replace('\'', "''"));
            out.push('\'');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What the public role may read at most: the indicators, the official (released)
/// figures and their history, and their published metadata (classifications
/// included), evaluation, release list and revisions.
pub fn public_may_read(schema: &str, table: &str) -> bool {
    matches!(schema, "indicators" | "official" | "official_history")
        || (schema == "amar"
            && matches!(
                table,
                "indicators"
                    | "glossary"
                    | "classifications"
                    | "indicator_status"
                    | "releases"
                    | "revisions"
                    | "release_calendar"
            ))
}

/// A decimal literal SQL reads as a number (`23`, `-4.5`), not `inf` or `1e9`.
fn is_plain_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

impl PolicyStore {
    /// Loads the policy; `None` means no policy file (only admins read anything).
    pub async fn load(path: Option<&Path>, model: Option<&str>, users: &[User]) -> Result<Self> {
        let model = model.unwrap_or(DEFAULT_MODEL).to_string();
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| PolicyError::ReadPolicy {
                path: p.to_path_buf(),
                source,
            })?,
            None => String::new(),
        };
        let enforcer = build(&model, &text, users, path).await?;
        let rules = count_rules(&text);
        Ok(Self {
            path: path.map(Path::to_path_buf),
            model,
            loaded: RwLock::new(Loaded {
                enforcer: Arc::new(enforcer),
                stamp: path.and_then(stamp),
                users_stamp: users_fingerprint(users),
                users: by_name(users),
                generation: 0,
                status: PolicyStatus {
                    path: path.map(Path::to_path_buf),
                    loaded_at: SystemTime::now(),
                    rules,
                    error: None,
                },
            }),
            reloading: AtomicBool::new(false),
        })
    }

    pub fn status(&self) -> PolicyStatus {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .status
            .clone()
    }

    /// Re-reads the policy file if it changed, or rebuilds when the users changed.
    /// A file that does not load is reported in the status and the old policy stays.
    pub async fn refresh(&self, users: &[User]) {
        let current = self.path.as_deref().and_then(stamp);
        let fingerprint = users_fingerprint(users);
        {
            let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
            if loaded.stamp == current && loaded.users_stamp == fingerprint {
                return;
            }
        }
        if self.reloading.swap(true, Ordering::AcqRel) {
            return;
        }
        let _done = Reloading(&self.reloading);
        let text = match &self.path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| PolicyError::ReadPolicy {
                path: p.clone(),
                source,
            }),
            None => Ok(String::new()),
        };
        let built = match text {
            Ok(text) => build(&self.model, &text, users, self.path.as_deref())
                .await
                .map(|e| (e, count_rules(&text))),
            Err(e) => Err(e),
        };
        let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        loaded.stamp = current;
        loaded.users_stamp = fingerprint;
        match built {
            Ok((enforcer, rules)) => {
                loaded.enforcer = Arc::new(enforcer);
                loaded.users = by_name(users);
                loaded.generation += 1;
                loaded.status = PolicyStatus {
                    path: self.path.clone(),
                    loaded_at: SystemTime::now(),
                    rules,
                    error: None,
                };
                tracing::info!(rules, "policy reloaded");
            }
            Err(e) => {
                tracing::error!("{e}; keeping the previous policy");
                loaded.status.error = Some(e.to_string());
            }
        }
    }

    /// The decisions for one user, computed per table on first use and cached.
    pub fn for_user(&self, user: &User) -> UserAccess {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        UserAccess {
            user: effective(user, &loaded.enforcer),
            enforcer: loaded.enforcer.clone(),
            cache: Mutex::new(HashMap::new()),
            exprs: Mutex::new(HashMap::new()),
            generation: loaded.generation,
        }
    }

    /// `user` with the roles the policy's `g` lines give them besides the users
    /// file's, so that `admin` and `public` mean the same wherever they are granted.
    pub fn effective_user(&self, user: &User) -> User {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        effective(user, &loaded.enforcer)
    }

    /// Which policy is in force; changes on every successful reload.
    pub fn generation(&self) -> u64 {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .generation
    }

    /// The user as the store last read them; a user no longer in the users file
    /// keeps their name and loses every role and attribute.
    fn current_user(&self, user: &User) -> User {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        if loaded.generation == 0 {
            return user.clone();
        }
        loaded
            .users
            .get(&user.name)
            .cloned()
            .unwrap_or_else(|| User {
                roles: vec![],
                attributes: Default::default(),
                ..user.clone()
            })
    }
}

/// One session's decisions: cached, and rebuilt when the policy or the user changes,
/// so a reload reaches open sessions at their next statement.
pub struct SessionAccess {
    store: Arc<PolicyStore>,
    user: User,
    current: RwLock<Arc<UserAccess>>,
}

impl std::fmt::Debug for SessionAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionAccess")
            .field("user", &self.user.name)
            .finish_non_exhaustive()
    }
}

impl SessionAccess {
    pub fn new(store: Arc<PolicyStore>, user: User) -> Self {
        let current = RwLock::new(Arc::new(store.for_user(&user)));
        SessionAccess {
            store,
            user,
            current,
        }
    }

    /// The decisions in force now.
    pub fn current(&self) -> Arc<UserAccess> {
        let generation = self.store.generation();
        {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            if current.generation == generation {
                return current.clone();
            }
        }
        let user = self.store.current_user(&self.user);
        let fresh = Arc::new(self.store.for_user(&user));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        fresh
    }
}

/// A user's roles from both places they are granted: the users file and the policy's
/// `g` lines (directly or through other roles). A disabled user has none.
fn effective(user: &User, enforcer: &Enforcer) -> User {
    let mut user = user.clone();
    if user.disabled {
        user.roles.clear();
        return user;
    }
    for role in enforcer.get_implicit_roles_for_user(&user.name, None) {
        if let Some(role) = role.strip_prefix("role:")
            && !user.roles.iter().any(|r| r == role)
        {
            user.roles.push(role.to_string());
        }
    }
    user
}

/// Clears the reloading flag however a reload ends.
struct Reloading<'a>(&'a AtomicBool);

impl Drop for Reloading<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn by_name(users: &[User]) -> HashMap<String, User> {
    users.iter().map(|u| (u.name.clone(), u.clone())).collect()
}

fn count_rules(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

fn users_fingerprint(users: &[User]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    for u in users {
        u.name.hash(&mut h);
        u.roles.hash(&mut h);
        u.attributes.hash(&mut h);
        u.disabled.hash(&mut h);
    }
    h.finish()
}

async fn build(model: &str, policy: &str, users: &[User], path: Option<&Path>) -> Result<Enforcer> {
    let invalid = |message: String| PolicyError::InvalidPolicy {
        path: path.map(Path::to_path_buf).unwrap_or_default(),
        message,
    };
    // Check each line's shape here, so errors name the line.
    for (i, line) in policy.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let want = match fields[0] {
            "p" => 5,
            "p2" => 6,
            "p3" => 4,
            "g" => 3,
            other => {
                return Err(invalid(format!(
                    "line {}: unknown rule type \"{other}\"; use p, p2, p3 or g",
                    i + 1
                )));
            }
        };
        // A row filter's predicate may itself contain commas; it is the last field.
        if (fields[0] == "p3" && fields.len() < want) || (fields[0] != "p3" && fields.len() != want)
        {
            return Err(invalid(format!(
                "line {}: a {} rule needs {} fields, not {}",
                i + 1,
                fields[0],
                want,
                fields.len()
            )));
        }
        if fields[0] == "p" && !matches!(fields[4], "allow" | "deny") {
            return Err(invalid(format!(
                "line {}: the effect must be allow or deny, not \"{}\"",
                i + 1,
                fields[4]
            )));
        }
        if fields[0] == "p2" && !matches!(fields[4], "deny" | "mask") {
            return Err(invalid(format!(
                "line {}: a column rule is deny or mask, not \"{}\"",
                i + 1,
                fields[4]
            )));
        }
    }
    let mut text = String::new();
    for line in policy.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("p3") {
            // casbin's CSV would split the predicate at its commas: quote it.
            let mut parts = trimmed.splitn(4, ',');
            let (t, s, o, c) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            text.push_str(&format!(
                "{t},{s},{o},\"{}\"\n",
                c.trim().replace('"', "\"\"")
            ));
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    for u in users {
        for r in &u.roles {
            text.push_str(&format!("g, {}, role:{r}\n", u.name));
        }
    }
    let model = DefaultModel::from_str(model)
        .await
        .map_err(|e| invalid(format!("the model does not load: {e}")))?;
    let adapter = StringAdapter::new(text);
    Enforcer::new(model, adapter)
        .await
        .map_err(|e| invalid(format!("the policy does not load: {e}")))
}

/// One user's decisions, cached per table.
pub struct UserAccess {
    user: User,
    enforcer: Arc<Enforcer>,
    cache: Mutex<HashMap<(String, String), Arc<TableAccess>>>,
    /// Row filters and masks already turned from SQL text into expressions, by
    /// table reference, schema and text: parsed once per session and policy, not
    /// once per statement.
    exprs: Mutex<HashMap<String, datafusion::logical_expr::Expr>>,
    generation: u64,
}

impl std::fmt::Debug for UserAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAccess")
            .field("user", &self.user.name)
            .finish_non_exhaustive()
    }
}

impl UserAccess {
    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn is_admin(&self) -> bool {
        self.user.is_admin()
    }

    /// Whether the policy lets this user do `action` other than reading to
    /// `object` (`schema.table`): `release` an indicator, see official figures under
    /// embargo (`prerelease`). Admins may do everything; the public role nothing but
    /// read, whatever a policy grants it by mistake.
    pub fn may(&self, action: &str, object: &str) -> bool {
        if self.user.is_admin() {
            return true;
        }
        if self.user.is_public() || action == "read" {
            return false;
        }
        self.enforcer
            .enforce((self.user.name.as_str(), object, action))
            .unwrap_or(false)
    }

    /// What this user may do with `schema.table`.
    pub fn table(&self, schema: &str, table: &str) -> Arc<TableAccess> {
        if self.user.is_admin() {
            return Arc::new(TableAccess::everything());
        }
        let key = (schema.to_string(), table.to_string());
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return hit.clone();
        }
        let access = Arc::new(self.decide(schema, table));
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, access.clone());
        access
    }

    /// The expression for `key`, parsed by `parse` on first use.
    pub fn expr(
        &self,
        key: String,
        parse: impl FnOnce() -> datafusion::error::Result<datafusion::logical_expr::Expr>,
    ) -> datafusion::error::Result<datafusion::logical_expr::Expr> {
        if let Some(hit) = self
            .exprs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(hit.clone());
        }
        let expr = parse()?;
        let mut exprs = self.exprs.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a session that names thousands of tables starts over.
        if exprs.len() >= 1024 {
            exprs.clear();
        }
        exprs.insert(key, expr.clone());
        Ok(expr)
    }

    fn subjects(&self) -> Vec<String> {
        let mut subjects = vec![self.user.name.clone()];
        subjects.extend(
            self.enforcer
                .get_implicit_roles_for_user(&self.user.name, None),
        );
        subjects
    }

    /// The row filters of `schema.table` for this user whether or not they may read
    /// it: an indicator reads tables with its definer's rights, but its rows are still
    /// the reader's.
    pub fn row_filters(&self, schema: &str, table: &str) -> Vec<String> {
        if self.user.is_admin() {
            return vec![];
        }
        let object = format!("{schema}.{table}");
        let subjects = self.subjects();
        self.filters_of(&object, &subjects)
    }

    fn filters_of(&self, object: &str, subjects: &[String]) -> Vec<String> {
        let mut row_filters = vec![];
        for rule in self.enforcer.get_named_policy("p3") {
            if let [sub, obj, cond] = rule.as_slice()
                && subjects.iter().any(|s| s == sub)
                && casbin::function_map::key_match(object, obj)
            {
                match substitute(cond, &self.user) {
                    Ok(predicate) => row_filters.push(predicate),
                    // A filter that cannot be made for this user admits no rows:
                    // failing closed is the only safe answer.
                    Err(e) => {
                        tracing::warn!(user = %self.user.name, table = %object, "{e}; no rows pass");
                        row_filters.push("FALSE".to_string());
                    }
                }
            }
        }
        // Several filters from one grant admit a row if any holds; if a filter had
        // to be replaced by FALSE but another holds, the others still apply.
        if row_filters.len() > 1 {
            row_filters.retain(|f| f != "FALSE");
            if row_filters.is_empty() {
                row_filters.push("FALSE".into());
            }
        }
        row_filters
    }

    fn decide(&self, schema: &str, table: &str) -> TableAccess {
        let object = format!("{schema}.{table}");
        // The public role reads published statistics and nothing else, whatever a
        // policy grants it by mistake.
        if self.user.is_public() && !public_may_read(schema, table) {
            return TableAccess::default();
        }
        let readable = self
            .enforcer
            .enforce((self.user.name.as_str(), object.as_str(), "read"))
            .unwrap_or(false);
        if !readable {
            return TableAccess::default();
        }
        let subjects = self.subjects();
        let applies = |sub: &str, obj: &str| {
            subjects.iter().any(|s| s == sub) && casbin::function_map::key_match(&object, obj)
        };
        let mut columns = BTreeMap::new();
        for rule in self.enforcer.get_named_policy("p2") {
            if let [sub, obj, col, act, arg] = rule.as_slice()
                && applies(sub, obj)
            {
                let decided = match act.as_str() {
                    "deny" => ColumnRule::Deny,
                    _ => ColumnRule::Mask(match arg.to_ascii_lowercase().as_str() {
                        "hash" => Mask::Hash,
                        "null" | "" => Mask::Null,
                        _ => Mask::Expression(arg.clone()),
                    }),
                };
                // Deny wins over a mask of the same column.
                let entry = columns.entry(col.clone()).or_insert(decided.clone());
                if decided == ColumnRule::Deny {
                    *entry = ColumnRule::Deny;
                }
            }
        }
        let row_filters = self.filters_of(&object, &subjects);
        TableAccess {
            readable,
            columns,
            row_filters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram::ScramVerifier;

    fn user(name: &str, roles: &[&str], attrs: &[(&str, &str)]) -> User {
        User {
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            verifier: ScramVerifier::from_password("x", b"salt", 4096),
            disabled: false,
        }
    }

    const POLICY: &str = "
p, role:analyst, insurance.*, read, allow
p, role:analyst, health.claims, read, allow
p, role:analyst, insurance.employers, read, deny
p2, role:analyst, insurance.insured_persons, national_id, mask, hash
p2, role:analyst, insurance.insured_persons, birth_date, deny,
p3, role:provincial, insurance.*, province_code = ${user.province_code}
p3, role:provincial, health.claims, province_code = ${user.province_code} OR status = 'x, y'
";

    #[tokio::test]
    async fn deny_wins_and_default_is_deny() {
        let tehran = user(
            "tehran",
            &["analyst", "provincial"],
            &[("province_code", "23")],
        );
        let store = PolicyStore::load(None, None, std::slice::from_ref(&tehran))
            .await
            .unwrap();
        assert!(
            !store
                .for_user(&tehran)
                .table("insurance", "contributions")
                .readable,
            "no file: nothing"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.csv");
        std::fs::write(&path, POLICY).unwrap();
        let store = PolicyStore::load(Some(&path), None, std::slice::from_ref(&tehran))
            .await
            .unwrap();
        let access = store.for_user(&tehran);
        assert!(access.table("insurance", "contributions").readable);
        assert!(
            !access.table("insurance", "employers").readable,
            "deny wins"
        );
        assert!(
            !access.table("pension", "payments").readable,
            "default deny"
        );
        let persons = access.table("insurance", "insured_persons");
        assert_eq!(persons.columns["national_id"], ColumnRule::Mask(Mask::Hash));
        assert_eq!(persons.columns["birth_date"], ColumnRule::Deny);
        assert_eq!(persons.row_filters, vec!["province_code = 23".to_string()]);
        let claims = access.table("health", "claims");
        assert_eq!(
            claims.row_filters,
            vec!["province_code = 23 OR status = 'x, y'".to_string()]
        );
        let admin = user("root", &["admin"], &[]);
        assert_eq!(
            *store.for_user(&admin).table("pension", "payments"),
            TableAccess::everything()
        );
    }

    #[tokio::test]
    async fn a_missing_attribute_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.csv");
        std::fs::write(&path, POLICY).unwrap();
        let nobody = user("n", &["analyst", "provincial"], &[]);
        let store = PolicyStore::load(Some(&path), None, std::slice::from_ref(&nobody))
            .await
            .unwrap();
        assert_eq!(
            store
                .for_user(&nobody)
                .table("insurance", "contributions")
                .row_filters,
            vec!["FALSE"]
        );
    }

    #[tokio::test]
    async fn a_broken_reload_keeps_the_old_policy() {
        let u = user("a", &["analyst"], &[]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.csv");
        std::fs::write(&path, POLICY).unwrap();
        let store = PolicyStore::load(Some(&path), None, std::slice::from_ref(&u))
            .await
            .unwrap();
        std::fs::write(&path, "p, role:analyst, insurance.*, read\n").unwrap();
        store.refresh(std::slice::from_ref(&u)).await;
        let status = store.status();
        assert!(
            status.error.as_deref().unwrap_or("").contains("line 1"),
            "{status:?}"
        );
        assert!(
            store
                .for_user(&u)
                .table("insurance", "contributions")
                .readable
        );
        std::fs::write(&path, "p, role:analyst, health.*, read, allow\n").unwrap();
        store.refresh(std::slice::from_ref(&u)).await;
        assert!(store.status().error.is_none());
        assert!(
            !store
                .for_user(&u)
                .table("insurance", "contributions")
                .readable
        );
    }

    #[tokio::test]
    async fn open_sessions_follow_reloads_of_policy_and_users() {
        let u = user("a", &["analyst", "provincial"], &[("province_code", "23")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.csv");
        std::fs::write(&path, POLICY).unwrap();
        let store = Arc::new(
            PolicyStore::load(Some(&path), None, std::slice::from_ref(&u))
                .await
                .unwrap(),
        );
        let session = SessionAccess::new(store.clone(), u.clone());
        assert!(session.current().table("health", "claims").readable);
        // The user moves province: the open session's filter follows.
        let moved = user("a", &["analyst", "provincial"], &[("province_code", "7")]);
        store.refresh(std::slice::from_ref(&moved)).await;
        assert_eq!(
            session
                .current()
                .table("insurance", "contributions")
                .row_filters,
            vec!["province_code = 7".to_string()]
        );
        // The policy drops health: the open session loses it.
        std::fs::write(
            &path,
            POLICY.replace("p, role:analyst, health.claims, read, allow\n", ""),
        )
        .unwrap();
        store.refresh(std::slice::from_ref(&moved)).await;
        assert!(!session.current().table("health", "claims").readable);
        // A user removed from the users file keeps no role.
        store.refresh(&[]).await;
        assert!(
            !session
                .current()
                .table("insurance", "contributions")
                .readable
        );
    }

    #[test]
    fn attributes_become_literals() {
        let u = user(
            "o'neil",
            &[],
            &[("province_code", "23"), ("branch", "تهران-۱")],
        );
        assert_eq!(
            substitute("p = ${user.province_code}", &u).unwrap(),
            "p = 23"
        );
        assert_eq!(
            substitute("b = ${user.branch}", &u).unwrap(),
            "b = 'تهران-۱'"
        );
        assert_eq!(substitute("u = ${user.name}", &u).unwrap(), "u = 'o''neil'");
        assert!(substitute("x = ${user.missing}", &u).is_err());
        assert!(substitute("x = ${env.HOME}", &u).is_err());
    }

    #[tokio::test]
    async fn the_public_reads_published_statistics_whatever_else_it_is_granted() {
        let public = user("web", &["public"], &[("province_code", "23")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.csv");
        std::fs::write(
            &path,
            "p, role:public, *, read, allow\n\
             p3, role:public, insurance.contributions, province_code = ${user.province_code}\n",
        )
        .unwrap();
        let store = PolicyStore::load(Some(&path), None, std::slice::from_ref(&public))
            .await
            .unwrap();
        let access = store.for_user(&public);
        assert!(access.table("indicators", "active_insured").readable);
        assert!(access.table("amar", "indicator_status").readable);
        assert!(access.table("amar", "glossary").readable);
        assert!(!access.table("insurance", "contributions").readable);
        assert!(!access.table("amar", "query_log").readable);
        assert!(!access.table("amar", "validation_results").readable);
        // Row filters of the tables under an indicator apply whether or not the user
        // may read those tables.
        assert_eq!(
            access.row_filters("insurance", "contributions"),
            vec!["province_code = 23".to_string()]
        );
        let admin = user("root", &["admin", "public"], &[]);
        assert!(!admin.is_public(), "an admin is never restricted");
    }
}
