"""`bulwark topics` and `bulwark configs` (kafka-topics.sh and kafka-configs.sh) against one real
`bulwark broker` with mutual TLS from `bulwark pki` and Kafka's StandardAuthorizer: create with
configs, list, describe (leaders, replicas, ISR, overrides), add partitions, topic and broker configs
described and altered, delete, and the refusals in plain words with exit codes 1 and 2; then one short
three-node check of replication factor 3, another broker's configs and under-replicated partitions."""
import pytest

from cluster_harness import Cluster
from harness import BIN, PASSWORD, Broker, Pki, run, wait_for

ADMIN = "admin"
USER = "client-1"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("topics")
    pki = Pki(root, clients=(ADMIN, USER))
    broker = Broker(root, pki, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin;User:broker-1",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    })
    broker.start()
    yield pki, broker
    broker.stop()


def tool(env, command, *args, who=ADMIN, check=None):
    pki, broker = env
    cert, key, ca = pki.pem(who)
    result = run(BIN, command, *args, "--bootstrap-server", broker.bootstrap("MTLS"), "--ca", ca, "--cert", cert,
                 "--key", key, check=False)
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def topics(env, *args, **kw):
    return tool(env, "topics", *args, **kw)


def configs(env, *args, **kw):
    return tool(env, "configs", *args, **kw)


def test_topic_lifecycle_in_kafkas_forms(env):
    created = topics(env, "--create", "--topic", "orders", "--partitions", "3", "--replication-factor", "1",
                     "--config", "retention.ms=3600000", "--config", "max.message.bytes=2000000", check=0)
    assert created.stdout == "Created topic orders.\n"

    twice = topics(env, "--create", "--topic", "orders", "--partitions", "3", check=1)
    assert "could not create topic 'orders': the topic already exists (TOPIC_ALREADY_EXISTS)" in twice.stderr, \
        twice.stderr
    quiet = topics(env, "--create", "--topic", "orders", "--if-not-exists", check=0)
    assert quiet.stdout == "" and quiet.stderr == ""

    # The subcommand form and the Kafka flag form say the same.
    listed = topics(env, "--list", check=0).stdout.splitlines()
    assert "orders" in listed
    assert topics(env, "list", check=0).stdout.splitlines() == listed

    described = topics(env, "--describe", "--topic", "orders", check=0).stdout.splitlines()
    header = described[0]
    assert header.startswith("Topic: orders\tTopicId: ") and "\tPartitionCount: 3\tReplicationFactor: 1\t" in header
    overrides = header.split("\tConfigs: ")[1].split(",")
    assert sorted(overrides) == ["max.message.bytes=2000000", "retention.ms=3600000"], header
    assert described[1:] == [f"\tTopic: orders\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1" for p in range(3)]
    assert topics(env, "--describe", "--under-replicated-partitions", check=0).stdout == ""

    topics(env, "--alter", "--topic", "orders", "--partitions", "5", check=0)
    grown = topics(env, "describe", "--topic", "orders", check=0).stdout
    assert "\tPartitionCount: 5\t" in grown and "\tPartition: 4\tLeader: 1\tReplicas: 1\tIsr: 1" in grown
    shrink = topics(env, "--alter", "--topic", "orders", "--partitions", "2", check=1)
    assert "(INVALID_PARTITIONS)" in shrink.stderr, shrink.stderr

    topics(env, "--delete", "--topic", "orders", check=0)
    assert "orders" not in topics(env, "--list", check=0).stdout.splitlines()
    gone = topics(env, "--delete", "--topic", "orders", check=1)
    assert "Topic 'orders' does not exist as expected" in gone.stderr, gone.stderr
    topics(env, "--delete", "--topic", "orders", "--if-exists", check=0)


def test_topic_configs_described_and_altered(env):
    topics(env, "--create", "--topic", "billing", "--partitions", "1", "--config", "retention.ms=3600000", check=0)
    before = configs(env, "--describe", "--entity-type", "topics", "--entity-name", "billing", check=0).stdout
    assert before == ("Dynamic configs for topic billing are:\n"
                      "  retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000}\n")

    altered = configs(env, "--alter", "--topic", "billing",
                      "--add-config", "retention.ms=7200000,cleanup.policy=[delete],compression.type=zstd", check=0)
    assert altered.stdout == "Completed updating config for topic billing.\n"
    now = configs(env, "describe", "--topic", "billing", check=0).stdout
    assert "  retention.ms=7200000 sensitive=false" in now and "  cleanup.policy=delete sensitive=false" in now
    assert "  compression.type=zstd sensitive=false" in now
    assert "compression.type=zstd" in topics(env, "--describe", "--topic", "billing", check=0).stdout

    configs(env, "--alter", "--topic", "billing", "--delete-config", "compression.type,cleanup.policy", check=0)
    after = configs(env, "--describe", "--topic", "billing", check=0).stdout
    assert "compression.type" not in after and "cleanup.policy" not in after and "retention.ms=7200000" in after
    every = configs(env, "--describe", "--topic", "billing", "--all", check=0).stdout
    assert every.startswith("All configs for topic billing are:\n")
    assert "  segment.bytes=" in every and "synonyms={DEFAULT_CONFIG:segment.bytes=" in every

    missing = configs(env, "--alter", "--topic", "billing", "--delete-config", "compression.type", check=1)
    assert "Invalid config(s): compression.type" in missing.stderr, missing.stderr
    invalid = configs(env, "--alter", "--topic", "billing", "--add-config", "retention.ms=soon", check=1)
    assert "(INVALID_CONFIG): Invalid value soon for configuration retention.ms" in invalid.stderr, invalid.stderr
    unknown = configs(env, "--describe", "--topic", "nope", check=1)
    assert "(UNKNOWN_TOPIC_OR_PARTITION)" in unknown.stderr, unknown.stderr
    bad_create = topics(env, "--create", "--topic", "bad", "--config", "retention.ms=soon", check=1)
    assert "could not create topic 'bad'" in bad_create.stderr and "INVALID_CONFIG" in bad_create.stderr
    topics(env, "--delete", "--topic", "billing", check=0)


def test_broker_configs_described_and_altered(env):
    pki, broker = env
    keystore, _ = pki.pkcs12("broker-1")
    key = "listener.name.ssl.ssl.keystore.location"
    password_key = "listener.name.ssl.ssl.keystore.password"
    assert configs(env, "--describe", "--broker", "1", check=0).stdout == "Dynamic configs for broker 1 are:\n"

    altered = configs(env, "--alter", "--entity-type", "brokers", "--entity-name", "1",
                      "--add-config", f"{key}={keystore},{password_key}={PASSWORD}", check=0)
    assert altered.stdout == "Completed updating config for broker 1.\n"
    shown = configs(env, "--describe", "--broker", "1", check=0).stdout
    assert f"  {key}={keystore} sensitive=false synonyms={{DYNAMIC_BROKER_CONFIG:{key}={keystore}}}\n" in shown
    assert f"  {password_key}=null sensitive=true synonyms={{DYNAMIC_BROKER_CONFIG:{password_key}=null}}\n" in shown
    assert PASSWORD not in shown
    every = configs(env, "--describe", "--broker", "1", "--all", check=0).stdout
    assert every.startswith("All configs for broker 1 are:\n") and "  log.dirs=" in every
    assert "STATIC_BROKER_CONFIG:log.dirs=" in every

    configs(env, "--alter", "--broker", "1", "--delete-config", f"{key},{password_key}", check=0)
    assert configs(env, "--describe", "--broker", "1", check=0).stdout == "Dynamic configs for broker 1 are:\n"

    refused = configs(env, "--alter", "--entity-type", "brokers", "--entity-default", "--add-config",
                      f"{key}={keystore}", check=1)
    assert "could not alter the default configs of brokers" in refused.stderr, refused.stderr
    assert "broker id must be specified" in refused.stderr
    static = configs(env, "--alter", "--broker", "1", "--add-config", "log.retention.ms=1", check=1)
    assert "(INVALID_CONFIG): Cannot update these configs dynamically: log.retention.ms" in static.stderr


def test_refusals_name_the_principal(env):
    denied = topics(env, "--create", "--topic", "secret", who=USER, check=1)
    assert "may not create topic 'secret'" in denied.stderr and "CN=client-1" in denied.stderr, denied.stderr
    assert "AUTHORIZATION_FAILED" in denied.stderr
    no_configs = configs(env, "--describe", "--broker", "1", who=USER, check=1)
    assert "may not describe the configs of broker 1 (CLUSTER_AUTHORIZATION_FAILED)" in no_configs.stderr, \
        no_configs.stderr


def test_usage_errors_exit_2(env):
    no_action = topics(env, check=2)
    assert "exactly one action: --list, --describe, --create, --alter or --delete" in no_action.stderr
    assert "--create needs --topic" in topics(env, "--create", check=2).stderr
    assert "goes with --create" in topics(env, "--list", "--replication-factor", "3", check=2).stderr
    assert "bulwark configs --alter" in topics(env, "--alter", "--topic", "t", "--partitions", "2", "--config",
                                               "a=b", check=2).stderr
    assert "--alter needs --add-config" in configs(env, "--alter", "--topic", "t", check=2).stderr
    assert "not key=value" in configs(env, "--alter", "--topic", "t", "--add-config", "x", check=2).stderr
    assert "valid integer broker id" in configs(env, "--describe", "--broker", "one", check=2).stderr
    assert "bulwark scram" in configs(env, "--describe", "--entity-type", "users", check=2).stderr
    assert run(BIN, "topics", "--list", check=False).returncode == 2  # --bootstrap-server is required
    assert "topics" in run(BIN, "--help").stdout and "configs" in run(BIN, "--help").stdout


def test_three_nodes_replicas_isr_and_another_brokers_configs(tmp_path):
    cluster = Cluster(tmp_path, props={"replica.lag.time.max.ms": "2000", "replica.fetch.wait.max.ms": "200",
                                       "auto.leader.rebalance.enable": "false"})
    cluster.start()
    first = cluster.nodes[0]
    flags = ["--bootstrap-server", cluster.bootstrap(first), "--ca", cluster.admin["ca"], "--cert",
             cluster.admin["cert"], "--key", cluster.admin["key"]]

    def tool(*args):
        return run(BIN, *args, *flags, check=False)

    try:
        wait_for("the cluster to take a replicated topic", lambda: tool(
            "topics", "--create", "--topic", "r3", "--partitions", "2", "--replication-factor", "3",
            "--if-not-exists").returncode == 0)

        def full_isr():
            lines = tool("topics", "--describe", "--topic", "r3").stdout.splitlines()
            return len(lines) == 3 and all(len(line.split("\tIsr: ")[1].split(",")) == 3 for line in lines[1:])
        wait_for("every replica in the ISR", full_isr)
        described = tool("topics", "--describe", "--topic", "r3").stdout.splitlines()
        assert "\tPartitionCount: 2\tReplicationFactor: 3\t" in described[0]
        for line in described[1:]:
            replicas = line.split("\tReplicas: ")[1].split("\t")[0].split(",")
            assert sorted(replicas) == ["1", "2", "3"], line

        # Broker 2's configs are asked of broker 2, through the bootstrap's metadata.
        other = tool("configs", "--describe", "--broker", "2", "--all")
        assert other.returncode == 0, other.stderr
        assert other.stdout.startswith("All configs for broker 2 are:\n") and "  node.id=2 sensitive=false" in other.stdout

        cluster.nodes[2].kill()
        wait_for("the ISR without node 3", lambda: tool(
            "topics", "--describe", "--under-replicated-partitions").stdout.count("\tTopic: r3\t") == 2)
        assert tool("topics", "--describe", "--unavailable-partitions").stdout == ""
    finally:
        cluster.stop()
