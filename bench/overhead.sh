#!/usr/bin/env bash
# Agent overhead around a real modular-CASA restore, with the release build (what is shipped).
source "$(dirname "$0")/../scripts/lib.sh"
ensure_casa_env >/dev/null
ensure_fixture
say "building the agent (release)"
(cd "$REPO" && swift build -c release >&2)
export DROPBOX_AGENT_BIN="$REPO/.build/release/dropbox-agent" DROPBOX_CASA_VENV="$CASA_VENV" DROPBOX_FIXTURE_DIR="$FIXTURE_DIR"
exec "$PYTHON" "$REPO/bench/overhead.py" "$@"
