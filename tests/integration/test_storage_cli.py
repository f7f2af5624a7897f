"""`bulwark storage random-uuid | format | info` against the real binary, on copies of the seed config."""
import base64
import os
import pathlib
import re
import subprocess

import pytest

SEED_NAME = "kraft-node-1.properties"


def bulwark_bin():
    path = os.environ.get("BULWARK_BIN")
    if not path:
        build = os.environ.get("BULWARK_BUILD_DIR")
        path = os.path.join(build, "src", "cli", "bulwark") if build else None
    if not path or not os.path.exists(path):
        pytest.skip("BULWARK_BIN is not set (run through ctest)")
    return path


def run(*args):
    return subprocess.run([bulwark_bin(), *args], capture_output=True, text=True, timeout=60)


def seed_path():
    candidates = []
    if os.environ.get("BULWARK_SOURCE_DIR"):
        candidates.append(pathlib.Path(os.environ["BULWARK_SOURCE_DIR"]) / ".." / "shared" / "seed-examples" / SEED_NAME)
    candidates.append(pathlib.Path("/work/shared/seed-examples") / SEED_NAME)
    for c in candidates:
        if c.exists():
            return c
    pytest.skip("seed configuration %s not found" % SEED_NAME)


def write_config(tmp_path, replace=None, dirs=("logs-a", "logs-b")):
    """The seed config with log.dirs inside tmp_path; `replace` maps key -> new value (None drops the key)."""
    replace = dict(replace or {})
    replace.setdefault("log.dirs", ",".join(str(tmp_path / d) for d in dirs))
    lines = []
    for line in seed_path().read_text().splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in replace:
            if replace[key] is not None:
                lines.append("%s=%s" % (key, replace.pop(key)))
            else:
                replace.pop(key)
            continue
        lines.append(line)
    for key, value in replace.items():
        if value is not None:
            lines.append("%s=%s" % (key, value))
    config = tmp_path / "server.properties"
    config.write_text("\n".join(lines) + "\n")
    return config


def line_of(config, key):
    for number, line in enumerate(config.read_text().splitlines(), start=1):
        if line.startswith(key + "="):
            return number
    raise AssertionError("%s not in %s" % (key, config))


def read_meta(directory):
    text = (directory / "meta.properties").read_text()
    lines = text.splitlines()
    fields = dict(l.split("=", 1) for l in lines if l and not l.startswith("#"))
    return lines, fields


def new_cluster_id():
    r = run("storage", "random-uuid")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_random_uuid_format_and_uniqueness():
    ids = set()
    for _ in range(20):
        r = run("storage", "random-uuid")
        assert r.returncode == 0, r.stderr
        out = r.stdout.strip()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", out), out
        assert not out.startswith("-")
        raw = base64.urlsafe_b64decode(out + "==")
        assert len(raw) == 16
        assert raw[6] >> 4 == 4  # random (version 4) UUID, as Kafka's Uuid.randomUuid
        ids.add(out)
    assert len(ids) == 20


def test_format_writes_meta_properties(tmp_path):
    config = write_config(tmp_path)
    cluster = new_cluster_id()
    r = run("storage", "format", "-t", cluster, "-c", str(config))
    assert r.returncode == 0, r.stderr
    directory_ids = set()
    for d in ("logs-a", "logs-b"):
        assert str(tmp_path / d) in r.stdout
        lines, fields = read_meta(tmp_path / d)
        assert lines[0] == "#"
        assert re.fullmatch(r"#\w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}", lines[1]), lines[1]
        assert fields["cluster.id"] == cluster
        assert fields["node.id"] == "0"
        assert fields["version"] == "1"
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", fields["directory.id"])
        assert set(fields) == {"cluster.id", "directory.id", "node.id", "version"}
        directory_ids.add(fields["directory.id"])
    assert len(directory_ids) == 2

    info = run("storage", "info", "-c", str(config))
    assert info.returncode == 0, info.stdout + info.stderr
    assert info.stdout.count("formatted (cluster.id=%s, node.id=0" % cluster) == 2


