#!/usr/bin/env bash
# Three agents on three namespace hosts (unshare), one shared spool, one host killed whole mid-run: the tests of
# tests/test_multihost.py with 1 000 requests over the bind mount and over sshfs (make test runs 300 over sshfs).
# Prints the times; the counts (exactly once, one mail per request, takeovers) are the tests' assertions.
#   bench/multihost.sh [N]        (root; default N=1000)
source "$(dirname "$0")/../scripts/lib.sh"
N="${1:-1000}"
say "building the agent (debug, as the tests use it)"
(cd "$REPO" && swift build >&2)
cd "$REPO"
DROPBOX_MULTIHOST_N="$N" DROPBOX_MULTIHOST_SSHFS_N="$N" exec "$PYTHON" -m pytest -q -s tests/test_multihost.py -p no:cacheprovider
