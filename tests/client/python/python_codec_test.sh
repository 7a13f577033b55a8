#!/usr/bin/env bash
# The Python client's framing against protobuf's own varint code; no server needed.
set -euo pipefail
source "${TEST_SRCDIR}/vouch/tests/client/python/python_env.sh"
exec "${PYTHON}" "${RUNFILES}/tests/client/python/python_codec_test.py"
