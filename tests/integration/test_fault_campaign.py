"""The fault campaign's ctest slice (fault_campaign.py): seeds 1-20 on one three-node cluster whose nodes
are network namespaces of their own, every fault kind five times (kill -9, SIGSTOP, the leader's links
cut, the active controller's links cut); the checker must find no anomaly in any run. The soak is
scripts/fault-campaign."""
import os
import signal
import sys

import pytest

import fault_campaign
import netns

SEEDS = range(int(os.environ.get("BULWARK_CAMPAIGN_FIRST", "1")), int(os.environ.get("BULWARK_CAMPAIGN_LAST", "20")) + 1)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    why = netns.available()
    if why:
        pytest.fail(f"the fault campaign needs network namespaces (root, CAP_NET_ADMIN): {why}")
    # A SIGTERM (ctest's timeout, an operator) unwinds through the finalizer below, so no namespace,
    # bridge or broker outlives the run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("SIGTERM"))
    network = netns.Network(3)
    cluster = None
    try:
        cluster = fault_campaign.campaign_cluster(tmp_path_factory.mktemp("campaign"), network)
        yield cluster, network
    finally:
        if cluster:
            cluster.stop()
        network.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_no_anomaly(campaign, seed):
    cluster, network = campaign
    anomalies, summary = fault_campaign.run_seed(cluster, network, seed)
    print(summary)
    assert not anomalies, summary + "\n" + "\n".join(anomalies[:20])


def test_the_checker_finds_each_anomaly():
    """Each anomaly, planted in an otherwise clean history, is reported (the campaign can fail)."""
    def clean():
        h = fault_campaign.History()
        h.acked = [(0, 0, "a"), (0, 1, "b"), (1, 0, "c"), (2, 0, "d")]
        h.session = 1
        h.session_start_commit = {1: {}}
        h.polled = [(1, 0, 0, "a"), (1, 0, 1, "b"), (1, 1, 0, "c"), (1, 2, 0, "d")]
        h.commits = {0: 2, 1: 1}
        read = {0: [(0, "a"), (1, "b")], 1: [(0, "c")], 2: [(0, "d")]}
        return h, [read, {p: list(r) for p, r in read.items()}], {0: 2, 1: 1, 2: -1}, {0: True, 1: True, 2: True}

    assert fault_campaign.check(*clean()) == []
    # An implicit acknowledgement (no offset) of a record that is in the log is not an anomaly...
    history, reads, committed, replicas = clean()
    history.acked[1] = (0, None, "b")
    assert fault_campaign.check(history, reads, committed, replicas) == []
    # ...but the record must be there.
    reads[0][0].pop(), reads[1][0].pop()
    history.polled.remove((1, 0, 1, "b"))
    assert any(line.startswith("lost write 'b'") for line in fault_campaign.check(history, reads, committed, replicas))
    planted = {
        "lost write": lambda h, reads, c, r: reads[0][2].clear() or reads[1][2].clear(),
        "duplicate": lambda h, reads, c, r: [reads[i][1].append((1, "a")) for i in (0, 1)],
        "inconsistent offset": lambda h, reads, c, r: reads[1][0].__setitem__(1, (1, "x")),
        "unseen writes": lambda h, reads, c, r: h.polled.pop(),
        "non-monotonic poll": lambda h, reads, c, r: h.polled.append((1, 0, 0, "a")),
        "position behind a commit": lambda h, reads, c, r: (h.session_start_commit.__setitem__(2, {0: 2}),
                                                            h.polled.append((2, 0, 0, "a"))),
        "committed offset lost": lambda h, reads, c, r: c.__setitem__(0, 1),
        "replicas of partition": lambda h, reads, c, r: r.__setitem__(2, False),
    }
    for name, plant in planted.items():
        history, reads, committed, replicas = clean()
        plant(history, reads, committed, replicas)
        found = fault_campaign.check(history, reads, committed, replicas)
        assert any(line.startswith(name) for line in found), (name, found)
