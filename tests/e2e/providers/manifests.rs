//! The shipped deployment files: every Kubernetes manifest is read into
//! the k8s-openapi type of its kind and must come back out unchanged (a
//! field the type does not know, a typo, would be dropped on the way and
//! fail the comparison); the RBAC rules grant exactly what the code uses;
//! the Deployment, its ConfigMap and the image's config agree.

use std::collections::BTreeSet;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use scalewise_providers::targets::kubernetes::API_USE;
use serde_json::Value;

fn manifests() -> Vec<(PathBuf, Value)> {
    let dir = scalewise_e2e::root().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "yaml") && !p.ends_with("kustomization.yaml")).collect();
    files.sort();
    assert!(files.len() >= 5, "manifests in {}: {files:?}", dir.display());
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        out.extend(docs.into_iter().filter(|d| !d.is_null()).map(|d| (f.clone(), d)));
    }
    out
}

/// Paths present in `original` but not in `back` (what the type dropped),
/// or whose values differ.
fn differences(original: &Value, back: &Value, at: &str, out: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => differences(v, w, &format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}: unknown field")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                differences(v, w, &format!("{at}[{i}]"), out);
            }
        }
        (a, b) if a != b => out.push(format!("{at}: {a} came back as {b}")),
        _ => {}
    }
}

fn through<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(&typed).unwrap())
}

/// Read `doc` into the type of its kind; the problems, if any.
fn check(doc: &Value) -> Vec<String> {
    let back = match doc["kind"].as_str().unwrap_or("") {
        "Namespace" => through::<Namespace>(doc),
        "ServiceAccount" => through::<ServiceAccount>(doc),
        "Role" => through::<Role>(doc),
        "RoleBinding" => through::<RoleBinding>(doc),
        "ConfigMap" => through::<ConfigMap>(doc),
        "PersistentVolumeClaim" => through::<PersistentVolumeClaim>(doc),
        "Deployment" => through::<Deployment>(doc),
        "Service" => through::<Service>(doc),
        other => Err(format!("no check for kind `{other}`: add it here")),
    };
    match back {
        Err(e) => vec![e],
        Ok(back) => {
            let mut out = Vec::new();
            differences(doc, &back, "", &mut out);
            out
        }
    }
}

#[test]
fn every_manifest_reads_into_its_k8s_openapi_type_with_nothing_unknown() {
    for (file, doc) in manifests() {
        let problems = check(&doc);
        assert!(problems.is_empty(), "{} ({}): {problems:?}", file.display(), doc["kind"]);
    }
    // The check itself catches a typo.
    let (_, mut deployment) = manifests().into_iter().find(|(_, d)| d["kind"] == "Deployment").unwrap();
    deployment["spec"]["replicaz"] = 3.into();
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/healthz".into();
    let problems = check(&deployment);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("replicaz") || problems[1].contains("replicaz"), "{problems:?}");
}

#[test]
fn rbac_grants_exactly_the_verbs_the_provider_and_leader_election_use() {
    let mut granted = BTreeSet::new();
    for (_, doc) in manifests().into_iter().filter(|(_, d)| d["kind"] == "Role") {
        let role: Role = serde_json::from_value(doc).unwrap();
        for rule in role.rules.unwrap_or_default() {
            for g in rule.api_groups.clone().unwrap_or_default() {
                for r in rule.resources.clone().unwrap_or_default() {
                    for v in &rule.verbs {
                        assert_ne!(v, "*", "no wildcards");
                        granted.insert((g.clone(), r.clone(), v.clone()));
                    }
                }
            }
        }
    }
    let used: BTreeSet<(String, String, String)> =
        API_USE.iter().flat_map(|(g, r, verbs)| verbs.iter().map(move |v| (g.to_string(), r.to_string(), v.to_string()))).collect();
    assert_eq!(granted, used, "RBAC and API_USE differ");
}

