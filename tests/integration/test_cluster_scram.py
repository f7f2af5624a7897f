"""An ACL and a SCRAM user made through one node take effect on every node of a three-node cluster: the
user is set with `bulwark scram set` on node 1 and logs in over SASL_SSL on nodes 2 and 3 (a wrong
password does not), and an ACL granted through node 2 lets the SCRAM user write through node 3."""
import subprocess
import uuid

import clients
from harness import BIN, free_port, run
from cluster_harness import Cluster

USER, PASSWORD = "frank", "frank-secret-9"


def test_scram_user_and_acl_made_on_one_node_work_on_every_node(tmp_path):
    cluster = Cluster(tmp_path)
    sasl_ports = {}
    for node in cluster.nodes:
        sasl_ports[node.node_id] = free_port()
        p = node.props
        p["listeners"] += f",SASL_SSL://127.0.0.1:{sasl_ports[node.node_id]}"
        p["advertised.listeners"] += f",SASL_SSL://127.0.0.1:{sasl_ports[node.node_id]}"
        p["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
        p["listener.name.sasl_ssl.sasl.enabled.mechanisms"] = "SCRAM-SHA-256,SCRAM-SHA-512"
    cluster.start()
    try:
        first, second, third = cluster.nodes
        cluster.wait_until_created(first)
        password_file = tmp_path / "frank.password"
        password_file.write_text(PASSWORD + "\n")
        tls = ["--ca", cluster.admin["ca"], "--cert", cluster.admin["cert"], "--key", cluster.admin["key"]]
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            run(BIN, "scram", "set", "--bootstrap-server", cluster.bootstrap(first), *tls, "--user", USER,
                "--mechanism", mechanism, "--password-file", password_file)
        listed = run(BIN, "scram", "list", "--bootstrap-server", cluster.bootstrap(third), *tls).stdout
        assert USER in listed and "SCRAM-SHA-512" in listed, listed
        for node in (second, third):
            bootstrap = f"127.0.0.1:{sasl_ports[node.node_id]}"
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                sec = clients.sasl_security(mechanism, USER, PASSWORD, ca=cluster.admin["ca"])
                assert clients.kcat_metadata(bootstrap, sec)["brokers"], (node.node_id, mechanism)
            wrong = clients.sasl_security("SCRAM-SHA-256", USER, "not-the-password", ca=cluster.admin["ca"])
            refused = subprocess.run(clients.kcat_args(bootstrap, wrong) + ["-L", "-m", "5"], capture_output=True,
                                     timeout=60)
            assert refused.returncode != 0 and b"authentication" in refused.stderr.lower(), refused.stderr
        # The ACL: granted through node 2, it lets User:frank write through node 3.
        topic = f"scram-{uuid.uuid4().hex[:8]}"
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap(first), **clients.librdkafka_conf(cluster.admin)})
        admin.create_topics([NewTopic(topic, 3, 2)])[topic].result(timeout=30)
        run(BIN, "acl", "add", "--bootstrap-server", cluster.bootstrap(second), *tls, "--allow-principal",
            f"User:{USER}", "--producer", "--topic", topic)
        sec = clients.sasl_security("SCRAM-SHA-512", USER, PASSWORD, ca=cluster.admin["ca"])
        clients.confluent_produce(f"127.0.0.1:{sasl_ports[third.node_id]}", sec, topic,
                                  [(None, f"v{i}".encode(), []) for i in range(6)])
    finally:
        cluster.stop()
