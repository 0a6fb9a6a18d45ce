//! The files of `deploy/`: systemd units checked by `systemd-analyze verify`,
//! Kubernetes manifests and the compose file checked for what runbox needs.
//!
//! No Kubernetes schema validator (kubeconform, kubeval) is packaged in Debian,
//! so the manifests are parsed with serde_yaml and their required fields, probes
//! and security context checked here; `podman kube play` runs pods but ignores
//! Services and PodDisruptionBudgets.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

mod support;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

const UNITS: &[&str] = &[
    "runbox.service",
    "runbox-api.service",
    "runbox-worker.service",
];

/// `systemd-analyze verify` on a copy of `unit` whose ExecStart names the binary
/// under test (verify checks that the command exists); its combined output.
fn verify(text: &str, name: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(
        &path,
        text.replace("/usr/local/bin/runbox", support::runbox_binary()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze runs (apt-get install systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.trim().is_empty(), text)
}

#[test]
fn every_unit_passes_systemd_analyze_verify() {
    for unit in UNITS {
        let text = std::fs::read_to_string(deploy_dir().join("systemd").join(unit)).unwrap();
        let (ok, output) = verify(&text, unit);
        assert!(ok, "{unit}: {output}");
    }
}

#[test]
fn systemd_analyze_verify_catches_a_misspelled_setting() {
    let text = std::fs::read_to_string(deploy_dir().join("systemd/runbox.service")).unwrap();
    let (ok, output) = verify(
        &text.replace("Delegate=yes", "Delgate=yes"),
        "runbox.service",
    );
    assert!(!ok, "{output}");
    assert!(output.contains("Unknown key"), "{output}");
}

#[test]
fn every_unit_delegates_its_cgroup_and_survives_a_box_oom_kill() {
    for unit in UNITS {
        let text = std::fs::read_to_string(deploy_dir().join("systemd").join(unit)).unwrap();
        let settings: Vec<&str> = text.lines().map(str::trim).collect();
        for needed in ["Delegate=yes", "OOMPolicy=continue", "TasksMax=infinity"] {
            assert!(settings.contains(&needed), "{unit} lacks {needed}");
        }
        // Each of these mounts over /proc, hides the cgroup file system or
        // forbids what boxes are made of.
        for breaking in [
            "ProtectKernelTunables=",
            "ProtectKernelLogs=",
            "ProtectProc=",
            "ProtectControlGroups=",
            "PrivateDevices=",
            "ProtectClock=",
            "RestrictNamespaces=",
            "MemoryDenyWriteExecute=",
            "CapabilityBoundingSet=",
            "SystemCallFilter=",
        ] {
            assert!(
                !settings.iter().any(|s| s.starts_with(breaking)),
                "{unit} sets {breaking}, which breaks boxes"
            );
        }
    }
}

/// Every document of a multi-document YAML file, with merge keys (`<<:`) applied.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value = Value::deserialize(doc).unwrap();
            value.apply_merge().unwrap();
            value
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[test]
fn every_manifest_has_an_api_version_a_kind_and_a_name() {
    for file in ["api.yaml", "worker.yaml"] {
        for doc in documents(&deploy_dir().join("k8s").join(file)) {
            assert!(!str_of(&doc["apiVersion"]).is_empty(), "{file}: {doc:?}");
            assert!(!str_of(&doc["kind"]).is_empty(), "{file}: {doc:?}");
            assert!(
                !str_of(&doc["metadata"]["name"]).is_empty(),
                "{file}: {doc:?}"
            );
        }
    }
    let kustomization = documents(&deploy_dir().join("k8s/kustomization.yaml"));
    let resources: Vec<&str> = kustomization[0]["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    assert_eq!(resources, ["api.yaml", "worker.yaml"]);
}

/// Checks one Deployment of runbox: selector, probes on `health`/`ready`, the
/// security context, scrape annotations; returns its container.
fn check_deployment<'a>(deployment: &'a Value, health: &str, ready: &str) -> &'a Value {
    let spec = &deployment["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    for (key, value) in spec["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(&labels[key], value, "the selector matches the pod's labels");
    }
    let annotations = &spec["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    let containers = spec["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert!(!str_of(&container["image"]).is_empty());
    assert_eq!(container["securityContext"]["privileged"], true);
    assert_eq!(
        str_of(&container["livenessProbe"]["httpGet"]["path"]),
        health
    );
    assert_eq!(
        str_of(&container["startupProbe"]["httpGet"]["path"]),
        health
    );
    assert_eq!(
        str_of(&container["readinessProbe"]["httpGet"]["path"]),
        ready
    );
    let port_names: Vec<&str> = container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| str_of(&p["name"]))
        .collect();
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let port = str_of(&container[probe]["httpGet"]["port"]);
        assert!(port_names.contains(&port), "{probe} names port {port}");
    }
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/var/lib/runbox");
    let env: Vec<&str> = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| str_of(&e["name"]))
        .collect();
    assert!(env.contains(&"RUNBOX_DATABASE"), "{env:?}");
    container
}

