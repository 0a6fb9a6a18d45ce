//! Piston v2's REST API on a real `runbox serve`.

mod compat_support;

use compat_support::{Server, json};

#[test]
fn runtimes_list_installed_languages_with_piston_names() {
    let server = Server::start(&[]);
    let (status, runtimes) = server.get("/api/v2/runtimes", &[]);
    assert_eq!(status, 200);
    let cpp = runtimes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["language"] == "c++")
        .expect("c++ is listed");
    assert_eq!(cpp["runtime"], "gcc");
    assert!(cpp["aliases"].as_array().unwrap().contains(&json!("cpp")));
    assert!(
        runtimes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["language"] == "python")
    );
}

#[test]
fn a_compiled_program_answers_compile_and_run_stages() {
    let server = Server::start(&[]);
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "c++", "version": "*", "files": [{"name": "main.cpp",
            "content": "#include <iostream>\nint main(int c, char **v){std::string s; std::cin >> s; std::cout << s << v[1]; std::cerr << \"E\"; return 4;}"}],
            "stdin": "in", "args": ["A"]}),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["language"], "c++");
    assert_eq!(answer["compile"]["code"], 0);
    assert_eq!(answer["run"]["stdout"], "inA");
    assert_eq!(answer["run"]["stderr"], "E");
    assert_eq!(answer["run"]["output"], "inAE");
    assert_eq!(answer["run"]["code"], 4);
    assert_eq!(answer["run"]["status"], "RE");
    assert!(
        answer["run"]["memory"].as_u64().unwrap() > 100 * 1024,
        "memory is in bytes: {answer}"
    );
}

#[test]
fn files_in_base64_and_hex_and_semver_selectors_are_accepted() {
    let server = Server::start(&[]);
    for (content, encoding) in [
        ("cHJpbnQoJ2hpJyk=", "base64"),
        ("7072696e7428276869272920", "hex"),
    ] {
        let (status, answer) = server.post(
            "/api/v2/execute",
            &json!({"language": "py", "version": ">=3.0 <4", "files": [{"content": content, "encoding": encoding}]}),
            &[],
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["run"]["stdout"], "hi\n", "{encoding}");
        assert_eq!(answer["run"]["status"], json!(null));
    }
}

#[test]
fn unknown_runtimes_and_limits_above_the_maximum_get_piston_messages() {
    let server = Server::start(&[]);
    let file = json!([{"content": "print(1)"}]);
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "python", "version": "2.7", "files": file}),
        &[],
    );
    assert_eq!(
        (status, answer),
        (400, json!({"message": "python-2.7 runtime is unknown"}))
    );
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "python", "version": "3", "files": file, "run_timeout": 999_999}),
        &[],
    );
    assert_eq!(
        (status, answer),
        (
            400,
            json!({"message": "run_timeout cannot exceed the configured limit of 60000"})
        )
    );
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "python", "files": file}),
        &[],
    );
    assert_eq!(
        (status, answer),
        (400, json!({"message": "version is required as a string"}))
    );
}

#[test]
fn a_timeout_is_status_to_and_a_body_over_100_kb_is_accepted() {
    let server = Server::start(&[]);
    let padding = "#".repeat(200 * 1024);
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "python", "version": "3", "run_timeout": 500,
            "files": [{"content": format!("{padding}\nwhile True: pass\n")}]}),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["run"]["status"], "TO");
    assert_eq!(answer["run"]["signal"], "SIGKILL");
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let server = Server::start(&[("RUNBOX_QUEUE_CAPACITY", "1")]);
    let slow = json!({"language": "python", "version": "3", "run_timeout": 3000, "files": [{"content": "import time; time.sleep(2)"}]});
    let url = format!("{}/api/v2/execute", server.url);
    let first = std::thread::spawn({
        let slow = slow.clone();
        move || {
            reqwest::blocking::Client::new()
                .post(url)
                .json(&slow)
                .send()
                .map(|r| r.status().as_u16())
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    let response = server
        .request(reqwest::Method::POST, "/api/v2/execute", &[])
        .json(&slow)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(first.join().unwrap().unwrap(), 200);
}
