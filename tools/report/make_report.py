"""Builds the performance report from the JSON files run_report.sh collected.

Input (a directory): harness.json (vouch-bench), load_<rate>.json (vouch-load over TCP),
pingpong.json (vouch-pingpong), micro_*.json (Google Benchmark). Each is optional; a missing
one is reported as missing, not silently dropped.
Output (same directory): report.md (a table per section, a plot per mode), report.json (every
input merged under one object), and plots/*.png.
"""

import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PERCENTILES = ("p50", "p90", "p99", "p99_9", "max")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def us(ns):
    return "—" if ns is None else "%.1f µs" % (ns / 1e3) if ns < 1e6 else "%.2f ms" % (ns / 1e6)


def harness_section(harness, out_dir, lines):
    lines.append("## In process: modes, baseline, saturation (vouch-bench)\n")
    if harness is None:
        lines.append("_harness.json missing: vouch-bench did not run._\n")
        return
    steps = harness.get("steps", [])
    designs = sorted({s["design"] for s in steps}, key=lambda d: ["async", "hybrid", "sync", "baseline"].index(d) if d in ["async", "hybrid", "sync", "baseline"] else 9)
    lines.append("| design | offered/s | confirmed/s | verified/s | confirm p50 | confirm p99 | confirm→outcome p99 | one outcome each |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for s in steps:
        lat = s.get("latency_ns", {})
        call = lat.get("submit_call", {})
        outcome = lat.get("confirm_to_outcome", {})
        lines.append("| %s | %s | %.0f | %.0f | %s | %s | %s | %s |" % (
            s["design"], "{:,}".format(int(s["rate_offered"])), s.get("throughput_confirmed", 0),
            s.get("throughput_verified", 0), us(call.get("p50")), us(call.get("p99")),
            us(outcome.get("p99")), "yes" if s.get("missing_outcomes", 1) == 0 and
            s.get("duplicate_outcomes", 1) == 0 else "NO"))
    lines.append("")
    summary = harness.get("summary", {})
    if "baseline_peak_ratio" in summary:
        lines.append("Peak verified throughput, vouch async ÷ baseline: **%.2f×**\n" %
                     summary["baseline_peak_ratio"])
    targets = summary.get("targets", {})
    if targets:
        lines.append("| target | measured | met |")
        lines.append("|---|---|---|")
        for name, t in targets.items():
            measured = {k: v for k, v in t.items() if k not in ("met",)}
            lines.append("| %s | %s | %s |" % (
                name, ", ".join("%s %s" % (k, v) for k, v in measured.items()),
                "yes" if t.get("met") else "no"))
        lines.append("")
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    for design in designs:
        rows = [s for s in steps if s["design"] == design]
        if not rows:
            continue
        figure, axes = plt.subplots(1, 2, figsize=(11, 4))
        for axis, key, title in ((axes[0], "submit_call", "confirm (Submit call)"),
                                 (axes[1], "confirm_to_outcome", "confirm → outcome")):
            rates = [r["rate_offered"] for r in rows]
            for p in PERCENTILES:
                values = [r.get("latency_ns", {}).get(key, {}).get(p) for r in rows]
                if any(v is None for v in values):
                    continue
                axis.plot(rates, [max(v, 1) / 1e3 for v in values], marker="o", label=p)
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel("offered transactions/s")
            axis.set_ylabel("µs")
            axis.set_title("%s: %s" % (design, title))
            axis.grid(True, which="both", alpha=0.3)
            axis.legend(fontsize=8)
        figure.tight_layout()
        name = "plots/latency_%s.png" % design
        figure.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(figure)
        lines.append("![%s latency percentiles](%s)\n" % (design, name))


def tcp_section(loads, pingpong, lines):
    lines.append("## Over TCP (vouchd + vouch-load, 4 connections, batch 50), stepped rates\n")
    if not loads:
        lines.append("_no load_*.json found._\n")
    else:
        lines.append("| offered/s | achieved/s | missing outcomes | confirm RTT p50 | p99 | p99.9 | "
                     "confirm→outcome p50 | p99 |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for rate, report in sorted(loads.items()):
            for phase in report.get("phases", []):
                rtt = phase.get("latency_ns", {}).get("confirm_from_intended", {})
                outcome = phase.get("latency_ns", {}).get("confirm_to_outcome", {})
                lines.append("| {:,} | {:,.0f} | {} | {} | {} | {} | {} | {} |".format(
                    rate, phase.get("achieved_rate", 0), report.get("missing_outcomes"),
                    us(rtt.get("p50")), us(rtt.get("p99")), us(rtt.get("p99_9")),
                    us(outcome.get("p50")), us(outcome.get("p99"))))
        lines.append("")
    lines.append("## Physical reference: raw loopback ping-pong vs confirm round trip\n")
    if pingpong is None:
        lines.append("_pingpong.json missing._\n")
        return
    lines.append("| round trip | p50 | p90 | p99 | p99.9 | max |")
    lines.append("|---|---|---|---|---|---|")
    for key in ("raw_loopback_blocking", "raw_loopback_spinning", "vouch_confirm"):
        row = pingpong.get(key)
        if row:
            lines.append("| %s | %s |" % (key, " | ".join(
                us(row.get(p + "_ns" if p != "p99_9" else "p999_ns")) for p in PERCENTILES)))
    if "p50_ratio" in pingpong:
        lines.append("\nvouch confirm p50 ÷ raw (polling) p50 = **%.2f** (target ≤ 2)\n" %
                     pingpong["p50_ratio"])


def micro_section(micro, lines):
    lines.append("## Microbenchmarks\n")
    if not micro:
        lines.append("_no micro_*.json found._\n")
        return
    lines.append("| benchmark | time per iteration | items/s |")
    lines.append("|---|---|---|")
    for name, data in sorted(micro.items()):
        for b in data.get("benchmarks", []):
            unit = b.get("time_unit", "ns")
            lines.append("| %s / %s | %.1f %s | %s |" % (
                name, b.get("name"), b.get("real_time", 0), unit,
                "%.3g" % b["items_per_second"] if "items_per_second" in b else "—"))
    lines.append("")


def main():
    out_dir = sys.argv[1]
    harness = load(os.path.join(out_dir, "harness.json"))
    loads = {int(os.path.basename(p)[5:-5]): load(p)
             for p in glob.glob(os.path.join(out_dir, "load_*.json"))}
    loads = {k: v for k, v in loads.items() if v is not None}
    pingpong = load(os.path.join(out_dir, "pingpong.json"))
    micro = {os.path.basename(p)[6:-5]: load(p)
             for p in sorted(glob.glob(os.path.join(out_dir, "micro_*.json")))}
    micro = {k: v for k, v in micro.items() if v is not None}
    lines = ["# vouch performance report\n",
             "Generated by `tools/report/run_report.sh` on this machine; method and targets in "
             "docs/BENCHMARKS.md and docs/PERF_HARNESS.md.\n"]
    harness_section(harness, out_dir, lines)
    tcp_section(loads, pingpong, lines)
    if os.path.exists(os.path.join(out_dir, "plots", "timeline.png")):
        lines.append("## A stalled verifier, second by second (tools/demo)\n")
        lines.append("The fraud verifier stalls for 1.5 s at second 4: confirmations go on, "
                     "the stalled transactions time out (LATE_TIMEOUT), the ring fills and "
                     "ingest answers BUSY until the verifier is back.\n")
        lines.append("![timeline](plots/timeline.png)\n")
    micro_section(micro, lines)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"harness": harness, "tcp_load": {str(k): v for k, v in loads.items()}, "pingpong": pingpong,
                   "micro": micro}, f, indent=1)
    print("report: %s" % os.path.join(out_dir, "report.md"))


if __name__ == "__main__":
    main()
