"""A fake casa/restore_mous.py for the modular runner's tests (stdlib only).

Checks the INTERFACES §3 contract and exits 97 with a message on stderr if anything is wrong:
argv [<venv>/bin/python3, <this file>, --parallel, <N ≥ 1>, (--archive-limits, <absolute JSON file>,) <absolute PPR>],
cwd ending in /working, SCIPIPE_ROOTDIR, SCIPIPE_LOGDIR,
CASASITECONFIG=<venv>/casasiteconfig.py (existing), HOME=<SCIPIPE_LOGDIR>/home (existing), MPLBACKEND=Agg,
LANG=C.UTF-8, PATH set, no DISPLAY. Then behaves as $SCIPIPE_LOGDIR/../behaviour says (succeed or fail).
"""
import json
import os
import sys
import time


def fail(message):
    sys.stderr.write("fake-restore: REJECTED: " + message + "\n")
    sys.exit(97)


def main():
    argv = list(sys.argv)
    if len(argv) == 6 and argv[3] == "--archive-limits":
        limits = argv[4]
        if not os.path.isabs(limits):
            fail("--archive-limits %r is not absolute" % limits)
        try:
            with open(limits) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            fail("--archive-limits %s: %s" % (limits, e))
        if not isinstance(doc, dict) or not isinstance(doc.get("limits"), dict) or not isinstance(doc.get("archives"), dict):
            fail("--archive-limits %s is not {limits, archives}" % limits)
        print("ARCHIVE-LIMITS %s" % json.dumps(doc, sort_keys=True), flush=True)
        del argv[3:5]
    if (len(argv) != 4 or argv[1] != "--parallel" or not argv[2].isdigit() or int(argv[2]) < 1
            or not os.path.isabs(argv[3]) or not os.path.isfile(argv[3])):
        fail("argv %r: expected --parallel N and one absolute PPR path" % sys.argv)
    venv = sys.prefix
    if sys.prefix == sys.base_prefix:
        fail("not running in a venv (sys.prefix %s)" % sys.prefix)
    env = os.environ
    for var in ("SCIPIPE_ROOTDIR", "SCIPIPE_LOGDIR", "CASASITECONFIG", "HOME", "PATH"):
        if not env.get(var):
            fail("%s is not set" % var)
    if env["CASASITECONFIG"] != os.path.join(venv, "casasiteconfig.py") or not os.path.isfile(env["CASASITECONFIG"]):
        fail("CASASITECONFIG %s is not the venv's casasiteconfig.py" % env["CASASITECONFIG"])
    if env["HOME"] != os.path.join(env["SCIPIPE_LOGDIR"], "home") or not os.path.isdir(env["HOME"]):
        fail("HOME %s is not the private <logs>/home" % env["HOME"])
    if env.get("MPLBACKEND") != "Agg" or env.get("LANG") != "C.UTF-8":
        fail("MPLBACKEND/LANG wrong: %r %r" % (env.get("MPLBACKEND"), env.get("LANG")))
    if "DISPLAY" in env:
        fail("DISPLAY must not be set")
    if not os.getcwd().endswith("/working"):
        fail("cwd %s does not end in /working" % os.getcwd())
    leaked = [k for k in env if k.startswith("RUNNER_TEST_LEAK")]
    if leaked:
        fail("the agent's environment leaked in: %r" % leaked)
    print("PROGRESS 0 1 importasdm", flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    with open("casa-%s.log" % stamp, "a") as log:
        log.write("%s\tINFO\trestore_mous\tstarted with %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), sys.argv[1]))
        log.write("%s\tINFO\trestore_mous\textra=%s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), env.get("SITE_EXTRA", "")))
    print("PROGRESS 1 1 done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
