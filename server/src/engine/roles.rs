//! The users file as PostgreSQL roles, for `pg_roles` and friends, with the roles the
//! policy grants besides.

use std::sync::Arc;

use amar_policies::{PolicyStore, UserDirectory};
use async_trait::async_trait;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};

#[derive(Debug, Clone)]
pub struct UserRoles {
    users: Arc<UserDirectory>,
    policy: Arc<PolicyStore>,
}

impl UserRoles {
    pub fn new(users: Arc<UserDirectory>, policy: Arc<PolicyStore>) -> Self {
        Self { users, policy }
    }
}

#[async_trait]
impl PgCatalogContextProvider for UserRoles {
    async fn roles(&self) -> Vec<String> {
        self.users.names()
    }

    async fn role(&self, name: &str) -> Option<Role> {
        let user = self.policy.effective_user(&self.users.lookup(name)?);
        Some(Role {
            name: user.name.clone(),
            is_superuser: user.is_admin(),
            can_login: !user.disabled,
            can_create_db: false,
            can_create_role: false,
            can_create_user: false,
            can_replication: false,
            grants: vec![],
            inherited_roles: user.roles.clone(),
        })
    }
}
