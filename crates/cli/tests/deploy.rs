//! The files of `deploy/`: systemd units checked by `systemd-analyze verify`,
//! Kubernetes manifests and the compose file checked for what runbox needs.
//!
//! No Kubernetes schema validator (kubeconform, kubeval) is packaged in Debian:
//! each manifest is read as the Kubernetes API's own type (k8s-openapi), which
//! refuses wrong types and kinds, with the fields the API does not have listed
//! (serde_ignored); then what runbox needs is checked on the typed objects.
//! `scripts/kube-play.sh` (opt-in) plays the Deployments with `podman kube play`,
//! which skips Services and PodDisruptionBudgets: those are checked only here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, EnvVar, SecurityContext, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
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

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// `doc` read as the Kubernetes API's own type `T` (k8s-openapi's types of
/// Kubernetes 1.33, the oldest release it covers): a missing required field, a
/// field of the wrong type, a wrong `apiVersion` or `kind`, or a field the API
/// does not have (a misspelling the API server would drop or refuse) is an error.
fn typed<T: DeserializeOwned>(doc: &Value) -> Result<T, String> {
    let mut unknown = Vec::new();
    let object = serde_ignored::deserialize(doc.clone(), |path| unknown.push(path.to_string()))
        .map_err(|e| e.to_string())?;
    if unknown.is_empty() {
        Ok(object)
    } else {
        Err(format!("fields Kubernetes does not have: {unknown:?}"))
    }
}

/// `doc` of `file` as a valid `T`, or a panic that says why it is not one.
fn valid<T: DeserializeOwned>(file: &str, doc: &Value) -> T {
    typed(doc).unwrap_or_else(|e| panic!("{file}: not a valid {}: {e}", str_of(&doc["kind"])))
}

/// The objects of one file of `deploy/k8s`, each checked against its schema.
#[derive(Default)]
struct Manifests {
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    budgets: Vec<PodDisruptionBudget>,
}

fn manifests(file: &str) -> Manifests {
    let mut found = Manifests::default();
    for doc in documents(&deploy_dir().join("k8s").join(file)) {
        match str_of(&doc["kind"]) {
            "Deployment" => found.deployments.push(valid(file, &doc)),
            "Service" => found.services.push(valid(file, &doc)),
            "PodDisruptionBudget" => found.budgets.push(valid(file, &doc)),
            other => panic!("{file}: a kind this test does not check: {other:?}"),
        }
    }
    for name in found
        .deployments
        .iter()
        .map(|d| &d.metadata.name)
        .chain(found.services.iter().map(|s| &s.metadata.name))
        .chain(found.budgets.iter().map(|b| &b.metadata.name))
    {
        assert!(
            name.as_deref().is_some_and(|n| !n.is_empty()),
            "{file}: an object without a name"
        );
    }
    found
}

/// Whether `selector` (labels only: the manifests use no expressions) picks pods
/// labelled `labels`.
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    assert!(selector.match_expressions.is_none());
    let wanted = selector.match_labels.as_ref().expect("matchLabels");
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn pod_labels(deployment: &Deployment) -> &BTreeMap<String, String> {
    let spec = deployment.spec.as_ref().unwrap();
    spec.template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap()
}

fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a EnvVar> {
    container.env.as_ref()?.iter().find(|e| e.name == name)
}

