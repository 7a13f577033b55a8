#!/bin/sh
# Runs the example and checks what it printed as well as its exit status.
set -eu
out=$("$1")
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -q '^outcome 2: LATE_FAILED by deny_list, code 1$'
printf '%s\n' "$out" | grep -q '^outcome 1: VERIFIED by none, code 0$'