#[test]
fn the_deployment_configmap_and_image_config_agree() {
    let docs = manifests();
    let find = |kind: &str| docs.iter().find(|(_, d)| d["kind"] == kind).unwrap().1.clone();
    let deployment: Deployment = serde_json::from_value(find("Deployment")).unwrap();
    let config_map: ConfigMap = serde_json::from_value(find("ConfigMap")).unwrap();
    let account: ServiceAccount = serde_json::from_value(find("ServiceAccount")).unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2), "two replicas, leader-elected");
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name, account.metadata.name);
    let c = &pod.containers[0];
    // Liveness: the process answers; readiness: its pools can decide.
    for (probe, path) in [(&c.liveness_probe, "/healthz"), (&c.readiness_probe, "/readyz")] {
        assert_eq!(probe.as_ref().unwrap().http_get.as_ref().unwrap().path.as_deref(), Some(path));
    }
    assert!(c.env.as_ref().unwrap().iter().any(|e| e.name == "POD_NAME"), "the identity for leader election");

    // The config the pod reads parses, and its paths are the mounts.
    let text = &config_map.data.unwrap()["scalewise.toml"];
    let config = scalewise::config::Config::parse(text).unwrap_or_else(|e| panic!("the ConfigMap's scalewise.toml: {e}"));
    assert!(config.leader_election.is_some(), "two replicas need leader election");
    let mounts = c.volume_mounts.as_ref().unwrap();
    let mounted = |p: &std::path::Path| mounts.iter().any(|m| p.starts_with(&m.mount_path));
    // The built-in policies are the image's; the rest come from a registry
    // into a volume.
    assert_eq!(config.policies.dir, std::path::Path::new("/usr/share/scalewise/policies.d"), "the image's built-ins");
    assert!(mounted(&config.policies.remote_dir), "policies.remote_dir {} is not a volume", config.policies.remote_dir.display());
    assert!(pod.volumes.as_ref().unwrap().iter().all(|v| v.persistent_volume_claim.is_none()), "no volume that nothing fills");
    assert!(mounted(config.journal.path.parent().unwrap()), "the journal is not on a volume");
    assert!(mounted(config.policies.versions_file.parent().unwrap()), "the version ledger is not on a volume");
    let args = c.args.as_ref().unwrap();
    let config_path = &args[args.iter().position(|a| a == "--config").unwrap() + 1];
    assert!(mounted(std::path::Path::new(config_path)), "--config {config_path} is not the ConfigMap mount");

    let image_config = std::fs::read_to_string(scalewise_e2e::root().join("deploy/scalewise.toml")).unwrap();
    scalewise::config::Config::parse(&image_config).unwrap_or_else(|e| panic!("deploy/scalewise.toml: {e}"));
}

/// `kubectl apply -k deploy/kubernetes` as kubectl renders it: every object
/// reads into its type, the Namespace comes first, and every reference
/// (namespace, service account, config map, role, the Service's selector)
/// names something the kustomization creates or the config's pools name.
#[test]
fn the_kustomization_renders_in_order_with_every_reference_resolved() {
    let kubectl = scalewise_e2e::tools::find("SCALEWISE_KUBECTL", &["kubectl"], "apt-get install kubernetes-client");
    let out = std::process::Command::new(kubectl).arg("kustomize").arg(scalewise_e2e::root().join("deploy/kubernetes")).output().unwrap();
    assert!(out.status.success(), "kubectl kustomize: {}", String::from_utf8_lossy(&out.stderr));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    for d in &docs {
        let problems = check(d);
        assert!(problems.is_empty(), "{} {}: {problems:?}", d["kind"], d["metadata"]["name"]);
    }
    assert_eq!(docs[0]["kind"], "Namespace", "the Namespace before everything that lives in it");
    // It applies every manifest in the folder.
    assert_eq!(docs.len(), manifests().len(), "every manifest is a resource of the kustomization");
    let named = |kind: &str| -> BTreeSet<(String, String)> {
        docs.iter().filter(|d| d["kind"] == kind).map(|d| (d["metadata"]["namespace"].as_str().unwrap_or("").to_owned(), d["metadata"]["name"].as_str().unwrap().to_owned())).collect()
    };
    let created: BTreeSet<String> = named("Namespace").into_iter().map(|(_, n)| n).collect();
    let config_map = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let config = scalewise::config::Config::parse(config_map["data"]["scalewise.toml"].as_str().unwrap()).unwrap();
    let workloads: BTreeSet<String> = config.pools.iter().filter_map(|p| match &p.provider {
        scalewise::config::ProviderConfig::Kubernetes(k) => Some(k.namespace.clone()),
        _ => None,
    }).collect();
    for d in docs.iter().filter(|d| d["kind"] != "Namespace") {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or_else(|| panic!("{} {} has no namespace", d["kind"], d["metadata"]["name"]));
        assert!(created.contains(ns) || workloads.contains(ns), "{} {} lives in `{ns}`, which is neither created here nor a pool's workload namespace", d["kind"], d["metadata"]["name"]);
    }
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let ns = deployment["metadata"]["namespace"].as_str().unwrap().to_owned();
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(named("ServiceAccount").contains(&(ns.clone(), pod["serviceAccountName"].as_str().unwrap().to_owned())), "the service account");
    for v in pod["volumes"].as_array().unwrap() {
        if let Some(cm) = v["configMap"]["name"].as_str() {
            assert!(named("ConfigMap").contains(&(ns.clone(), cm.to_owned())), "config map {cm}");
        }
    }
    for b in docs.iter().filter(|d| d["kind"] == "RoleBinding") {
        let bns = b["metadata"]["namespace"].as_str().unwrap().to_owned();
        assert!(named("Role").contains(&(bns, b["roleRef"]["name"].as_str().unwrap().to_owned())), "{}: its role", b["metadata"]["name"]);
        for s in b["subjects"].as_array().unwrap() {
            let sns = s["namespace"].as_str().unwrap().to_owned();
            assert!(named("ServiceAccount").contains(&(sns, s["name"].as_str().unwrap().to_owned())), "{}: subject {}", b["metadata"]["name"], s["name"]);
        }
    }
    let service = docs.iter().find(|d| d["kind"] == "Service").unwrap();
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the Service selects the pods by {k}");
    }
}
