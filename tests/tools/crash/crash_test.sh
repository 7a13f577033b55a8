#!/usr/bin/env bash
# Runs crash_test.py (kill -9 of vouchd under ack=durable, restart, checks) with Debian's
# python3, which has python3-protobuf. CRASH_CYCLES overrides the number of cycles (the soak
# target sets 100).
set -euo pipefail
source "${TEST_SRCDIR}/vouch/tests/client/python/python_env.sh"
"${PYTHON}" "${RUNFILES}/tests/tools/crash/crash_test.py" \
  --vouchd="${RUNFILES}/tools/vouchd/vouchd" --dir="${TEST_TMPDIR}" \
  --cycles="${CRASH_CYCLES:-5}" "$@"
