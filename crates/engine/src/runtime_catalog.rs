//! The catalog as the runtime store has it now: its runtime entries point at
//! the trees installed in the store, and follow the store when an operator adds
//! or removes a runtime while the engine serves (`runbox runtimes add` beside a
//! running `runbox serve` needs no restart).

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::catalog::Catalog;
use crate::runtime::RuntimeStore;

/// How often the store's directory is looked at again: one `stat`, so cheap,
/// but not once per request under load.
const RECHECK: Duration = Duration::from_secs(1);

/// The catalog, kept in step with a runtime store.
#[derive(Debug)]
pub(crate) struct RuntimeCatalog {
    /// The catalog as loaded, its runtime entries pointing nowhere.
    base: Catalog,
    store: Option<RuntimeStore>,
    current: RwLock<Arc<Catalog>>,
    seen: Mutex<Seen>,
}

/// When the store was last looked at, and what its directory said then.
#[derive(Debug)]
struct Seen {
    at: Instant,
    /// The store directory's modification time: adding and removing a runtime
    /// both rename an entry into or out of it, which changes it.
    stamp: Option<SystemTime>,
}

impl RuntimeCatalog {
    /// `base` with its runtime entries found in `store`.
    pub(crate) fn new(base: Catalog, store: Option<RuntimeStore>) -> RuntimeCatalog {
        let stamp = store.as_ref().and_then(|s| stamp_of(s.dir()));
        let current = RwLock::new(Arc::new(resolve(&base, store.as_ref())));
        RuntimeCatalog {
            base,
            store,
            current,
            seen: Mutex::new(Seen {
                at: Instant::now(),
                stamp,
            }),
        }
    }

    /// The catalog now: looked up again when the store changed since the last
    /// look (at most once per [`RECHECK`]).
    pub(crate) fn get(&self) -> Arc<Catalog> {
        if let Some(store) = &self.store {
            self.refresh_if_changed(store);
        }
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn refresh_if_changed(&self, store: &RuntimeStore) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.at.elapsed() < RECHECK {
            return;
        }
        seen.at = Instant::now();
        let stamp = stamp_of(store.dir());
        if stamp == seen.stamp {
            return;
        }
        seen.stamp = stamp;
        let fresh = Arc::new(resolve(&self.base, Some(store)));
        tracing::info!("the runtime store changed: languages of runtimes looked up again");
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
    }
}

/// `base` with each runtime entry's tree and digest, when its runtime is installed.
fn resolve(base: &Catalog, store: Option<&RuntimeStore>) -> Catalog {
    base.with_runtimes(|name| {
        let runtime = store?.get(name).ok()?;
        Some((runtime.root, runtime.manifest.digest))
    })
}

fn stamp_of(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}
