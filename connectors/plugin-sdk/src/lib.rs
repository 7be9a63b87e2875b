//! What an Amar connector plugin depends on.
//!
//! A plugin is a shared library (`crate-type = ["cdylib"]`) that Amar loads at run
//! time. It exports one symbol, [`ENTRY_SYMBOL`], a static [`PluginEntry`] made by
//! [`export_plugin!`]. Through it Amar reads, before it calls anything: a magic
//! number, the plugin ABI version and the DataFusion version the plugin was built
//! with. Only when those match does it call the plugin, to describe itself
//! ([`PluginInfo`]: name, version, the options it takes) and to open a source from a
//! `[[source]]`'s options. A source is a DataFusion
//! [`SchemaProvider`](datafusion::catalog::SchemaProvider) whose tables cross the
//! boundary as `datafusion-ffi` table providers: scans receive the projection,
//! filters and limit, and record batches come back through the Arrow C data
//! interface, without copies.
//!
//! A plugin author implements [`Plugin`] and writes `export_plugin!(MyPlugin);`.
//! Everything the plugin gives Amar is wrapped by this crate so that a panic
//! anywhere in the plugin's code (opening, listing tables, planning a scan,
//! producing a batch) becomes an error naming the plugin; it never unwinds across
//! the C boundary, which would abort the server.
//!
//! Amar uses this crate too, for the ABI types and [`PluginInfo`]; nothing here
//! knows about Amar's server.

mod guard;
mod options;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use datafusion::catalog::SchemaProvider;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::schema_provider::FFI_SchemaProvider;
use datafusion_ffi::util::FFI_Result;
use serde::{Deserialize, Serialize};
use stabby::string::String as SString;

pub use datafusion;
pub use datafusion_ffi;
pub use guard::panic_message;
pub use options::{OptionKind, OptionSpec, Options};

/// The version of the plugin ABI: the layout of [`PluginEntry`] after its frozen
/// header, and the meaning of the JSON documents exchanged through it. Amar loads
/// only plugins built for the same ABI version.
pub const ABI_VERSION: u32 = 1;

/// The first bytes of every [`PluginEntry`], in every ABI version.
pub const MAGIC: [u8; 8] = *b"AMARPLUG";

/// The symbol every plugin exports.
pub const ENTRY_SYMBOL: &str = "AMAR_PLUGIN";

/// The DataFusion release the plugin (or Amar) is built with. Plugins and Amar must
/// share the major version: `datafusion-ffi` keeps its structures stable within one.
pub const DATAFUSION_VERSION: &str = datafusion::DATAFUSION_VERSION;

/// Arrow field metadata key under which a plugin gives a column's comment (shown by
/// psql's `\d+` and `col_description`).
pub const COMMENT_KEY: &str = "amar.comment";

/// A `'static` string by pointer and length, readable from any ABI version.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StaticStr {
    ptr: *const u8,
    len: usize,
}

impl StaticStr {
    pub const fn new(s: &'static str) -> Self {
        StaticStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The string, if it is plausible UTF-8 of a sane length.
    ///
    /// # Safety
    /// `self` must come from a loaded library's [`PluginEntry`] header (or from
    /// [`StaticStr::new`]), whose memory stays mapped while this is read.
    pub unsafe fn read(&self) -> Option<&'static str> {
        if self.ptr.is_null() || self.len > 256 {
            return None;
        }
        // SAFETY: the caller guarantees the pointer and length come from a
        // `&'static str` in a library that stays loaded.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        std::str::from_utf8(bytes).ok()
    }
}

/// What a plugin exports under [`ENTRY_SYMBOL`].
///
/// The first three fields are the frozen header: they keep their place and meaning
/// in every ABI version, so that Amar can tell a plugin built for another version
/// and refuse it without touching anything else.
#[repr(C)]
pub struct PluginEntry {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`] of the SDK the plugin was built with.
    pub abi_version: u32,
    /// [`DATAFUSION_VERSION`] of the SDK the plugin was built with.
    pub datafusion_version: StaticStr,
    /// ABI 1: the plugin's [`PluginInfo`], as JSON.
    pub describe: unsafe extern "C" fn() -> FFI_Result<SString>,
    /// ABI 1: opens a source. `request` is an [`OpenRequest`] as JSON; `task_ctx`
    /// lets the plugin decode the filter expressions Amar sends with each scan.
    pub open: unsafe extern "C" fn(
        request: SString,
        task_ctx: FFI_TaskContextProvider,
    ) -> FFI_Result<FFI_SchemaProvider>,
}

// SAFETY: the entry holds only function pointers and a pointer to a `'static str`.
unsafe impl Sync for PluginEntry {}

impl PluginEntry {
    /// The entry for plugin `P`; used by [`export_plugin!`].
    pub const fn new<P: Plugin>() -> Self {
        PluginEntry {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            datafusion_version: StaticStr::new(DATAFUSION_VERSION),
            describe: describe::<P>,
            open: open::<P>,
        }
    }
}

/// What a plugin says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PluginInfo {
    /// A short name, e.g. `fixed-width`.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line on what it connects to.
    pub description: String,
    /// The options a `[[source]]` of this plugin takes (its config schema).
    pub options: Vec<OptionSpec>,
}

/// What Amar sends to open a source: its name and its options, already checked
/// against [`PluginInfo::options`] (paths made absolute).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenRequest {
    pub source: String,
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// A connector plugin. Implement it on a unit struct and export it with
/// [`export_plugin!`].
pub trait Plugin: 'static {
    /// Name, version, description and the options the plugin takes.
    fn info() -> PluginInfo;

    /// Opens the source named `source` with these options. The schema's tables are
    /// what users see inside the source. Runs inside the plugin's own Tokio runtime.
    fn open(source: &str, options: &Options) -> Result<Arc<dyn SchemaProvider>, String>;
}

