#!/bin/bash
# The download area served by nginx as a site would serve it, for tests.
#
#   nginx-downloads.sh start AREA PREFIX RUNDIR [USER]   # prints "PORT <n>"; workers run as USER (default www-data
#                                                        # when started as root)
#   nginx-downloads.sh stop RUNDIR
#
# GET /PREFIX/<path> serves AREA/<path>. The directory index is ON on purpose: whether a directory can be listed
# is then decided by its permissions alone (nginx answers 403 for a directory its worker user cannot read).
# Writes RUNDIR/port and RUNDIR/nginx.pid.
# Callers may run it with sh: the shared nginx start-up is in scripts/lib.sh (bash).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/../lib.sh"

usage() { echo "usage: $0 start AREA PREFIX RUNDIR [USER] | stop RUNDIR" >&2; exit 2; }

[ $# -ge 1 ] || usage
case "$1" in
start)
    [ $# -eq 4 ] || [ $# -eq 5 ] || usage
    area=$2; prefix=$3; user=${5:-www-data}
    nginx_prepare "$4" 0
    userline=""
    if [ "$(id -u)" = 0 ]; then userline="user $user;"; fi
    nginx_start info 64 "$userline
worker_processes 1;" "    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /$prefix/ { alias $area/; autoindex on; }
        location / { return 404; }
    }"
    ;;
stop)
    [ $# -eq 2 ] || usage
    nginx_stop "$2"
    ;;
*) usage ;;
esac
