#!/usr/bin/env bash
# `make demo`: the main job on the embedded defaults — a real restore of a small synthetic ALMA MOUS, end to end.
#
#   1. installs what is missing (Debian packages; the modular CASA environment from PyPI), builds the agent;
#   2. generates the synthetic MOUS with real CASA (cached after the first run);
#   3. imports it into the embedded catalogue and the embedded local archive store (SOURCE=package: puts its
#      ALMA download package under the default package root instead, and imports nothing);
#   4. starts `dropbox-agent run` on a demo spool, drops examples/requests/demo.json there with a plain `cp`,
#      as any outside system would, and follows NAME.status.json live until the request ends;
#   5. shows where the measurement sets were delivered, the notification in the outbox, a CORRECTED_DATA check,
#      and finally the request's status file. Stops the agent cleanly; exits non-zero if anything failed.
source "$(dirname "$0")/lib.sh"

SOURCE="${SOURCE:-catalogue}"   # catalogue (default) or package: `make demo SOURCE=package`
case "$SOURCE" in catalogue|package) ;; *) die "SOURCE must be catalogue or package, not '$SOURCE'" ;; esac
DEMO="$REPO/.demo"
DATA="$DEMO/data"              # the agent's data directory (DROPBOX_AGENT_DATA): catalogue, store, spool, ...
REQUEST="$REPO/examples/requests/demo.json"
NAME=demo

if [ -n "$(missing_apt_packages)" ]; then
  if [ "$(id -u)" = 0 ] || command -v sudo >/dev/null; then bash "$REPO/scripts/install-deps.sh"; else require_apt_packages; fi
fi
ensure_casa_env
ensure_fixture
build_agent

