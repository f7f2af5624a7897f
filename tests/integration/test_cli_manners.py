"""The command line's manners: --version, an unknown command named with the nearest real one, a group
without its command listing them, and the exit codes documented in --help (0, 1, 2)."""
import subprocess

from harness import BIN


def bulwark(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)


def test_version_flag_and_command_agree():
    flag, command = bulwark("--version"), bulwark("version")
    assert flag.returncode == 0 and command.returncode == 0
    assert flag.stdout.startswith("bulwark ") and "OpenSSL" in flag.stdout
    assert flag.stdout.strip() == command.stdout.strip()


def test_unknown_commands_are_named_with_the_nearest_one():
    top = bulwark("frobnicate")
    assert top.returncode == 2
    assert "bulwark: unknown command 'frobnicate'" in top.stderr and "Commands: acl, broker" in top.stderr
    nested = bulwark("pki", "isue", "broker", "kafka-1")
    assert nested.returncode == 2
    assert "bulwark pki: unknown command 'isue' (did you mean 'issue'?)" in nested.stderr, nested.stderr
    group = bulwark("pki")
    assert group.returncode == 2 and "bulwark pki: a command is required: " in group.stderr, group.stderr
    listed = group.stderr.split("a command is required: ")[1].split("\n")[0].split(", ")
    assert {"init", "issue", "export", "verify", "acme"} <= set(listed), listed


def test_help_documents_the_exit_codes():
    shown = bulwark("--help")
    assert shown.returncode == 0
    assert "Exit codes: 0 success; 1 the command failed" in shown.stdout and "2 a usage error" in shown.stdout
