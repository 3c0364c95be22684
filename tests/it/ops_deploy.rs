//! The deployment examples under `deploy/`: the Kubernetes manifests parse as YAML and hold
//! the pieces that matter (the pod ordinal becomes the shard, the metrics port is annotated
//! for scraping, a non-root security context, a state volume per pod, a configuration that
//! `imapsort` accepts), and the Containerfile uses the same user and paths.

use std::path::Path;
use std::process::Command;

use imapsort::shard::Shard;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn env<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))
}

fn mount_path<'a>(container: &'a Value, volume: &str) -> &'a str {
    container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume)
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("volume {volume} not mounted"))
}

/// The arguments the pod's command hands to imapsort when the pod is called `pod`: the shell
/// line is run with `printf` standing in for the binary.
fn argv_of(container: &Value, pod: &str, shards: &str) -> Vec<String> {
    let command: Vec<&str> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(&command[..2], ["/bin/sh", "-c"], "{command:?}");
    let line = command[2].replace("/usr/bin/imapsort", "printf '%s\\n'");
    let out = Command::new("/bin/sh")
        .args(["-c", &line])
        .env("POD_NAME", pod)
        .env("SHARDS", shards)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_statefulset_makes_each_pod_ordinal_its_shard() {
    let docs = documents("deploy/kubernetes/statefulset.yaml");
    let set = kind(&docs, "StatefulSet");
    let replicas = set["spec"]["replicas"].as_u64().unwrap();
    let pod = &set["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    let shards = env(c, "SHARDS")["value"].as_str().unwrap();
    assert_eq!(shards, replicas.to_string(), "SHARDS must equal replicas");
    assert_eq!(
        env(c, "POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let name = set["metadata"]["name"].as_str().unwrap();
    for ordinal in 0..replicas {
        let argv = argv_of(c, &format!("{name}-{ordinal}"), shards);
        assert_eq!(argv[0], "run", "{argv:?}");
        let i = argv.iter().position(|a| a == "--shard").expect("--shard");
        let shard: Shard = argv[i + 1].parse().unwrap();
        assert_eq!(
            (shard.index(), shard.count()),
            (ordinal, replicas),
            "{argv:?}"
        );
        // The configuration it names is the one the ConfigMap mounts.
        let j = argv.iter().position(|a| a == "-c").expect("-c");
        assert_eq!(
            argv[j + 1],
            format!("{}/config.yaml", mount_path(c, "config"))
        );
    }
    // Pods of one shard set do not wait for each other.
    assert_eq!(set["spec"]["podManagementPolicy"], "Parallel");
}

#[test]
fn the_metrics_port_is_annotated_for_scraping_and_is_the_one_imapsort_listens_on() {
    let docs = documents("deploy/kubernetes/statefulset.yaml");
    let set = kind(&docs, "StatefulSet");
    let pod = &set["spec"]["template"];
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    let port: u16 = annotations["prometheus.io/port"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let c = &pod["spec"]["containers"][0];
    let named = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a port named metrics");
    assert_eq!(named["containerPort"].as_u64(), Some(u64::from(port)));
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/metrics");
    let service = kind(&docs, "Service");
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(
        service["spec"]["selector"], pod["metadata"]["labels"],
        "the Service selects the pods"
    );

    // The configuration the pods read is valid, and listens there on every interface.
    let config_docs = documents("deploy/kubernetes/config.yaml");
    let map = kind(&config_docs, "ConfigMap");
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "config")
        .unwrap();
    assert_eq!(volume["configMap"]["name"], map["metadata"]["name"]);
    let text = map["data"]["config.yaml"].as_str().unwrap();
    let config = imapsort::config::load_str(text, Path::new("/etc/imapsort/config.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let listen = config.settings.metrics_listen.expect("metrics_listen");
    assert_eq!((listen.host.as_str(), listen.port), ("0.0.0.0", port));
    // Every password file it names is a key of the Secret, where the Secret is mounted.
    let secret = kind(&config_docs, "Secret");
    let secrets_at = mount_path(c, "passwords");
    for account in &config.accounts {
        let imapsort::config::Credentials::Secret(imapsort::config::SecretSource::File(path)) =
            &account.credentials
        else {
            panic!("{}: passwords come from the Secret", account.name)
        };
        assert_eq!(path.parent().unwrap(), Path::new(secrets_at), "{path:?}");
        let key = path.file_name().unwrap().to_str().unwrap();
        assert!(
            secret["stringData"][key].is_string(),
            "no key {key} in the Secret"
        );
    }
    assert!(
        config.accounts.len() >= 2,
        "the example shows more than one account"
    );
}

#[test]
fn pods_run_as_a_non_root_user_with_their_state_on_their_own_volume() {
    let docs = documents("deploy/kubernetes/statefulset.yaml");
    let set = kind(&docs, "StatefulSet");
    let spec = &set["spec"]["template"]["spec"];
    let pod_sc = &spec["securityContext"];
    assert_eq!(pod_sc["runAsNonRoot"], true);
    let uid = pod_sc["runAsUser"].as_u64().unwrap();
    assert_ne!(uid, 0);
    assert_eq!(pod_sc["fsGroup"], pod_sc["runAsGroup"]);
    assert_eq!(pod_sc["seccompProfile"]["type"], "RuntimeDefault");
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    // The state: a claim per pod, mounted where STATE_DIRECTORY points.
    let claim = &set["spec"]["volumeClaimTemplates"][0];
    let state = mount_path(c, claim["metadata"]["name"].as_str().unwrap());
    assert_eq!(env(c, "STATE_DIRECTORY")["value"], state);
    assert_eq!(
        claim["spec"]["accessModes"],
        serde_json::json!(["ReadWriteOnce"])
    );

    // The image: the same user, the same paths.
    let containerfile =
        std::fs::read_to_string(Path::new(ROOT).join("deploy/Containerfile")).unwrap();
    let line = |prefix: &str| {
        containerfile
            .lines()
            .rev()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in the Containerfile"))
            .to_owned()
    };
    let gid = pod_sc["runAsGroup"].as_u64().unwrap();
    assert_eq!(line("USER "), format!("USER {uid}:{gid}"));
    assert_eq!(line("VOLUME "), format!("VOLUME [\"{state}\"]"));
    assert!(containerfile.contains(&format!("STATE_DIRECTORY={state}")));
    assert!(containerfile.contains(&format!("install -d -o {uid} -g {gid} -m 0700 {state}")));
    assert!(containerfile.contains("IMAPSORT_CONFIG=/etc/imapsort/config.yaml"));
    assert_eq!(line("ENTRYPOINT "), "ENTRYPOINT [\"/usr/bin/imapsort\"]");
    assert!(
        containerfile.contains("cargo deb"),
        "the image installs the package"
    );
    assert_eq!(line("EXPOSE "), "EXPOSE 9898");
}

#[test]
fn the_systemd_shard_files_name_n_and_a_port_imapsort_accepts() {
    let read = |f: &str| std::fs::read_to_string(Path::new(ROOT).join(f)).unwrap();
    let value = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}"))
            .to_owned()
    };
    let n: u64 = value(&read("deploy/systemd/shards.env"), "IMAPSORT_SHARDS")
        .parse()
        .unwrap();
    assert!(n >= 1);
    let listen = value(
        &read("deploy/systemd/shard-0.env"),
        "IMAPSORT_METRICS_LISTEN",
    );
    imapsort::config::parse_listen_addr(&listen).unwrap();
}
