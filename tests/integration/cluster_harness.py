"""A cluster of real processes on loopback for the integration tests: three combined
broker+controller nodes by default (a test may give nodes other roles), mTLS everywhere, an
authorizer with the nodes and admin-1 as super users."""
import subprocess
import time
import uuid

import clients
from harness import BIN, PASSWORD, free_port_block, run, wait_for_port

ELECTION_TIMEOUT_MS = 500


class Node:
    def __init__(self, root, node_id, keystore, truststore, voters, ports, super_users, host="127.0.0.1", launcher=()):
        self.root = root
        self.node_id = node_id
        self.host = host
        self.launcher = list(launcher)  # e.g. ["ip", "netns", "exec", ns]: what the broker runs under
        self.port, self.controller_port = ports[node_id]
        self.log_dir = root / "logs"
        self.config = root / "server.properties"
        self.log_path = root / "broker.log"
        self.proc = None
        self.props = {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "listeners": f"MTLS://{host}:{self.port},CONTROLLER://{host}:{self.controller_port}",
            "advertised.listeners": f"MTLS://{host}:{self.port}",
            "inter.broker.listener.name": "MTLS",
            "listener.security.protocol.map": "MTLS:SSL,CONTROLLER:SSL",
            "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(keystore), "ssl.keystore.password": PASSWORD,
            "ssl.truststore.type": "PKCS12", "ssl.truststore.location": str(truststore),
            "ssl.truststore.password": PASSWORD,
            "ssl.client.auth": "required",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": super_users,
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
            "log.dirs": str(self.log_dir),
            "controller.quorum.election.timeout.ms": str(ELECTION_TIMEOUT_MS),
            "controller.quorum.fetch.timeout.ms": str(2 * ELECTION_TIMEOUT_MS),
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "500",
        }

    def write(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))

    def spawn(self):
        self.write()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.launcher + [BIN, "broker", "-c", str(self.config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.log.close()

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Cluster:
    def __init__(self, root, untrusted=None, unprivileged=None, props=None, size=3, hosts=None):
        """untrusted / unprivileged: the id of a node whose certificate comes from another CA, or whose
        certificate's CN (outsider) is not a super user. props: settings added to every node's config.
        size: the number of nodes, ids 1 to size, all of them voters unless the test says otherwise.
        hosts: {id: (address, launcher)} for nodes on hosts of their own (netns.py), which then all use
        the ports 9093 (MTLS) and 9094 (CONTROLLER); by default every node is on 127.0.0.1."""
        self.root = root
        pki = root / "pki"
        run(BIN, "pki", "init", "--dir", pki)
        other = root / "other-pki"
        run(BIN, "pki", "init", "--dir", other)
        ids = range(1, size + 1)
        if hosts:
            ports = {i: (9093, 9094) for i in ids}
        else:
            base = free_port_block(range(2 * size))  # below the ephemeral range, as harness.Broker's
            ports = {i: (base + 2 * (i - 1), base + 2 * (i - 1) + 1) for i in ids}
            hosts = {i: ("127.0.0.1", ()) for i in ids}
        voters = ",".join(f"{i}@{hosts[i][0]}:{ports[i][1]}" for i in ids)
        super_users = ";".join([f"User:node-{i}" for i in ids] + ["User:admin-1"])
        self.nodes = []
        for i in ids:
            name = "outsider" if i == unprivileged else f"node-{i}"
            ca_dir = other if i == untrusted else pki
            run(BIN, "pki", "issue", "broker", name, "--dns", "localhost", "--ip", hosts[i][0], "--dir", ca_dir)
            out = root / "export" / f"{i}"
            run(BIN, "pki", "export", name, "--format", "pkcs12", "--password", PASSWORD, "--dir", ca_dir, "--out", out)
            self.nodes.append(Node(root / f"node-{i}", i, out / f"{name}.keystore.p12", out / f"{name}.truststore.p12",
                                   voters, ports, super_users, *hosts[i]))
            self.nodes[-1].props.update(props or {})
        run(BIN, "pki", "issue", "client", "admin-1", "--dir", pki)
        run(BIN, "pki", "export", "admin-1", "--format", "pem", "--dir", pki, "--out", root / "export" / "admin-1")
        self.admin = {"ca": str(root / "export" / "admin-1" / "ca.pem"),
                      "cert": str(root / "export" / "admin-1" / "admin-1.chain.pem"),
                      "key": str(root / "export" / "admin-1" / "admin-1.key")}
        self.cluster_id = run(BIN, "storage", "random-uuid").stdout.strip()
        for node in self.nodes:
            node.write()
            run(BIN, "storage", "format", "-t", self.cluster_id, "-c", node.config)

    def separate_roles(self, controllers=1):
        """KIP-631's separate roles: the first `controllers` nodes become the quorum, controller-only
        (only their controller listener); the others are broker-only nodes."""
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes[:controllers])
        for node in self.nodes[:controllers]:
            node.props.update({"process.roles": "controller", "controller.quorum.voters": voters,
                               "listeners": f"CONTROLLER://{node.host}:{node.controller_port}"})
            for key in ("advertised.listeners", "inter.broker.listener.name"):
                node.props.pop(key)
            node.port = node.controller_port  # what start() waits for
        for node in self.nodes[controllers:]:
            node.props.update({"process.roles": "broker", "controller.quorum.voters": voters,
                               "listeners": f"MTLS://{node.host}:{node.port}"})
        return self.nodes[:controllers], self.nodes[controllers:]

    def start(self, nodes=None):
        nodes = nodes or self.nodes
        for node in nodes:
            node.spawn()
        for node in nodes:
            wait_for_port(node.port, proc=node.proc, host=node.host)

    def stop(self):
        # Last node first: brokers then reach the controllers for their controlled shutdown.
        for node in reversed(self.nodes):
            if node.proc:
                node.stop()

    def bootstrap(self, node):
        return f"{node.host}:{node.port}"

    def create_topic(self, via, name, timeout_ms=5000):
        """CreateTopics through `via` with the operation timeout `timeout_ms`; returns the error (None on
        success) and the seconds it took."""
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap(via), **clients.librdkafka_conf(self.admin)})
        started = time.time()
        future = admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=timeout_ms / 1000,
                                     request_timeout=timeout_ms / 1000 + 10)[name]
        try:
            future.result(timeout=timeout_ms / 1000 + 30)
            return None, time.time() - started
        except Exception as e:  # confluent_kafka.KafkaException wrapping the KafkaError
            return e.args[0], time.time() - started

    def wait_until_created(self, via, timeout=30):
        deadline = time.time() + timeout
        error = None
        while time.time() < deadline:
            error, _ = self.create_topic(via, f"t-{uuid.uuid4().hex[:8]}")
            if error is None:
                return
            time.sleep(0.5)
        raise AssertionError(f"no topic could be created through node {via.node_id}: {error}")
