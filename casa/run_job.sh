#!/bin/sh
# The batch job of dropbox-agent's scheduled backends (execution.backend "slurm"): runs one program and records
# how it ended, so the agent knows the outcome even after the scheduler has forgotten the job.
#
#   run_job.sh EXIT_RECORD LOG PROGRAM [ARGUMENT...]
#
# PROGRAM and its arguments are run as given (no shell interpretation of them: "$@"), standard output and error
# appended to LOG (the agent reads its PROGRESS lines from there), standard input from /dev/null. When PROGRAM has
# ended, EXIT_RECORD is written atomically (temporary file, then rename):
#   {"status": <exit status, 128+N when killed by signal N>, "host": "<node>", "started": <epoch s.ns>, "ended": <epoch s.ns>}
# SIGTERM (scancel, the time limit) is passed on to PROGRAM; the record is still written when PROGRAM has gone.
set -u
[ $# -ge 3 ] || { echo "usage: run_job.sh EXIT_RECORD LOG PROGRAM [ARGUMENT...]" >&2; exit 2; }
record=$1; log=$2; shift 2
started=$(date +%s.%N)
"$@" >>"$log" 2>&1 </dev/null &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"; status=$?
# A trapped signal interrupts wait (status > 128 while the program still runs): wait again for its real status.
while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
printf '{"status": %d, "host": "%s", "started": %s, "ended": %s}\n' "$status" "$(hostname)" "$started" "$(date +%s.%N)" > "$record.tmp.$$" \
    && mv -f "$record.tmp.$$" "$record"
exit "$status"
