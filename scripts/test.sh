#!/usr/bin/env bash
# `make test`: unit, integration and end-to-end tests with real services and real CASA.
source "$(dirname "$0")/lib.sh"
require_apt_packages
"$PYTHON" -c "import pytest, jsonschema" 2>/dev/null || die "missing Python packages: pip install pytest jsonschema"
ensure_casa_env --with-tests
ensure_fixture
build_agent ${SWIFT_BUILD_FLAGS:-}
export DROPBOX_CASA_VENV="$CASA_VENV" DROPBOX_FIXTURE_DIR="$FIXTURE_DIR" DROPBOX_REPO="$REPO"
status=0
say "swift test"
(cd "$REPO" && swift test ${SWIFT_BUILD_FLAGS:-} 2>&1) || status=1
say "python tests (schemas, CLI)"
(cd "$REPO" && "$PYTHON" -m pytest -q tests) || status=1
say "python tests (CASA programs, with real CASA)"
(cd "$REPO" && "$CASA_VENV/bin/python3" -m pytest -q casa/tests) || status=1
[ $status = 0 ] && say "all tests passed" || say "some tests FAILED"
exit $status
