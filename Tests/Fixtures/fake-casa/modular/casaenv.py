"""A fake casa/casaenv.py for CASAEnvironment tests (stdlib only): `install --venv DIR` creates DIR with a
casasiteconfig.py (or fails if DIR's parent has a file named FAIL), `check --venv DIR` prints the status JSON."""
import json
import os
import sys


def main():
    if len(sys.argv) != 4 or sys.argv[2] != "--venv":
        print("usage: casaenv.py install|check --venv DIR", file=sys.stderr)
        return 2
    command, venv = sys.argv[1], sys.argv[3]
    if command == "install":
        if os.path.exists(os.path.join(os.path.dirname(venv), "FAIL")):
            print("casaenv: pip install failed: no matching distribution for casatools==6.7.0.31", file=sys.stderr)
            return 1
        os.makedirs(venv, exist_ok=True)
        with open(os.path.join(venv, "casasiteconfig.py"), "w") as f:
            f.write("measures_auto_update = False\n")
        print("casaenv: installed", file=sys.stderr)
        return 0
    if command == "check":
        problems = [] if os.path.isfile(os.path.join(venv, "casasiteconfig.py")) else ["no casasiteconfig.py in " + venv]
        print("casaenv: checking", file=sys.stderr)
        print(json.dumps({"ok": not problems, "python": "3.11.2", "casatools": "6.7.0.31" if not problems else None,
                          "casatasks": "6.7.0.31" if not problems else None, "problems": problems}))
        return 0 if not problems else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
