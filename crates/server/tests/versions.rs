//! Several versions of one language through the APIs: the native languages
//! list, a native `version`, and Piston's runtimes and semver selection. The
//! trixie runtime is the one the engine's tests build and keep under
//! `<target>/tmp/test-runtimes/store` (built here when missing).

mod support;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use runbox_engine::runtime::RuntimeStore;
use serde_json::json;
use support::App;

const RUNTIME: &str = "trixie-python3";

fn store_with_trixie() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-runtimes/store");
    RuntimeStore::open(&dir)
        .and_then(|store| store.ensure_debian(RUNTIME, "trixie", &["python3".into()], &mut |_| {}))
        .unwrap_or_else(|e| {
            panic!("cannot build the trixie runtime (network to deb.debian.org?): {e}")
        });
    dir
}

async fn app() -> (App, tempfile::TempDir) {
    let runtimes = store_with_trixie();
    let languages = tempfile::tempdir().unwrap();
    std::fs::write(
        languages.path().join("python@trixie.toml"),
        format!("id = \"python\"\nruntime = \"{RUNTIME}\"\npackages = [\"python3\"]\n"),
    )
    .unwrap();
    let dir = languages.path().to_path_buf();
    let app = App::start_with(move |c| {
        c.languages_dir = Some(dir);
        c.runtimes_dir = Some(runtimes);
    })
    .await;
    (app, languages)
}

const PRINT_VERSION: &str = "import sys; print('%d.%d' % sys.version_info[:2])";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_native_api_lists_and_runs_each_version() {
    let (app, _languages) = app().await;
    let (_, languages) = app.get("/api/v1/languages").await;
    let pythons: Vec<_> = languages
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["id"] == "python" && l["installed"] == true)
        .map(|l| {
            (
                l["runtime"].as_str().unwrap().to_string(),
                l["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(pythons.len(), 2, "{pythons:?}");
    for (wanted, printed) in [("3.13", "3.13"), ("3.11", "3.11"), ("^3.12", "3.13")] {
        let (status, body) = app
            .post(
                "/api/v1/execute",
                json!({"language": "python", "version": wanted, "source": PRINT_VERSION}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["run"]["stdout"],
            format!("{printed}\n"),
            "{wanted}: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn piston_lists_every_version_and_its_star_is_the_highest_cpython() {
    let (app, _languages) = app().await;
    let (_, runtimes) = app.get("/api/v2/runtimes").await;
    let pythons: Vec<_> = runtimes
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["language"] == "python")
        .collect();
    assert_eq!(pythons.len(), 2, "{pythons:?}");
    assert!(
        runtimes
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["runtime"] != "pypy"),
        "PyPy is a language of its own"
    );
    for (wanted, printed) in [("*", "3.13"), ("3.11", "3.11"), ("3.x", "3.13")] {
        let (status, body) = app
            .post(
                "/api/v2/execute",
                json!({"language": "python", "version": wanted, "files": [{"content": PRINT_VERSION}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["run"]["stdout"],
            format!("{printed}\n"),
            "{wanted}: {body}"
        );
        assert!(
            body["version"].as_str().unwrap().starts_with(printed),
            "{body}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn judge0_ids_run_the_version_judge0_gives_them_or_the_closest() {
    let (app, _languages) = app().await;
    for (id, printed) in [(109, "3.13"), (92, "3.11"), (71, "3.11"), (100, "3.13")] {
        let (status, body) = app
            .post(
                "/submissions?wait=true",
                json!({"language_id": id, "source_code": PRINT_VERSION}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["stdout"], format!("{printed}\n"), "id {id}: {body}");
    }
    let (_, listed) = app.get("/languages").await;
    let pythons: Vec<(u64, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| {
            let name = l["name"].as_str().unwrap();
            name.starts_with("Python (") && !name.contains("PyPy")
        })
        .map(|l| {
            (
                l["id"].as_u64().unwrap(),
                l["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The id the official SDK picks (71, Judge0's 3.8.1) says what runs it, and
    // trixie's 3.13 is listed once, under the id that means 3.13.
    assert_eq!(pythons.len(), 2, "{pythons:?}");
    assert!(
        pythons
            .iter()
            .any(|(id, name)| *id == 71 && name.contains("for 3.8.1")),
        "{pythons:?}"
    );
    assert!(
        pythons
            .iter()
            .any(|(id, name)| *id == 109 && name.starts_with("Python (3.13")),
        "{pythons:?}"
    );
    app.stop().await;
}
