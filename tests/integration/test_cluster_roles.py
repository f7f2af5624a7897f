"""Separate roles (KIP-631): a controller-only node (process.roles=controller, only its controller
listener) is the quorum, and two broker-only nodes (process.roles=broker, no controller listener) follow
the metadata log as observers, register with the controller and serve clients: a topic with replication
factor 2 is placed on them, records go through, and the quorum lists them as observers."""
import uuid

import clients
from harness import BIN, run, wait_for
from cluster_harness import Cluster


def test_controller_only_node_and_two_broker_only_nodes(tmp_path):
    cluster = Cluster(tmp_path)
    (controller,), brokers = cluster.separate_roles(controllers=1)
    cluster.start()
    try:
        first = brokers[0]
        cluster.wait_until_created(first)
        # A topic can be created once one broker has registered; wait for the second one too.
        meta = wait_for("both brokers registered", lambda: (lambda m: sorted(b["id"] for b in m["brokers"]) == [2, 3]
                        and m)(clients.kcat_metadata(cluster.bootstrap(first), cluster.admin)), timeout=30)
        assert sorted(b["id"] for b in meta["brokers"]) == [2, 3], meta["brokers"]
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap(first), **clients.librdkafka_conf(cluster.admin)})
        topic = f"roles-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(topic, 4, 2)])[topic].result(timeout=30)
        partitions = admin.list_topics(topic, timeout=15).topics[topic].partitions
        assert all(sorted(p.replicas) == [2, 3] for p in partitions.values()), partitions
        clients.confluent_produce(cluster.bootstrap(brokers[1]), cluster.admin, topic,
                                  [(b"k", f"v{i}".encode(), []) for i in range(8)])
        values = []
        for p in partitions:
            from confluent_kafka import Consumer, TopicPartition
            consumer = Consumer({"bootstrap.servers": cluster.bootstrap(first), "group.id": f"g-{p}",
                                 **clients.librdkafka_conf(cluster.admin)})
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            values.append(high - low)
            consumer.close()
        assert sum(values) == 8, values
        status = run(BIN, "quorum", "describe", "--status", "--bootstrap-server", cluster.bootstrap(first),
                     "--ca", cluster.admin["ca"], "--cert", cluster.admin["cert"], "--key", cluster.admin["key"]).stdout
        assert "CurrentVoters:          [1]" in status and "CurrentObservers:       [2,3]" in status, status
        assert "controller 1 of cluster" in controller.log_text()
    finally:
        cluster.stop()
