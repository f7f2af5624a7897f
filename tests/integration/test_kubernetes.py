"""The Kubernetes manifests, without a cluster: their shape (a headless Service, a StatefulSet of three
with probes and the metrics port, a PodDisruptionBudget), and what runs inside the pods for real:
make-secrets.sh makes the Secrets with `bulwark pki bootstrap`, and the ConfigMap's make-config.sh,
given one pod's environment and those Secrets' files, writes a server.properties that `bulwark storage
format` accepts."""
import base64
import os
import subprocess
from pathlib import Path

import yaml

from harness import BIN, run

REPO = Path(os.environ.get("BULWARK_SOURCE_DIR", Path(__file__).resolve().parents[2]))
MANIFESTS = REPO / "deploy/kubernetes"


def documents():
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all((MANIFESTS / "bulwark.yaml").read_text())}


def test_the_manifests_describe_three_nodes_with_probes_metrics_and_a_disruption_budget():
    docs = documents()
    headless = docs[("Service", "bulwark-headless")]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    stateful = docs[("StatefulSet", "bulwark")]["spec"]
    assert stateful["replicas"] == 3 and stateful["serviceName"] == "bulwark-headless"
    pod = stateful["template"]["spec"]
    container = pod["containers"][0]
    assert {p["containerPort"] for p in container["ports"]} == {9092, 9093, 9404}
    assert container["readinessProbe"]["tcpSocket"]["port"] == "clients"
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    sources = [s["secret"]["name"] for v in pod["volumes"] if v["name"] == "tls" for s in v["projected"]["sources"]]
    assert sources == ["bulwark-tls", "bulwark-tls-password"]
    assert docs[("PodDisruptionBudget", "bulwark")]["spec"]["maxUnavailable"] == 1
    assert stateful["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    certificate = yaml.safe_load((MANIFESTS / "cert-manager.yaml").read_text())
    assert certificate["spec"]["secretName"] == "bulwark-tls" and certificate["spec"]["keystores"]["pkcs12"]["create"]


def test_make_secrets_and_make_config_give_a_node_config_bulwark_accepts(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "bulwark").symlink_to(Path(BIN).resolve())
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    made = subprocess.run([str(MANIFESTS / "make-secrets.sh"), "streaming", str(tmp_path / "pki")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all(made.stdout)}
    assert set(secrets) == {"bulwark-tls", "bulwark-tls-password", "bulwark-cluster", "bulwark-admin-1"}
    assert all(s["metadata"]["namespace"] == "streaming" for s in secrets.values())

    # The pod's view: the tls volume holds both Secrets' keys as files.
    tls_dir = tmp_path / "etc-bulwark-tls"
    tls_dir.mkdir()
    for name in ("bulwark-tls", "bulwark-tls-password"):
        for key, data in secrets[name]["data"].items():
            (tls_dir / key).write_bytes(base64.b64decode(data))
    password = (tls_dir / "password").read_text().strip()
    keystore = tls_dir / "bulwark-1.keystore.p12"
    subject = run("openssl", "pkcs12", "-in", keystore, "-passin", f"pass:{password}", "-nokeys", "-clcerts").stdout
    assert "CN = bulwark-1" in subject or "CN=bulwark-1" in subject
    sans = run("openssl", "x509", "-noout", "-ext", "subjectAltName", input=run(
        "openssl", "pkcs12", "-in", keystore, "-passin", f"pass:{password}", "-nokeys", "-clcerts").stdout).stdout
    assert "bulwark-1.bulwark-headless.streaming.svc.cluster.local" in sans

    script = tmp_path / "make-config.sh"
    script.write_text(documents()[("ConfigMap", "bulwark-config")]["data"]["make-config.sh"])
    data_dir = tmp_path / "var-lib-bulwark"
    data_dir.mkdir()
    cluster_id = base64.b64decode(secrets["bulwark-cluster"]["data"]["cluster-id"]).decode()
    config = data_dir / "server.properties"
    pod_env = {**env, "POD_NAME": "bulwark-1", "POD_NAMESPACE": "streaming", "CLUSTER_ID": cluster_id,
               "TLS_DIR": str(tls_dir), "DATA_DIR": str(data_dir), "CONFIG_OUT": str(config)}
    result = subprocess.run(["/bin/sh", str(script)], env=pod_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    text = config.read_text()
    assert "node.id=2\n" in text
    assert ("controller.quorum.voters=1@bulwark-0.bulwark-headless.streaming.svc.cluster.local:9093,"
            "2@bulwark-1.bulwark-headless.streaming.svc.cluster.local:9093,"
            "3@bulwark-2.bulwark-headless.streaming.svc.cluster.local:9093\n") in text
    assert f"ssl.keystore.location={keystore}\n" in text
    assert "ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT\n" in text
    assert (data_dir / "data/meta.properties").is_file(), "the init container formats the data dir"
    assert f"cluster.id={cluster_id}" in (data_dir / "data/meta.properties").read_text()
    # A restarted pod keeps its data: the script formats only once.
    again = subprocess.run(["/bin/sh", str(script)], env=pod_env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
