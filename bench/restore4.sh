#!/usr/bin/env bash
# The four-EB MOUS (fixture MOUS C) restored with real modular CASA: serial vs per-EB parallel (restore_mous.py
# --parallel 1/2/4, same run, every MS checked against its reference), then through the agent (release build,
# local backend, casa.parallelExecBlocks 1 and 2): request time vs CASA time = scheduler overhead per request.
# With --slurm, a third variant on a private single-node Slurm (scripts/services/slurm.sh, root): the slurm backend.
#   bench/restore4.sh [--rounds N] [--agent-rounds N] [--skip-agent] [--skip-part1] [--slurm | --slurm-config FILE]
source "$(dirname "$0")/../scripts/lib.sh"
ensure_casa_env >/dev/null
ensure_fixture
if [[ " $* " != *" --skip-agent "* ]]; then
  say "building the agent (release)"
  (cd "$REPO" && swift build -c release >&2)
  export DROPBOX_AGENT_BIN="$REPO/.build/release/dropbox-agent"
fi
export DROPBOX_CASA_VENV="$CASA_VENV" DROPBOX_FIXTURE_DIR="$FIXTURE_DIR"
exec "$CASA_VENV/bin/python3" "$REPO/bench/restore4.py" "$@"
