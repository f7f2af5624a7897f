"""`bulwark groups` (kafka-consumer-groups.sh) against a real `bulwark broker` over TLS (--ca), with
offsets committed by a real group consumer (confluent-kafka): --list, --describe (committed offset, log
end and lag exactly; an active member's id, host and client id; --members --verbose; --state),
--reset-offsets in every scenario (refused while a member is active), --delete-offsets, --delete, the
authorizer's refusal naming the principal, and usage errors."""
import time
import uuid

import pytest

from harness import BIN, Broker, Pki, run

ADMIN = "admin-1"
USER = "client-1"
COUNTS = (5, 3, 2)  # records per partition of each test topic


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("groups-cli")
    pki = Pki(root, clients=(ADMIN, USER))
    broker = Broker(root, pki, extra={
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "true",
        "super.users": "User:admin-1;User:broker-1",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    }).start()
    yield pki, broker
    broker.stop()


def pem(pki, name):
    cert, key, ca = pki.pem(name)
    return ["--ca", ca, "--cert", cert, "--key", key]


def groups(env, *args, check=None, who=ADMIN):
    pki, broker = env
    result = run(BIN, "groups", *args, "--bootstrap-server", broker.bootstrap("MTLS"), *pem(pki, who), check=False)
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def table(stdout):
    """The rows of a Kafka table (header included), split on whitespace."""
    return [line.split() for line in stdout.splitlines() if line.strip()]


def offsets(stdout):
    """partition -> (current, log end, lag, consumer id, host, client id) from the offsets view."""
    rows = table(stdout)
    assert rows[0] == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
                       "CLIENT-ID"], stdout
    return {int(r[2]): tuple(r[3:]) for r in rows[1:]}


def reset_plan(stdout):
    rows = table(stdout)
    assert rows[0] == ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], stdout
    return {int(r[2]): int(r[3]) for r in rows[1:]}


def bootstrap(env):
    return env[1].bootstrap("PLAINTEXT")


