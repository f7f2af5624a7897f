"""Hosts of their own for cluster nodes: one network namespace per node (`ip netns`), each joined by a
veth pair to a bridge in the test's namespace, on a 10.x.0.0/24 subnet of its own. The test's processes
(clients, checkers) reach node i at 10.x.0.i through the bridge; cutting node i's link (its veth's
bridge end down) isolates it from every other node and from the clients at once. Everything is removed
by close(), and names carry a tag so that runs side by side never meet. Needs root (CAP_NET_ADMIN)."""
import os
import random
import subprocess


def ip(*args, check=True):
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


class Network:
    def __init__(self, size):
        self.tag = f"{os.getpid() % 10000}{random.randrange(100):02d}"
        self.subnet = 10 + random.randrange(200)
        self.bridge = f"bw{self.tag}br"
        self.namespaces = {i: f"bw{self.tag}n{i}" for i in range(1, size + 1)}
        self.links = {i: f"bw{self.tag}h{i}" for i in range(1, size + 1)}  # the bridge ends
        self.cut_nodes = set()
        try:
            ip("link", "add", "name", self.bridge, "type", "bridge")
            ip("addr", "add", f"10.{self.subnet}.0.254/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for i, ns in self.namespaces.items():
                peer = f"bw{self.tag}p{i}"
                ip("netns", "add", ns)
                ip("link", "add", self.links[i], "type", "veth", "peer", "name", peer)
                ip("link", "set", peer, "netns", ns)
                ip("link", "set", self.links[i], "master", self.bridge)
                ip("link", "set", self.links[i], "up")
                ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", peer)
                ip("-n", ns, "link", "set", peer, "up")
                ip("-n", ns, "link", "set", "lo", "up")
        except Exception:
            self.close()
            raise

    def address(self, node_id):
        return f"10.{self.subnet}.0.{node_id}"

    def hosts(self):
        """What cluster_harness.Cluster takes: {id: (address, launcher)}."""
        return {i: (self.address(i), ["ip", "netns", "exec", ns]) for i, ns in self.namespaces.items()}

    def cut(self, node_id):
        ip("link", "set", self.links[node_id], "down")
        self.cut_nodes.add(node_id)

    def heal(self, node_id=None):
        for i in ([node_id] if node_id else list(self.cut_nodes)):
            ip("link", "set", self.links[i], "up")
            self.cut_nodes.discard(i)

    def close(self):
        for ns in self.namespaces.values():
            ip("netns", "del", ns, check=False)  # takes its veth pair with it
        ip("link", "del", self.bridge, check=False)


def available():
    """Why namespaces cannot be made here (None when they can)."""
    probe = f"bwprobe{os.getpid() % 100000}"
    result = ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return result.stderr.strip() or "ip netns add failed"
    ip("netns", "del", probe, check=False)
    return None
