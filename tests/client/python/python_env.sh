# Sourced by the sh_tests in this package. Debian's python3 has python3-protobuf (a python3
# found earlier on PATH may not), so the tests name it explicitly; the generated vouch_pb2 and
# the client are found through the test's runfiles.
RUNFILES="${TEST_SRCDIR}/vouch"
PYTHON=/usr/bin/python3
export PYTHONPATH="${RUNFILES}/proto:${RUNFILES}/client/python"
# The runfiles tree is Bazel's: keep bytecode caches out of it.
export PYTHONDONTWRITEBYTECODE=1
