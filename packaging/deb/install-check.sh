#!/usr/bin/env bash
# Installs a built .deb on this machine for real and checks what the maintainer scripts and the spool
# permissions do, then removes and purges it again. Changes the system (a package, a system user, three
# throwaway users, /var/lib/dropbox-agent): run it by hand, as root, on a machine where dropbox-agent is
# not installed and /var/lib/dropbox-agent does not exist. Works without systemd as PID 1 (the agent is
# started with setpriv, as the unit would: user dropbox-agent, the packaged configuration).
#
#   packaging/deb/install-check.sh .build-deb/dropbox-agent_<version>_amd64.deb
set -euo pipefail

DEB="$(realpath "${1:?usage: $0 DEB}")"
DATA=/var/lib/dropbox-agent
SPOOL="$DATA/spool"
EXAMPLE=/usr/share/dropbox-agent/examples/requests/demo.json
DROPPERS=(dbxa-check-drop1 dbxa-check-drop2)
OUTSIDER=dbxa-check-outsider
LOG="$(mktemp)"
AGENT_PID=""
failures=0

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
ok() { printf '  ok    %s\n' "$*"; }
bad() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }
check() { # description command...
    local what="$1"; shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}
refuse() { # description command... (the command must fail)
    local what="$1"; shift
    if "$@" >/dev/null 2>&1; then bad "$what"; else ok "$what"; fi
}
as() { local u="$1"; shift; (cd / && runuser -u "$u" -- "$@"); }
mode_of() { stat -c '%a %U:%G' "$1"; }
wait_for() { # path seconds
    local deadline=$((SECONDS + $2))
    while [ ! -e "$1" ]; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.1; done
}

cleanup() {
    if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then kill -TERM "$AGENT_PID"; fi
    for u in "${DROPPERS[@]}" "$OUTSIDER"; do getent passwd "$u" >/dev/null && userdel "$u"; done
    dpkg-query -W dropbox-agent >/dev/null 2>&1 && dpkg -P dropbox-agent >/dev/null
    rm -rf "$DATA"
    getent passwd dropbox-agent >/dev/null && deluser --system dropbox-agent >/dev/null 2>&1
    rm -f "$LOG"
}

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
if dpkg-query -W -f='${Status}' dropbox-agent 2>/dev/null | grep -q installed; then
    echo "dropbox-agent is installed already; this check installs and purges it" >&2; exit 2
fi
[ ! -e "$DATA" ] || { echo "$DATA exists; this check would delete it" >&2; exit 2; }
trap cleanup EXIT

say "dpkg -i $DEB"
dpkg -i "$DEB"
check "dropbox-agent --version from PATH" dropbox-agent --version
check "system user dropbox-agent with home $DATA" sh -c "getent passwd dropbox-agent | grep -q ':$DATA:/usr/sbin/nologin\$'"
check "system uid (< 1000)" sh -c '[ "$(id -u dropbox-agent)" -lt 1000 ]'
check "group dropbox-agent" getent group dropbox-agent
check "/etc/dropbox-agent/agent.json is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' dropbox-agent | grep -q /etc/dropbox-agent/agent.json"
check "unit enabled (multi-user.target.wants symlink)" test -L /etc/systemd/system/multi-user.target.wants/dropbox-agent.service
for expected in "755 dropbox-agent:dropbox-agent $DATA" "3730 dropbox-agent:dropbox-agent $SPOOL" \
    "700 dropbox-agent:dropbox-agent $SPOOL/.dropbox-agent" "700 dropbox-agent:dropbox-agent $DATA/restores" \
    "711 dropbox-agent:dropbox-agent $DATA/downloads"; do
    path="${expected##* }"
    check "$expected" test "$(mode_of "$path") $path" = "$expected"
done

say "the agent as user dropbox-agent with the packaged configuration"
# setpriv execs (runuser would fork and, on SIGTERM, kill the agent after 2 s), so $! is the agent.
(cd "$DATA" && exec setpriv --reuid=dropbox-agent --regid=dropbox-agent --init-groups \
    env -i PATH=/usr/bin:/bin HOME="$DATA" dropbox-agent run --config /etc/dropbox-agent/agent.json) >"$LOG" 2>&1 &
AGENT_PID=$!
deadline=$((SECONDS + 20))
until grep -q '"agent started"' "$LOG"; do
    [ $SECONDS -lt $deadline ] && kill -0 "$AGENT_PID" 2>/dev/null || { cat "$LOG"; bad "the agent did not start"; exit 1; }
    sleep 0.1