def test_format_twice_fails_then_ignore_formatted_succeeds(tmp_path):
    config = write_config(tmp_path)
    cluster = new_cluster_id()
    assert run("storage", "format", "-t", cluster, "-c", str(config)).returncode == 0
    before = (tmp_path / "logs-a" / "meta.properties").read_text()

    again = run("storage", "format", "-t", cluster, "-c", str(config))
    assert again.returncode != 0
    assert "is already formatted" in again.stderr
    assert "--ignore-formatted" in again.stderr

    ignored = run("storage", "format", "-t", cluster, "-c", str(config), "--ignore-formatted")
    assert ignored.returncode == 0, ignored.stderr
    assert "skipped" in ignored.stdout
    assert "All of the log directories are already formatted." in ignored.stdout
    assert (tmp_path / "logs-a" / "meta.properties").read_text() == before

    # A directory added later is formatted; the old ones are left alone.
    config = write_config(tmp_path, dirs=("logs-a", "logs-b", "logs-c"))
    more = run("storage", "format", "-t", cluster, "-c", str(config), "--ignore-formatted")
    assert more.returncode == 0, more.stderr
    assert read_meta(tmp_path / "logs-c")[1]["cluster.id"] == cluster
    assert (tmp_path / "logs-a" / "meta.properties").read_text() == before


def test_mismatched_cluster_id_fails(tmp_path):
    config = write_config(tmp_path)
    first = new_cluster_id()
    second = new_cluster_id()
    assert run("storage", "format", "-t", first, "-c", str(config)).returncode == 0
    r = run("storage", "format", "-t", second, "-c", str(config), "--ignore-formatted")
    assert r.returncode != 0
    assert first in r.stderr and second in r.stderr
    assert "another cluster" in r.stderr
    assert read_meta(tmp_path / "logs-a")[1]["cluster.id"] == first


def test_invalid_cluster_id_fails(tmp_path):
    config = write_config(tmp_path)
    r = run("storage", "format", "-t", "not-a-cluster-id", "-c", str(config))
    assert r.returncode != 0
    assert "not a valid Kafka UUID" in r.stderr
    assert not (tmp_path / "logs-a").exists()


def test_bad_value_fails_naming_file_line_and_key(tmp_path):
    config = write_config(tmp_path, {"ssl.client.auth": "mandatory"})
    r = run("storage", "format", "-t", new_cluster_id(), "-c", str(config))
    assert r.returncode != 0
    expected = "%s:%d: ssl.client.auth: 'mandatory' is not one of none, requested, required" % (
        config, line_of(config, "ssl.client.auth"))
    assert expected in r.stderr, r.stderr
    assert not (tmp_path / "logs-a").exists()
    assert "sls1234567" not in r.stderr + r.stdout  # never print a password


def test_missing_listener_protocol_fails(tmp_path):
    config = write_config(tmp_path, {"listener.security.protocol.map": "SSL:SSL"})
    r = run("storage", "format", "-t", new_cluster_id(), "-c", str(config))
    assert r.returncode != 0
    assert "listeners: No security protocol defined for listener CONTROLLER" in r.stderr, r.stderr
    assert "%s:%d:" % (config, line_of(config, "listeners")) in r.stderr


def test_missing_config_file_fails(tmp_path):
    r = run("storage", "format", "-t", new_cluster_id(), "-c", str(tmp_path / "nope.properties"))
    assert r.returncode != 0
    assert "nope.properties" in r.stderr


def test_info_reports_unformatted(tmp_path):
    config = write_config(tmp_path)
    r = run("storage", "info", "-c", str(config))
    assert r.returncode != 0
    assert "%s: missing" % (tmp_path / "logs-a") in r.stdout
    (tmp_path / "logs-b").mkdir()
    r = run("storage", "info", "-c", str(config))
    assert "%s: exists, not formatted" % (tmp_path / "logs-b") in r.stdout