say "preparing the demo data directory $DATA (the CASA venv, the archive store and the file cache are kept between runs)"
mkdir -p "$DATA"
# A fresh spool, journal, catalogue, working areas, downloads and outbox every run.
rm -rf "$DATA/spool" "$DATA/restores" "$DATA/downloads" "$DATA/outbox" "$DATA"/journal.sqlite* "$DATA"/catalogue.sqlite* "$DATA/metrics.prom"
ln -sfn "$CASA_VENV" "$DATA/casa-venv"
if [ "$SOURCE" = package ]; then
  # What an astronomer has: the archive's download package (auxiliary tar, raw .asdm.sdm tars, product tar,
  # README), in a folder under the embedded default package root <data>/packages. No catalogue import at all.
  PACKAGE="$DATA/packages/2023.1.00042.S_uid___A001_X3f01_X1a5"
  rm -rf "$DATA/packages" "$DATA/archive"
  mkdir -p "$PACKAGE"
  for f in "$FIXTURE_DIR"/packages/member/*; do
    ln "$f" "$PACKAGE/" 2>/dev/null || cp "$f" "$PACKAGE/"
  done
  say "the download package, as the ALMA archive delivers it: $PACKAGE"
  ls -l "$PACKAGE" >&2
  REQUEST="$DEMO/package-request.json"
  printf '{"mous": "uid://A001/X3f01/X1a5", "email": ["scientist@example.org"], "requestId": "demo-package", "source": {"package": "%s"}}\n' "$PACKAGE" > "$REQUEST"
  NAME=demo-package
  export DROPBOX_AGENT_DATA="$DATA"
  "$AGENT" validate --plan "$REQUEST" | sed -n '1,/^PPR:/p' >&2
else
# The embedded local store holds the fixture's files under their NGAS file ids (hard links: no copy).
rm -rf "$DATA/archive"
mkdir -p "$DATA/archive"
for f in "$FIXTURE_DIR"/store/*; do
  ln "$f" "$DATA/archive/" 2>/dev/null || cp "$f" "$DATA/archive/"
done
export DROPBOX_AGENT_DATA="$DATA"
"$AGENT" catalog import "$FIXTURE_DIR/catalog.json" >&2
"$AGENT" catalog show uid://A001/X3f01/X1a5 >&2
fi

say "starting the agent (embedded defaults, data in $DATA); its log: $DEMO/agent.log"
mkdir -p "$DATA/spool"
"$AGENT" run >"$DEMO/agent.log" 2>&1 &
AGENT_PID=$!
stop_agent() {
  if kill -0 "$AGENT_PID" 2>/dev/null; then
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID" && say "agent stopped cleanly" || { say "agent exited with status $?"; return 1; }
  fi
}
trap 'kill -TERM $AGENT_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '"agent started"' "$DEMO/agent.log" 2>/dev/null && break; sleep 0.1; done
grep -q '"agent started"' "$DEMO/agent.log" || { cat "$DEMO/agent.log" >&2; die "the agent did not start"; }

say "dropping $REQUEST into the spool as an outside system would: cp"
cp "$REQUEST" "$DATA/spool/$NAME.json"

STATUS="$DATA/spool/$NAME.status.json"
say "following $STATUS"
"$PYTHON" - "$STATUS" <<'PY'
import json, sys, time, os
path = sys.argv[1]
last = None
deadline = time.time() + 1800
while time.time() < deadline:
    try:
        with open(path) as f:
            s = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        time.sleep(0.2)
        continue
    step = s.get("step") or {}
    p = s.get("progress") or {}
    line = f"{s['state']:<9} step {step.get('number', '-')}/6 {step.get('name', ''):<12}"
    if p.get("fraction") is not None:
        line += f" {100 * p['fraction']:5.1f}%"
    if p.get("bytesTotal"):
        line += f" {p.get('bytesDone', 0)}/{p['bytesTotal']} B"
    if p.get("etaSeconds") is not None:
        line += f" eta {int(p['etaSeconds'])} s"
    if p.get("message"):
        line += f"  {p['message']}"
    if line != last:
        print(time.strftime("%H:%M:%S"), line, flush=True)
        last = line
    if s["state"] in ("succeeded", "failed", "rejected", "cancelled"):
        sys.exit(0 if s["state"] == "succeeded" else 1)
    time.sleep(0.2)
print("timed out waiting for the request to end", file=sys.stderr)
sys.exit(1)
PY
outcome=$?

DELIVERY="$("$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])).get("result") or {}; print(r.get("deliveryPath",""))' "$STATUS")"
verified=0
if [ $outcome = 0 ] && [ -n "$DELIVERY" ]; then
  say "calibrated measurement sets delivered to $DELIVERY"
  ls -l "$DELIVERY" >&2
  if [ "$SOURCE" = package ]; then
    say "everything came from the download package $PACKAGE (no catalogue, no archive store)"
  else
    hits=$(grep -cE '"from.cache":"?true' "$DEMO/agent.log" || true)
    misses=$(grep -cE '"from.cache":"?false' "$DEMO/agent.log" || true)
    say "archive files: $misses fetched from the store, $hits from the cache (a second run fetches nothing)"
  fi
  # Mail goes through the agent's durable queue, sent just after the request ends: wait for it (30 s at most).
  for _ in $(seq 150); do ls "$DATA"/outbox/*.eml >/dev/null 2>&1 && break; sleep 0.2; done
  if ls "$DATA"/outbox/*.eml >/dev/null 2>&1; then
    say "notification written to the outbox ($DATA/outbox)"
    for eml in "$DATA"/outbox/*.eml; do echo "--- $eml" >&2; cat "$eml" >&2; echo >&2; done
  else
    say "no notification in the outbox after 30 s; see $DEMO/agent.log"
    outcome=1
  fi
  say "verifying CORRECTED_DATA in the delivered measurement sets"
  verified=1
  for ms in "$DELIVERY"/*.ms; do
    (cd "$DEMO" && casa_python "$REPO/casa/compare_ms.py" --check "$ms") || verified=0
  done
else
  say "the request did not succeed; the agent's log is $DEMO/agent.log"
  tail -n 20 "$DEMO/agent.log" >&2
fi
stop_agent || outcome=1
trap - EXIT
say "final status file $STATUS"
cat "$STATUS"
[ $outcome = 0 ] && [ $verified = 1 ]
