"""PNG plots of one bench/broker_bench.py run: per listener, throughput over time (the broker's bytes in and
out per second from its /metrics counters, and its CPU) and end-to-end latency over time (the one-second
e2e slices). Needs matplotlib (Debian: python3-matplotlib, imported by /usr/bin/python3)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402


def rates(samples):
    """(t, MB/s in, MB/s out, broker CPU %) between consecutive samples."""
    out = []
    for a, b in zip(samples, samples[1:]):
        dt = b["t"] - a["t"]
        if dt <= 0:
            continue
        def per_s(key):
            if a[key] is None or b[key] is None:
                return None
            return (b[key] - a[key]) / dt / 1e6
        out.append((b["t"], per_s("bytes_in"), per_s("bytes_out"), (b["cpu_s"] - a["cpu_s"]) / dt * 100))
    return out


def throughput_plot(listener, timeline, path):
    phases = [p for p in timeline["phases"] if p["name"].startswith(listener + " ")]
    if not phases:
        return None
    points = rates(timeline["samples"])
    fig, ax = plt.subplots(figsize=(10, 4.5))
    cpu_ax = ax.twinx()
    start = min(p["start"] for p in phases) - 1
    end = max(p["end"] for p in phases) + 1
    window = [pt for pt in points if start <= pt[0] <= end]
    # Only this listener's phases: the other listeners' runs would otherwise show in the same counters.
    inside = [pt for pt in window if any(p["start"] <= pt[0] <= p["end"] + 0.5 for p in phases)]
    t = [pt[0] for pt in inside]
    ax.plot(t, [pt[1] or 0 for pt in inside], ".", ms=3, label="bytes in (produce) MB/s")
    ax.plot(t, [pt[2] or 0 for pt in inside], ".", ms=3, label="bytes out (consume) MB/s")
    cpu_ax.plot(t, [pt[3] for pt in inside], "x", ms=3, color="grey", label="broker CPU %")
    for p in phases:
        ax.axvspan(p["start"], p["end"], alpha=0.08)
        ax.text(p["start"], 0, p["name"].split(" ", 1)[1], fontsize=7, rotation=90, va="bottom")
    ax.set_xlabel("seconds since the sampler started")
    ax.set_ylabel("MB/s (10^6 bytes per second)")
    cpu_ax.set_ylabel("broker CPU % (100 = one core)")
    ax.set_title(f"{listener}: throughput over time (sampled every {timeline['sample_s'] * 1000:.0f} ms)")
    lines = ax.get_legend_handles_labels()
    cpu_lines = cpu_ax.get_legend_handles_labels()
    ax.legend(lines[0] + cpu_lines[0], lines[1] + cpu_lines[1], loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_plot(listener, slices, rate, path):
    if not slices:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    mid = [(s["start"] + s["end"]) / 2 for s in slices]
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max")):
        ax.plot(mid, [s[key] for s in slices], "o-", label=label)
    ax.axhline(2.0, ls="--", color="red", lw=0.8, label="goal: p99 <= 2 ms")
    ax.set_xlabel("seconds since the sampler started")
    ax.set_ylabel("end-to-end latency, ms")
    ax.set_yscale("log")
    ax.set_title(f"{listener}: e2e latency at {rate} msg/s, one-second slices (TCP_NODELAY)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw(results, directory):
    """Writes the plots into `directory` and returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    timeline = results.get("timeline") or {"samples": [], "phases": [], "sample_s": 0}
    rate = results.get("meta", {}).get("e2e_rate")
    paths = []
    for listener in results.get("meta", {}).get("listeners", []):
        if not isinstance(results.get(listener), dict):
            continue
        name = listener.lower()
        paths.append(throughput_plot(listener, timeline, directory / f"throughput-{name}.png"))
        paths.append(latency_plot(listener, results[listener].get("e2e_slices"), rate, directory / f"latency-{name}.png"))
    return [str(p) for p in paths if p]
