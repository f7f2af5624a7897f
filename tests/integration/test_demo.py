"""The README's first command (scripts/demo): a PKI made by `bulwark pki bootstrap`, three nodes with mTLS
listeners forming one cluster, the kcat command lines it prints work as printed, and Ctrl-C stops it cleanly."""
import json
import os
import re
import signal
import subprocess
import time

from harness import SOURCE_DIR, free_port_block


def test_demo_starts_an_mtls_broker_that_the_printed_kcat_lines_reach(tmp_path):
    port = free_port_block((0, 1, 10, 11, 20, 21))  # kafka-N: port + 10(N-1) and the controller port after it
    env = dict(os.environ, BULWARK_DEMO_DIR=str(tmp_path / "demo"), BULWARK_DEMO_PORT=str(port))
    out = open(tmp_path / "demo.out", "w+")
    demo = subprocess.Popen([str(SOURCE_DIR / "scripts" / "demo")], stdout=out, stderr=subprocess.STDOUT, env=env,
                            cwd=SOURCE_DIR)
    try:
        deadline = time.time() + 600
        text = ""
        while "started" not in text and time.time() < deadline and demo.poll() is None:
            time.sleep(0.5)
            text = (tmp_path / "demo.out").read_text()
        assert "started" in text, text[-3000:]
        commands = [line.strip() for line in text.splitlines() if line.strip().startswith(("kcat ", "echo hello"))]
        assert len(commands) == 4, text
        # The three nodes are one cluster: kafka-1 lists three brokers once they have registered.
        listing = commands[0] + " -J"
        brokers = []
        brokers_deadline = time.time() + 60
        while len(brokers) < 3 and time.time() < brokers_deadline:
            result = subprocess.run(listing, shell=True, capture_output=True, text=True, timeout=60)
            brokers = json.loads(result.stdout).get("brokers", []) if result.returncode == 0 else []
            time.sleep(0.2)
        logs = "".join((tmp_path / "demo" / f"kafka-{n}.log").read_text(errors="replace")[-2000:] for n in (2, 3))
        assert sorted(b["id"] for b in brokers) == [1, 2, 3], (brokers, logs)
        quorum = next(line.strip() for line in text.splitlines() if " quorum describe " in line)
        described = subprocess.run(quorum, shell=True, capture_output=True, text=True, timeout=60)
        assert described.returncode == 0 and "CurrentVoters:          [1,2,3]" in described.stdout, described
        for command in commands[:2]:
            result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
        consumed = subprocess.run(commands[2], shell=True, capture_output=True, text=True, timeout=60)
        assert consumed.returncode == 0 and consumed.stdout.strip() == "hello", consumed.stderr
        # The listener refuses a client without a certificate: it really is mTLS.
        conf = re.search(r"-F (\S+)", commands[0]).group(1)
        ca_only = [l for l in open(conf).read().splitlines() if not l.startswith(("ssl.certificate", "ssl.key"))]
        (tmp_path / "ca-only.conf").write_text("\n".join(ca_only) + "\n")
        refused = subprocess.run(["kcat", "-b", f"127.0.0.1:{port}", "-F", str(tmp_path / "ca-only.conf"), "-L",
                                  "-m", "5"], capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
        # client-1 is not a super user: refused until the printed `bulwark acl add` line grants it.
        client_conf = re.search(r"-F (\S+client-1\.librdkafka\.conf)", text).group(1)
        consume = ["kcat", "-b", f"127.0.0.1:{port}", "-F", client_conf, "-C", "-t", "demo", "-e", "-o", "beginning"]
        denied = subprocess.run(consume, capture_output=True, text=True, timeout=60)
        assert "authorization failed" in denied.stderr.lower(), denied.stderr
        grant = next(line.strip() for line in text.splitlines() if " acl add " in line)
        granted = subprocess.run(grant, shell=True, capture_output=True, text=True, timeout=60)
        assert granted.returncode == 0, granted.stderr
        consumed = subprocess.run(consume, capture_output=True, text=True, timeout=60)
        assert consumed.stdout.strip() == "hello", consumed.stderr
        # The printed group consumer line starts from the beginning, so it shows what was produced.
        group_line = next(line.strip() for line in text.splitlines() if " -G demo " in line)
        in_group = subprocess.run(group_line, shell=True, capture_output=True, text=True, timeout=90)
        assert in_group.stdout.strip() == "hello", in_group.stderr
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        assert "stopped" in (tmp_path / "demo.out").read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
        out.close()