#[test]
fn the_kustomization_lists_every_manifest() {
    let kustomization = &documents(&deploy_dir().join("k8s/kustomization.yaml"))[0];
    let mut resources: Vec<&str> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    resources.sort_unstable();
    let mut files: Vec<String> = std::fs::read_dir(deploy_dir().join("k8s"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "kustomization.yaml")
        .collect();
    files.sort_unstable();
    assert_eq!(resources, files);
}

#[test]
fn the_schema_check_catches_a_misspelling_a_wrong_type_and_a_wrong_api_version() {
    let text = std::fs::read_to_string(deploy_dir().join("k8s/api.yaml")).unwrap();
    let deployment = |text: &str| -> Result<Deployment, String> {
        let doc = serde_yaml::Deserializer::from_str(text).next().unwrap();
        typed(&Value::deserialize(doc).unwrap())
    };
    deployment(&text).expect("the manifest as it is");
    let misspelled = deployment(&text.replace("readinessProbe:", "readinesProbe:")).unwrap_err();
    assert!(misspelled.contains("readinesProbe"), "{misspelled}");
    let wrong_type = deployment(&text.replace("replicas: 2", "replicas: two")).unwrap_err();
    assert!(wrong_type.contains("invalid type"), "{wrong_type}");
    let old_api = deployment(&text.replace("apps/v1", "extensions/v1beta1")).unwrap_err();
    assert!(old_api.contains("apps/v1"), "{old_api}");
}

/// Checks one Deployment of runbox serving HTTP on `port`: the selector picks
/// the pod template, probes on `health`/`ready` at that port's number, the
/// security context docs/deploy.md describes, scrape annotations, the database
/// URL from the Secret, the data volume; returns its container.
fn check_deployment<'a>(
    deployment: &'a Deployment,
    port: i32,
    health: &str,
    ready: &str,
) -> &'a Container {
    let spec = deployment.spec.as_ref().unwrap();
    assert!(
        selects(&spec.selector, pod_labels(deployment)),
        "the selector matches the pod's labels"
    );
    let annotations = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap();
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(annotations["prometheus.io/port"], port.to_string());
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 1);
    let container = &pod.containers[0];
    assert!(container.image.as_deref().is_some_and(|i| !i.is_empty()));
    // All it has, as docs/deploy.md says: only `privileged` gives boxes a
    // writable cgroup on Kubernetes.
    assert_eq!(
        container.security_context,
        Some(SecurityContext {
            privileged: Some(true),
            ..SecurityContext::default()
        })
    );
    let ports = container.ports.as_ref().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].container_port, port);
    for (probe, path) in [
        (&container.startup_probe, health),
        (&container.liveness_probe, health),
        (&container.readiness_probe, ready),
    ] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        // A number, not the port's name: podman kube play 4.3 reads a name as 0.
        assert_eq!(get.port, IntOrString::Int(port), "probe of {path}");
    }
    let database = env_value(container, "RUNBOX_DATABASE").expect("RUNBOX_DATABASE");
    let secret = database
        .value_from
        .as_ref()
        .and_then(|from| from.secret_key_ref.as_ref())
        .expect("RUNBOX_DATABASE from a Secret");
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("runbox-database", "url")
    );
    let mounts = container.volume_mounts.as_ref().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].mount_path, "/var/lib/runbox");
    let volume = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == mounts[0].name)
        .expect("the mounted volume");
    assert!(volume.empty_dir.is_some(), "{volume:?}");
    container
}

#[test]
fn api_nodes_probe_healthz_and_readyz_behind_a_service_and_a_budget() {
    let api = manifests("api.yaml");
    assert_eq!(api.deployments.len(), 1);
    let deployment = &api.deployments[0];
    let container = check_deployment(deployment, 2358, "/healthz", "/readyz");
    assert_eq!(
        container.args.as_deref().unwrap(),
        ["serve", "--workers", "0"]
    );
    let listen = env_value(container, "RUNBOX_LISTEN").and_then(|e| e.value.as_deref());
    assert_eq!(
        listen,
        Some("0.0.0.0:2358"),
        "the probes' port is the one it listens on"
    );

    assert_eq!(api.services.len(), 1);
    let service = api.services[0].spec.as_ref().unwrap();
    assert_eq!(
        service.selector.as_ref(),
        deployment
            .spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
    );
    let container_port = &container.ports.as_ref().unwrap()[0];
    for port in service.ports.as_ref().unwrap() {
        match port.target_port.as_ref().expect("targetPort") {
            IntOrString::String(name) => assert_eq!(Some(name), container_port.name.as_ref()),
            IntOrString::Int(number) => assert_eq!(*number, container_port.container_port),
        }
    }

    let workers = manifests("worker.yaml");
    assert_eq!(api.budgets.len(), 1);
    let budget = api.budgets[0].spec.as_ref().unwrap();
    let selector = budget.selector.as_ref().unwrap();
    assert!(
        selects(selector, pod_labels(deployment)),
        "the budget covers the API pods"
    );
    assert!(
        !selects(selector, pod_labels(&workers.deployments[0])),
        "and no worker"
    );
    assert_eq!(budget.min_available, Some(IntOrString::Int(1)));
}

#[test]
fn workers_probe_their_health_port_under_a_budget() {
    let workers = manifests("worker.yaml");
    assert_eq!(workers.deployments.len(), 1);
    assert!(workers.services.is_empty(), "workers take no traffic");
    let deployment = &workers.deployments[0];
    let container = check_deployment(deployment, 2359, "/health", "/ready");
    assert_eq!(
        container.args.as_deref().unwrap(),
        ["worker", "--listen", "0.0.0.0:2359"],
        "the probes' port is the one it listens on"
    );

    let api = manifests("api.yaml");
    assert_eq!(workers.budgets.len(), 1);
    let budget = workers.budgets[0].spec.as_ref().unwrap();
    let selector = budget.selector.as_ref().unwrap();
    assert!(
        selects(selector, pod_labels(deployment)),
        "the budget covers the workers"
    );
    assert!(
        !selects(selector, pod_labels(&api.deployments[0])),
        "and no API pod"
    );
    assert_eq!(budget.max_unavailable, Some(IntOrString::Int(1)));
}

#[test]
fn docs_describe_the_security_context_the_manifests_have() {
    let docs = std::fs::read_to_string(deploy_dir().join("../docs/deploy.md")).unwrap();
    let kubernetes = docs
        .split("\n## ")
        .find(|section| section.starts_with("Kubernetes"))
        .expect("a Kubernetes section in docs/deploy.md");
    assert!(
        kubernetes.contains("Both run `privileged: true`"),
        "{kubernetes}"
    );
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