def new_topic(env):
    """A 3-partition topic holding COUNTS[p] records in partition p."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    name = f"t-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap(env)})  # kept alive until the topic exists
    admin.create_topics([NewTopic(name, 3, 1)])[name].result(30)
    producer = Producer({"bootstrap.servers": bootstrap(env), "acks": "all"})
    for partition, count in enumerate(COUNTS):
        for i in range(count):
            producer.produce(name, value=f"{partition}-{i}".encode(), partition=partition)
    assert producer.flush(30) == 0
    return name


def consumer(env, group, topic, client_id="groups-cli-test"):
    """A subscribed group member that has its partitions (librdkafka heartbeats in the background)."""
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap(env), "group.id": group, "client.id": client_id,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 500})
    c.subscribe([topic])
    deadline = time.time() + 30
    while not c.assignment() and time.time() < deadline:
        c.poll(0.2)
    assert c.assignment(), "the consumer never got partitions"
    return c


def commit(env, group, topic, committed):
    """Joins `group`, commits {partition: offset} and leaves: the group is Empty with those offsets."""
    from confluent_kafka import TopicPartition
    c = consumer(env, group, topic)
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in committed.items()], asynchronous=False)
    c.close()


def test_list_and_describe_an_empty_group_with_exact_lag(env):
    topic, group = new_topic(env), f"g-{uuid.uuid4().hex[:8]}"
    commit(env, group, topic, {0: 4, 1: 3})

    assert group in groups(env, "--list", check=0).stdout.split()
    listed = table(groups(env, "--list", "--state", check=0).stdout)
    assert listed[0] == ["GROUP", "STATE"] and [group, "Empty"] in listed
    assert [group, "Empty"] in table(groups(env, "--list", "--state", "empty", check=0).stdout)
    assert group not in groups(env, "--list", "--state", "Stable", check=0).stdout

    described = groups(env, "--describe", "--group", group, check=0)
    assert f"Consumer group '{group}' has no active members." in described.stderr
    # Partition 2 has no commit and no member: Kafka leaves it out.
    assert offsets(described.stdout) == {0: ("4", "5", "1", "-", "-", "-"), 1: ("3", "3", "0", "-", "-", "-")}
    assert table(described.stdout)[1][:2] == [group, topic]
    unshiftable = groups(env, "--reset-offsets", "--group", group, "--topic", topic, "--shift-by", "1", check=1)
    assert f"cannot shift the offset of {topic}-2: the group has no committed offset there" in unshiftable.stderr
    # The action as a word says the same.
    assert groups(env, "describe", "--group", group, check=0).stdout == described.stdout

    missing = groups(env, "--describe", "--group", "no-such-group", check=1)
    assert "Error: Consumer group 'no-such-group' does not exist." in missing.stderr


def test_an_active_member_is_shown_and_blocks_reset_and_delete(env):
    topic, group = new_topic(env), f"g-{uuid.uuid4().hex[:8]}"
    member = consumer(env, group, topic, client_id="lag-watcher")
    try:
        rows = offsets(groups(env, "--describe", "--group", group, check=0).stdout)
        assert sorted(rows) == [0, 1, 2]
        for partition, (current, end, lag, member_id, host, client_id) in rows.items():
            assert (current, end, lag) == ("-", str(COUNTS[partition]), "-")
            assert member_id.startswith("lag-watcher-") and host.endswith("127.0.0.1") and client_id == "lag-watcher"

        members = table(groups(env, "--describe", "--group", group, "--members", "--verbose", check=0).stdout)
        assert members[0] == ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"]
        assert members[1][3:] == ["lag-watcher", "3", f"{topic}(0,1,2)"]

        state = table(groups(env, "--describe", "--group", group, "--state", check=0).stdout)
        assert state[0] == ["GROUP", "COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]
        assert state[1][0] == group and state[1][2] == "(1)" and state[1][-2:] == ["Stable", "1"]

        refused = groups(env, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute",
                         check=1)
        assert (f"Assignments can only be reset if the group '{group}' is inactive, but the current state is Stable."
                in refused.stderr)
        not_deleted = groups(env, "--delete", "--group", group, check=1)
        assert f"* Group '{group}' could not be deleted due to:" in not_deleted.stderr
        assert "NON_EMPTY_GROUP" in not_deleted.stderr
        subscribed = groups(env, "--delete-offsets", "--group", group, "--topic", f"{topic}:0", check=1)
        assert "partition-level error" in subscribed.stderr
        assert table(subscribed.stdout)[1:] == [[topic, "0", "Error:", "GROUP_SUBSCRIBED_TO_TOPIC"]]
    finally:
        member.close()


def test_reset_offsets_in_every_scenario_then_delete(env):
    topic, group = new_topic(env), f"g-{uuid.uuid4().hex[:8]}"
    commit(env, group, topic, {0: 4, 1: 3, 2: 1})

    def reset(*args, check=0):
        return groups(env, "--reset-offsets", "--group", group, *args, check=check)

    def described():
        return offsets(groups(env, "--describe", "--group", group, check=0).stdout)

    earliest = reset("--topic", topic, "--to-earliest", "--execute")
    assert reset_plan(earliest.stdout) == {0: 0, 1: 0, 2: 0}
    assert described() == {p: ("0", str(n), str(n), "-", "-", "-") for p, n in enumerate(COUNTS)}

    # Dry runs: clamped into the log, shifted from the committed offsets; nothing changes.
    assert reset_plan(reset("--all-topics", "--to-offset", "4", "--dry-run").stdout) == {0: 4, 1: 3, 2: 2}
    assert reset_plan(reset("--topic", f"{topic}:0,2", "--shift-by", "2", "--dry-run").stdout) == {0: 2, 2: 2}
    assert reset_plan(reset("--topic", topic, "--shift-by", "-1", "--dry-run").stdout) == {0: 0, 1: 0, 2: 0}
    assert reset_plan(reset("--topic", topic, "--to-datetime", "2000-01-01T00:00:00.000", "--dry-run").stdout) == \
        {0: 0, 1: 0, 2: 0}
    assert reset_plan(reset("--topic", topic, "--by-duration", "PT1H", "--dry-run").stdout) == {0: 0, 1: 0, 2: 0}
    future = reset("--topic", topic, "--to-datetime", "2999-01-01T00:00:00Z")
    assert reset_plan(future.stdout) == {0: 5, 1: 3, 2: 2} and "Falling back to latest" in future.stderr
    assert "--execute option is missing" in future.stderr
    assert {p: r[0] for p, r in described().items()} == {0: "0", 1: "0", 2: "0"}

    assert reset_plan(reset("--topic", f"{topic}:1", "--to-offset", "2", "--execute").stdout) == {1: 2}
    latest = reset("--topic", f"{topic}:0", "--to-latest", "--execute")
    assert reset_plan(latest.stdout) == {0: 5}
    assert described() == {0: ("5", "5", "0", "-", "-", "-"), 1: ("2", "3", "1", "-", "-", "-"),
                           2: ("0", "2", "2", "-", "-", "-")}

    deleted_offsets = groups(env, "--delete-offsets", "--group", group, "--topic", f"{topic}:2", check=0)
    assert f"Request succeeded for deleting offsets from group {group}." in deleted_offsets.stdout
    assert table(deleted_offsets.stdout)[-2:] == [["TOPIC", "PARTITION", "STATUS"], [topic, "2", "Successful"]]
    assert sorted(described()) == [0, 1]

    deleted = groups(env, "--delete", "--group", group, check=0)
    assert deleted.stdout.strip() == f"Deletion of requested consumer groups ('{group}') was successful."
    assert group not in groups(env, "--list", check=0).stdout.split()
    groups(env, "--describe", "--group", group, check=1)
    again = groups(env, "--delete", "--group", group, check=1)
    assert "does not exist (GROUP_ID_NOT_FOUND)" in again.stderr


def test_the_authorizer_refusal_names_the_principal(env):
    topic, group = new_topic(env), f"secret-{uuid.uuid4().hex[:8]}"
    commit(env, group, topic, {0: 1})
    pki, broker = env
    run(BIN, "acl", "add", "--deny-principal", f"User:{USER}", "--operation", "All", "--group", group,
        "--bootstrap-server", broker.bootstrap("MTLS"), *pem(pki, ADMIN))
    # The CLI is who its certificate says: CN=client-1, mapped to User:client-1 by the broker.
    for action in ("--describe", "--delete"):
        denied = groups(env, action, "--group", group, who=USER, check=1)
        assert f"CN={USER}" in denied.stderr and "GROUP_AUTHORIZATION_FAILED" in denied.stderr, denied.stderr
    reset = groups(env, "--reset-offsets", "--group", group, "--all-topics", "--to-earliest", "--execute", who=USER,
                   check=1)
    assert "GROUP_AUTHORIZATION_FAILED" in reset.stderr, reset.stderr
    # The admin (a super user) still sees and describes it.
    assert offsets(groups(env, "--describe", "--group", group, check=0).stdout)[0][:3] == ("1", "5", "4")


@pytest.mark.parametrize("args, says", [
    ((), "exactly one action"),
    (("--list", "--describe"), "exactly one action"),
    (("list", "--delete"), "exactly one action"),
    (("--describe",), "--group or --all-groups"),
    (("--reset-offsets", "--group", "g", "--to-earliest"), "--topic or --all-topics"),
    (("--reset-offsets", "--group", "g", "--all-topics"), "exactly one of --to-earliest"),
    (("--reset-offsets", "--group", "g", "--all-topics", "--to-latest", "--dry-run", "--execute"), "exclude"),
    (("--reset-offsets", "--group", "g", "--all-topics", "--by-duration", "1h"), "ISO-8601"),
    (("--reset-offsets", "--group", "g", "--topic", "t:x", "--to-latest"), "invalid partition"),
    (("--list", "--state", "Sleeping"), "invalid state list"),
    (("--delete-offsets", "--group", "g"), "needs --topic"),
    (("--describe", "--group", "g", "--bogus"), "--bogus"),
])
def test_usage_errors_exit_2(env, args, says):
    result = groups(env, *args, check=2)
    assert says in result.stderr, result.stderr