#[test]
fn api_nodes_probe_healthz_and_readyz_behind_a_service_and_a_budget() {
    let docs = documents(&deploy_dir().join("k8s/api.yaml"));
    let deployment = of_kind(&docs, "Deployment");
    assert_eq!(deployment.len(), 1);
    let container = check_deployment(deployment[0], "/healthz", "/readyz");
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    assert_eq!(args, ["serve", "--workers", "0"]);
    let service = of_kind(&docs, "Service");
    assert_eq!(service.len(), 1);
    assert_eq!(
        service[0]["spec"]["selector"],
        deployment[0]["spec"]["selector"]["matchLabels"]
    );
    let budget = of_kind(&docs, "PodDisruptionBudget");
    assert_eq!(budget.len(), 1);
    assert_eq!(
        budget[0]["spec"]["selector"]["matchLabels"],
        deployment[0]["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn workers_probe_their_health_port_under_a_budget() {
    let docs = documents(&deploy_dir().join("k8s/worker.yaml"));
    let deployment = of_kind(&docs, "Deployment");
    assert_eq!(deployment.len(), 1);
    let container = check_deployment(deployment[0], "/health", "/ready");
    assert_eq!(container["args"][0], "worker");
    assert_eq!(of_kind(&docs, "PodDisruptionBudget").len(), 1);
}

#[test]
fn the_compose_fleet_is_postgres_one_api_node_and_two_workers() {
    let compose = &documents(&deploy_dir().join("compose.yaml"))[0];
    let services = compose["services"].as_mapping().unwrap();
    let names: Vec<&str> = services.keys().map(str_of).collect();
    assert_eq!(names, ["postgres", "api", "worker-1", "worker-2"]);
    let api = &compose["services"]["api"];
    assert_eq!(api["command"][0], "serve");
    for worker in ["worker-1", "worker-2"] {
        let worker = &compose["services"][worker];
        assert_eq!(worker["command"][0], "worker");
        assert!(
            str_of(&worker["environment"]["RUNBOX_DATABASE"]).starts_with("postgres://"),
            "{worker:?}"
        );
    }
    // The merge key gives every runbox service the least privilege boxes need.
    for name in ["api", "worker-1", "worker-2"] {
        let service = &compose["services"][name];
        let caps = service["cap_add"].as_sequence().expect("cap_add (merged)");
        assert!(caps.iter().any(|c| c == "SYS_ADMIN"), "{name}");
        assert!(service["privileged"].is_null(), "{name} is not privileged");
        let volumes: Vec<&str> = service["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(str_of)
            .collect();
        assert!(
            volumes.contains(&"/sys/fs/cgroup:/sys/fs/cgroup:rw"),
            "{name}: {volumes:?}"
        );
        assert!(
            volumes.iter().any(|v| v.ends_with(":/var/lib/runbox")),
            "{name}: {volumes:?}"
        );
    }
}
