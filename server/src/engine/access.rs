//! A user's policy decisions as the catalog's notion of what they may see.

use std::sync::Arc;

use amar_catalog::visible::Visibility;
use amar_policies::SessionAccess;
use amar_policies::enforce::{hidden_columns, readable};

#[derive(Debug)]
pub struct PolicyVisibility(pub Arc<SessionAccess>);

impl Visibility for PolicyVisibility {
    fn sees_everything(&self) -> bool {
        self.0.current().is_admin()
    }

    fn table_visible(&self, schema: &str, table: &str) -> bool {
        readable(&self.0.current(), schema, table)
    }

    fn hidden_columns(&self, schema: &str, table: &str) -> Vec<String> {
        hidden_columns(&self.0.current(), schema, table)
    }

    fn sees_all_rows(&self, schema: &str, table: &str) -> bool {
        let access = self.0.current();
        if access.is_admin() {
            return true;
        }
        let decision = access.table(schema, table);
        readable(&access, schema, table)
            && decision.row_filters.is_empty()
            && decision.columns.is_empty()
    }

    fn disclosure_control(&self) -> bool {
        self.0.current().user().is_public()
    }

    fn allowed(&self, action: &str, schema: &str, table: &str) -> bool {
        self.0.current().may(action, &format!("{schema}.{table}"))
    }

    fn computed_here(&self, schema: &str, table: &str) -> bool {
        let access = self.0.current();
        !access.is_admin()
            && access
                .table(schema, table)
                .columns
                .values()
                .any(|rule| matches!(rule, amar_policies::ColumnRule::Mask(_)))
    }
}
