#!/usr/bin/env python3
"""Modular CASA environment manager (stdlib only).

Subcommands:
  install --venv DIR [--with-tests]
                              create/update a venv with casa/requirements.txt (plus pytest with --with-tests),
                              write DIR/casasiteconfig.py, verify ``import casatools`` offline.
                              Idempotent and fast when already complete.
  check --venv DIR            print {"ok", "python", "casatools", "casatasks", "problems"} as JSON; exit 0 if ok.
  env --venv DIR --home H     print the JSON environment dict a runner should use for CASA subprocesses.

See /work/shared/reference/casa-offline.md for why each setting exists.
"""
import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
SITECONFIG_NAME = "casasiteconfig.py"
STAMP_NAME = ".casaenv-complete.json"
EXPECTED_CASATOOLS = "6.7.0.31"
TEST_REQUIREMENT = "pytest"

SITECONFIG_TEMPLATE = '''\
# Written by casa/casaenv.py: offline CASA site configuration (named by CASASITECONFIG).
import os as _os
import casadata as _casadata

measurespath = _casadata.datapath
datapath = [_casadata.datapath]
measures_auto_update = False
data_auto_update = False
skipnetworkcheck = True
cachedir = {cachedir!r}
nologger = True
nogui = True
agg = True
'''

VERIFY_CODE = r'''
import json, sys
out = {"python": sys.version.split()[0]}
import casatools
from importlib.metadata import version
out["casatools"] = version("casatools")
try:
    out["casatasks"] = version("casatasks")
except Exception:
    out["casatasks"] = None
me = casatools.measures()
ep = me.epoch("utc", "2024/03/01/10:00:00")
out["measures_ok"] = abs(ep["m0"]["value"] - 60370.4166666) < 1e-3
print("CASAENV_JSON " + json.dumps(out))
'''


def venv_python(venv):
    return os.path.join(venv, "bin", "python3")


def requirements_digest():
    with open(REQUIREMENTS, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def casa_env(venv, home, base=None):
    """Environment for a CASA subprocess: private HOME, offline site config, Agg, no DISPLAY."""
    base = dict(os.environ if base is None else base)
    env = {k: v for k, v in base.items() if k not in ("DISPLAY", "PYTHONPATH", "PYTHONHOME", "CASASITECONFIG")}
    env["HOME"] = os.path.abspath(home)
    env["CASASITECONFIG"] = os.path.join(os.path.abspath(venv), SITECONFIG_NAME)
    env["MPLBACKEND"] = "Agg"
    env["LANG"] = "C.UTF-8"
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return env


def runner_env(venv, home):
    """The minimal env dict the agent's runner should set (no inheritance)."""
    return {
        "HOME": os.path.abspath(home),
        "CASASITECONFIG": os.path.join(os.path.abspath(venv), SITECONFIG_NAME),
        "MPLBACKEND": "Agg",
        "LANG": "C.UTF-8",
        "PATH": os.path.join(os.path.abspath(venv), "bin") + ":/usr/local/bin:/usr/bin:/bin",
    }


def write_siteconfig(venv):
    cachedir = os.path.join(os.path.abspath(venv), "casa-cache")
    os.makedirs(cachedir, exist_ok=True)
    text = SITECONFIG_TEMPLATE.format(cachedir=cachedir)
    path = os.path.join(venv, SITECONFIG_NAME)
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if old != text:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return path


def verify(venv, timeout=300):
    """Import casatools offline in a subprocess. Returns (info dict or None, problems list)."""
    problems = []
    py = venv_python(venv)
    if not os.path.exists(py):
        return None, ["venv python missing: %s" % py]
    if not os.path.exists(os.path.join(venv, SITECONFIG_NAME)):
        problems.append("site config missing: %s" % os.path.join(venv, SITECONFIG_NAME))
        return None, problems
    home = tempfile.mkdtemp(prefix="casaenv-home-")
    try:
        env = casa_env(venv, home)
        try:
            p = subprocess.run([py, "-c", VERIFY_CODE], env=env, cwd=home, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, ["import casatools timed out after %d s" % timeout]
        info = None
        for line in p.stdout.splitlines():
            if line.startswith("CASAENV_JSON "):
                info = json.loads(line[len("CASAENV_JSON "):])
        if p.returncode != 0 or info is None:
            tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
            problems.append("import casatools failed (exit %d): %s" % (p.returncode, " | ".join(tail)))
            return None, problems
        if info.get("casatools") != EXPECTED_CASATOOLS:
            problems.append("casatools version %s, expected %s" % (info.get("casatools"), EXPECTED_CASATOOLS))
        if not info.get("casatasks"):
            problems.append("casatasks not installed")
        if not info.get("measures_ok"):
            problems.append("measures conversion failed (casadata not usable)")
        return info, problems
    finally:
        shutil.rmtree(home, ignore_errors=True)


def check(venv):
    info, problems = verify(venv)
    result = {
        "ok": not problems and info is not None,
        "python": (info or {}).get("python"),
        "casatools": (info or {}).get("casatools"),
        "casatasks": (info or {}).get("casatasks"),
        "problems": problems,
    }
    return result


def stamp_valid(venv):
    path = os.path.join(venv, STAMP_NAME)
    try:
        with open(path) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return False
    return (stamp.get("requirements") == requirements_digest()
            and os.path.exists(venv_python(venv))
            and os.path.exists(os.path.join(venv, SITECONFIG_NAME)))


def has_pytest(venv):
    return bool(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "pytest")))


def log(msg):
    print("casaenv: " + msg, file=sys.stderr, flush=True)


def install(venv, with_tests=False):
    venv = os.path.abspath(venv)
    if with_tests and stamp_valid(venv) and not has_pytest(venv):
        log("installing pytest into %s" % venv)
        subprocess.run([venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                        TEST_REQUIREMENT], check=True)
    if stamp_valid(venv):
        write_siteconfig(venv)
        result = check(venv)
        if result["ok"]:
            log("already complete: %s" % venv)
            return result
        log("stamp present but verification failed; reinstalling: %s" % result["problems"])
    if not os.path.exists(venv_python(venv)):
        log("creating venv %s with %s" % (venv, sys.executable))
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    log("pip install -r %s" % REQUIREMENTS)
    subprocess.run([venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    "-r", REQUIREMENTS] + ([TEST_REQUIREMENT] if with_tests else []), check=True)
    write_siteconfig(venv)
    result = check(venv)
    if result["ok"]:
        with open(os.path.join(venv, STAMP_NAME), "w") as f:
            json.dump({"requirements": requirements_digest(), "casatools": result["casatools"],
                       "casatasks": result["casatasks"], "python": result["python"]}, f)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("install", "check", "env"):
        p = sub.add_parser(name)
        p.add_argument("--venv", required=True)
        if name == "env":
            p.add_argument("--home", required=True)
        if name == "install":
            p.add_argument("--with-tests", action="store_true", help="also install pytest (for casa/tests)")
    args = ap.parse_args(argv)
    if args.cmd == "env":
        print(json.dumps(runner_env(args.venv, args.home), sort_keys=True))
        return 0
    if args.cmd == "install":
        try:
            result = install(args.venv, with_tests=args.with_tests)
        except subprocess.CalledProcessError as e:
            result = {"ok": False, "python": None, "casatools": None, "casatasks": None,
                      "problems": ["command failed (exit %d): %s" % (e.returncode, " ".join(map(str, e.cmd)))]}
    else:
        result = check(os.path.abspath(args.venv))
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