done
ok "agent started"

say "droppers (group dropbox-agent) and an outsider"
for u in "${DROPPERS[@]}"; do useradd -M -s /bin/sh -G dropbox-agent "$u"; done
useradd -M -s /bin/sh "$OUTSIDER"
d1="${DROPPERS[0]}"; d2="${DROPPERS[1]}"

as "$d1" sh -c "cp $EXAMPLE $SPOOL/.r1.part && mv $SPOOL/.r1.part $SPOOL/r1.json" && ok "dropper writes a request (temp name, rename)" || bad "dropper writes a request"
# `submit` links the request into place, then fsyncs the spool directory, which needs read permission.
check "dropper submits with dropbox-agent submit" as "$d1" dropbox-agent submit "$EXAMPLE" --spool "$SPOOL" --name r0
check "... and the request is there" test -e "$SPOOL/r0.json" -o -e "$SPOOL/r0.status.json"
if wait_for "$SPOOL/r1.status.json" 60; then ok "status file appears"; else bad "no status file for r1 within 60 s"; fi
check "dropper reads its status by name (dropbox-agent status)" as "$d1" dropbox-agent status r1 --spool "$SPOOL"
refuse "dropper cannot list the spool" as "$d1" ls "$SPOOL"
refuse "dropper cannot look into the agent's area" as "$d1" ls "$SPOOL/.dropbox-agent/jobs"
refuse "another dropper cannot remove the status file (sticky)" as "$d2" rm -f "$SPOOL/r1.status.json"
refuse "another dropper cannot replace the status file (sticky)" as "$d2" sh -c "echo x > $SPOOL/.fake && mv -f $SPOOL/.fake $SPOOL/r1.status.json"
as "$d2" rm -f "$SPOOL/.fake"
refuse "an outsider cannot drop a request" as "$OUTSIDER" sh -c "cp $EXAMPLE $SPOOL/o.json"
refuse "an outsider cannot read a status file" as "$OUTSIDER" cat "$SPOOL/r1.status.json"
as "$d1" sh -c "umask 027 && cp $EXAMPLE $SPOOL/.r2.part && mv $SPOOL/.r2.part $SPOOL/r2.json"
wait_for "$SPOOL/r2.status.json" 60 || true
refuse "a 0640 request is not rejected as unreadable" grep -q unreadable "$SPOOL/r2.status.json"
as "$d1" sh -c "umask 077 && cp $EXAMPLE $SPOOL/.r3.part && mv $SPOOL/.r3.part $SPOOL/r3.json"
wait_for "$SPOOL/r3.status.json" 60 || true
check "a 0600 request is rejected as unreadable, with a status file" grep -q '"unreadable"' "$SPOOL/r3.status.json"

say "SIGTERM stops the agent cleanly"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" && ok "agent exited 0" || bad "agent exit status $?"
check "log says it stopped cleanly" grep -q 'stopped cleanly' "$LOG"
AGENT_PID=""

say "dpkg -i again (the upgrade path: prerm upgrade, postinst configure <old version>)"
sed -i 's/"level": "info"/"level": "debug"/' /etc/dropbox-agent/agent.json
chmod 03770 "$SPOOL"   # an administrator's choice
dpkg -i "$DEB" </dev/null
check "a changed conffile is kept" grep -q '"level": "debug"' /etc/dropbox-agent/agent.json
check "an administrator's spool mode is kept" test "$(stat -c %a "$SPOOL")" = 3770
check "status files are kept" test -f "$SPOOL/r1.status.json"
check "the unit stays enabled" test -L /etc/systemd/system/multi-user.target.wants/dropbox-agent.service

say "dpkg -r"
dpkg -r dropbox-agent
refuse "binary removed" test -e /usr/bin/dropbox-agent
check "configuration kept" test -f /etc/dropbox-agent/agent.json
check "data kept" test -d "$SPOOL"
say "dpkg -P"
dpkg -P dropbox-agent
refuse "configuration purged" test -e /etc/dropbox-agent
refuse "unit symlinks purged" sh -c 'ls /etc/systemd/system/multi-user.target.wants/dropbox-agent.service /etc/systemd/system/dropbox-agent.service'
check "data with requests in it survives purge" test -d "$SPOOL"

if [ $failures = 0 ]; then say "all checks passed"; else say "$failures check(s) FAILED"; fi
[ $failures = 0 ]