/// Exports a [`Plugin`] as this library's [`ENTRY_SYMBOL`].
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[unsafe(no_mangle)]
        pub static AMAR_PLUGIN: $crate::PluginEntry = $crate::PluginEntry::new::<$plugin>();
    };
}

/// The plugin's own Tokio runtime. A plugin has its own copy of Tokio, which does
/// not see the server's runtime; `datafusion-ffi` enters this one whenever Amar
/// polls a stream or a future of the plugin.
fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("amar-plugin")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the plugin's runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

unsafe extern "C" fn describe<P: Plugin>() -> FFI_Result<SString> {
    match catch_unwind(P::info) {
        Ok(info) => match serde_json::to_string(&info) {
            Ok(json) => FFI_Result::Ok(json.as_str().into()),
            Err(e) => FFI_Result::Err(format!("cannot describe the plugin: {e}").as_str().into()),
        },
        Err(panic) => FFI_Result::Err(
            format!(
                "the plugin panicked describing itself: {}",
                panic_message(&*panic)
            )
            .as_str()
            .into(),
        ),
    }
}

unsafe extern "C" fn open<P: Plugin>(
    request: SString,
    task_ctx: FFI_TaskContextProvider,
) -> FFI_Result<FFI_SchemaProvider> {
    let opened = catch_unwind(AssertUnwindSafe(
        || -> Result<FFI_SchemaProvider, String> {
            let name = P::info().name;
            let request: OpenRequest = serde_json::from_str(request.as_str())
                .map_err(|e| format!("cannot read the open request: {e}"))?;
            let runtime = runtime()?;
            let options = Options::new(request.options);
            let schema = {
                let _entered = runtime.enter();
                P::open(&request.source, &options)?
            };
            let guarded: Arc<dyn SchemaProvider> =
                Arc::new(guard::GuardedSchema::new(name, schema));
            Ok(FFI_SchemaProvider::new(
                guarded,
                Some(runtime.handle().clone()),
                task_ctx,
                None,
            ))
        },
    ));
    match opened {
        Ok(Ok(schema)) => FFI_Result::Ok(schema),
        Ok(Err(message)) => FFI_Result::Err(message.as_str().into()),
        Err(panic) => FFI_Result::Err(
            format!(
                "the plugin panicked opening the source: {}",
                panic_message(&*panic)
            )
            .as_str()
            .into(),
        ),
    }
}

/// The four [`ExecutionPlan`](datafusion::physical_plan::ExecutionPlan) methods every
/// leaf plan (a scan: no children, no expressions of its own) writes the same way:
/// `children`, `apply_expressions`, `replace_children` and `with_new_children`. Write
/// `amar_plugin_sdk::leaf_plan_methods!();` inside the `impl ExecutionPlan` block,
/// beside `name`, `properties` and `execute`.
#[macro_export]
macro_rules! leaf_plan_methods {
    () => {
        fn children(
            &self,
        ) -> ::std::vec::Vec<&::std::sync::Arc<dyn $crate::datafusion::physical_plan::ExecutionPlan>>
        {
            ::std::vec::Vec::new()
        }

        fn apply_expressions(
            &self,
            _f: &mut dyn FnMut(
                &::std::sync::Arc<dyn $crate::datafusion::physical_expr::PhysicalExpr>,
            ) -> $crate::datafusion::common::Result<
                $crate::datafusion::common::tree_node::TreeNodeRecursion,
            >,
        ) -> $crate::datafusion::common::Result<$crate::datafusion::common::tree_node::TreeNodeRecursion>
        {
            Ok($crate::datafusion::common::tree_node::TreeNodeRecursion::Continue)
        }

        fn replace_children(
            self: ::std::sync::Arc<Self>,
            _children: ::std::vec::Vec<::std::sync::Arc<dyn $crate::datafusion::physical_plan::ExecutionPlan>>,
            _options: $crate::datafusion::physical_plan::ReplaceChildrenOptions,
        ) -> $crate::datafusion::common::Result<
            ::std::sync::Arc<dyn $crate::datafusion::physical_plan::ExecutionPlan>,
        > {
            Ok(self)
        }

        fn with_new_children(
            self: ::std::sync::Arc<Self>,
            children: ::std::vec::Vec<::std::sync::Arc<dyn $crate::datafusion::physical_plan::ExecutionPlan>>,
        ) -> $crate::datafusion::common::Result<
            ::std::sync::Arc<dyn $crate::datafusion::physical_plan::ExecutionPlan>,
        > {
            self.replace_children(
                children,
                $crate::datafusion::physical_plan::ReplaceChildrenOptions::new(
                    $crate::datafusion::physical_plan::ChildrenPropertiesMode::Recompute,
                ),
            )
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_datafusion_version_is_the_one_linked() {
        let major: u64 = DATAFUSION_VERSION
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap();
        assert_eq!(major, datafusion_ffi::version());
    }

    #[test]
    fn a_static_str_reads_back_and_refuses_absurd_lengths() {
        let s = StaticStr::new("55.2.0");
        assert_eq!(unsafe { s.read() }, Some("55.2.0"));
        let absurd = StaticStr {
            ptr: s.ptr,
            len: 1 << 40,
        };
        assert_eq!(unsafe { absurd.read() }, None);
    }
}
