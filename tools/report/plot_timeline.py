"""Draws the demo's per-second timeline (tools/demo --timeline=...) as a PNG: outcomes per second
by kind, with the verifier stall shaded, and confirm latency per second. A stalled verifier's
late timeouts stand out at a glance.

  /usr/bin/python3 tools/report/plot_timeline.py timeline.json timeline.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def per_second(values):
    return [b - a for a, b in zip([0] + values[:-1], values)]


def main():
    source, target = sys.argv[1], sys.argv[2]
    timeline = json.load(open(source))
    seconds = [s["second"] for s in timeline["seconds"]]
    figure, (counts, latency) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for key, colour in (("verified", "tab:green"), ("late_failed", "tab:orange"),
                        ("late_timeout", "tab:red")):
        counts.plot(seconds, per_second([s[key] for s in timeline["seconds"]]), marker="o",
                    color=colour, label=key.upper())
    counts.plot(seconds, per_second([s["busy"] for s in timeline["seconds"]]), marker=".",
                color="tab:gray", linestyle="--", label="BUSY (refused)")
    counts.set_ylabel("per second")
    counts.set_yscale("symlog", linthresh=10)
    counts.set_title("Outcomes per second")
    for p, style in (("confirm_p50_ns", "-"), ("confirm_p99_ns", "-"), ("confirm_max_ns", ":")):
        latency.plot(seconds, [max(s[p], 1) / 1e3 for s in timeline["seconds"]], linestyle=style,
                     marker="o", label=p.replace("confirm_", "").replace("_ns", ""))
    latency.set_yscale("log")
    latency.set_ylabel("confirm latency, µs")
    latency.set_xlabel("second of the run")
    latency.set_title("Confirm latency (Submit call, from its due time)")
    if timeline.get("stall_at_s", -1) >= 0:
        start = timeline["stall_at_s"]
        end = start + timeline["stall_ms"] / 1000.0
        for axis in (counts, latency):
            axis.axvspan(start, end + 1, color="tab:red", alpha=0.1,
                         label="fraud verifier stalled" if axis is counts else None)
    for axis in (counts, latency):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    print("timeline: %s" % target)


if __name__ == "__main__":
    main()
