//! Opening a source of any built-in kind from its `[[source]]` config: the one place
//! that knows every connector, so the contract (`source.rs`) needs none of them.

use std::sync::Arc;

use crate::config::{Dialect, Mode, SourceConfig, SourceKind};
use crate::error::Result;
use crate::source::Source;

/// Opens a source of any built-in kind from its typed config.
pub async fn open_source(config: &SourceConfig) -> Result<Arc<dyn Source>> {
    match &config.kind {
        SourceKind::Sqlite(options) => Ok(Arc::new(crate::sqlite::SqliteSource::open(
            &config.name,
            config.mode,
            options.clone(),
        )?)),
        SourceKind::Files(options) => Ok(Arc::new(crate::files::FilesSource::open(
            &config.name,
            config.mode,
            options.clone(),
        )?)),
        SourceKind::Drop(options) => Ok(Arc::new(crate::drop::DropSource::open(
            &config.name,
            options.clone(),
        )?)),
        SourceKind::Postgres(options) if config.mode == Mode::Snapshot => Ok(Arc::new(
            crate::snapshot::SnapshotSource::open(&config.name, Dialect::Postgres, options.clone())
                .await?,
        )),
        SourceKind::Mysql(options) if config.mode == Mode::Snapshot => Ok(Arc::new(
            crate::snapshot::SnapshotSource::open(&config.name, Dialect::Mysql, options.clone())
                .await?,
        )),
        SourceKind::Postgres(options) => Ok(Arc::new(
            crate::database::DatabaseSource::open(
                &config.name,
                Dialect::Postgres,
                config.mode,
                options.clone(),
            )
            .await,
        )),
        SourceKind::Plugin(options) => Ok(Arc::new(crate::plugin::PluginSource::open(
            &config.name,
            options.clone(),
        ))),
        SourceKind::Mysql(options) => Ok(Arc::new(
            crate::database::DatabaseSource::open(
                &config.name,
                Dialect::Mysql,
                config.mode,
                options.clone(),
            )
            .await,
        )),
    }
}
