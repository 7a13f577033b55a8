#!/usr/bin/env bash
# vouch-bench on every design (async, hybrid, sync, baseline) at two tiny rates for a fraction of
# a second: it must exit 0, and its JSON report must carry every documented key, a step per
# (rate, design), and one outcome for every confirmed transaction in each step. A bad flag
# must exit 2.
#
# Method: the checks read the --json report with Debian's /usr/bin/python3. Nothing here asserts
# a latency, a rate or a target: on a shared 2-core machine those are reported, not judged.
set -euo pipefail

readonly BENCH="${TEST_SRCDIR}/vouch/tools/perf/vouch-bench"
readonly PYTHON=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }

json="${TEST_TMPDIR}/bench.json"
"${BENCH}" --rates=2000,5000 --duration_s=0.2 --accounts=1000 --sample_every=4 \
  --json="${json}" >"${TEST_TMPDIR}/bench.txt" || fail "vouch-bench exited with $?"
cat "${TEST_TMPDIR}/bench.txt"

"${PYTHON}" - "${json}" <<'PY' || fail "the JSON report is wrong"
import json, sys
report = json.load(open(sys.argv[1]))
assert report["schema_version"] == 1 and report["tool"] == "vouch-bench"
assert report["passed"] is True
config = report["config"]
for key in ("rates", "designs", "duration_s", "producers", "accounts", "fraud_share",
            "insufficient_share", "seed", "sample_every", "confirm_p99_limit_ns",
            "sustained_share_min", "hardware_threads"):
    assert key in config, key
designs = ["async", "hybrid", "sync", "baseline"]
assert config["designs"] == designs and config["rates"] == [2000, 5000], config

steps = report["steps"]
assert [(s["rate_offered"], s["design"]) for s in steps] == \
    [(r, d) for r in (2000, 5000) for d in designs], [(s["rate_offered"], s["design"]) for s in steps]
latency_keys = ("submit_call", "confirm_from_intended", "confirm_to_fraud", "confirm_to_ledger",
                "confirm_to_outcome")
for s in steps:
    name = (s["design"], s["rate_offered"])
    for key in ("scheduled", "sent", "answered", "confirmed", "rejected", "busy_retries",
                "abandoned", "outcomes", "outcomes_verified", "outcomes_late_failed",
                "outcomes_late_timeout", "duplicate_outcomes", "unknown_outcomes",
                "missing_outcomes", "subject_confirmed", "drained", "passed", "sustained",
                "answer_window_s", "outcome_window_s", "throughput_confirmed",
                "throughput_verified", "throughput_outcomes", "machine_busy_cpu_s",
                "process_cpu_s", "threads", "latency_ns"):
        assert key in s, (name, key)
    # Every confirmed transaction got exactly one outcome.
    assert s["confirmed"] > 0, name
    assert s["outcomes"] == s["confirmed"] == s["subject_confirmed"], name
    assert s["missing_outcomes"] == s["duplicate_outcomes"] == s["unknown_outcomes"] == 0, name
    assert s["drained"] is True and s["passed"] is True, name
    assert s["outcomes"] == (s["outcomes_verified"] + s["outcomes_late_failed"]
                             + s["outcomes_late_timeout"]), name
    assert s["answered"] == s["confirmed"] + s["rejected"], name
    assert "bench-prod-0" in s["threads"], (name, sorted(s["threads"]))
    for times in s["threads"].values():
        assert set(times) == {"cpu_s", "runqueue_wait_s"}, (name, times)
    for key in latency_keys:
        latency = s["latency_ns"][key]
        assert set(latency) == {"count", "p50", "p90", "p99", "p99_9", "max", "mean",
                                 "clamped"}, (name, key)
        assert latency["count"] > 0, (name, key)
        assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99_9"] \
            <= latency["max"], (name, key, latency)
    assert s["latency_ns"]["confirm_to_outcome"]["count"] == s["outcomes"], name

summary = report["summary"]
assert set(summary["designs"]) == set(designs)
for d in designs:
    assert {"max_rate_confirm_p99_under_limit", "peak_throughput_verified"} <= set(summary["designs"][d])
assert [m["rate_offered"] for m in summary["modes"]] == [2000, 5000]
for m in summary["modes"]:
    for d in ("async", "hybrid", "sync"):
        assert {"throughput_verified", "confirm_p50_ns", "confirm_p99_ns"} == set(m[d]), m
    assert "sync_over_async_confirm_p99" in m
assert [b["rate_offered"] for b in summary["baseline"]] == [2000, 5000]
for b in summary["baseline"]:
    assert b["ratio"] is not None and b["ratio"] > 0, b
assert "baseline_peak_ratio" in summary
assert set(summary["targets"]) == {"verified_throughput", "confirm_p99_at_half_rate",
                                   "sync_over_async_confirm_p99", "async_throughput_ge_sync",
                                   "baseline_ratio"}, summary["targets"]
print("vouch-bench report:", len(steps), "steps, every confirmed transaction got one outcome")
PY

status=0
"${BENCH}" --designs=nosuch >/dev/null 2>&1 || status=$?
[[ "${status}" -eq 2 ]] || fail "a bad --designs exited with ${status}, not 2"
status=0
"${BENCH}" --no_such_flag >/dev/null 2>&1 || status=$?
[[ "${status}" -eq 2 ]] || fail "an unknown flag exited with ${status}, not 2"
echo "PASS: vouch-bench ran every design and reported one outcome per confirmation"
