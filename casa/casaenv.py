#!/usr/bin/env python3
"""Modular CASA environment manager (stdlib only).

Subcommands:
  install --venv DIR [--version X] [--with-tests]
                              create/update a venv with casa/requirements.txt (plus pytest with --with-tests),
                              write DIR/casasiteconfig.py, verify ``import casatools`` offline.
                              --version X installs casatools==X and casatasks==X instead of the pinned pair,
                              after asking pip whether a wheel of X exists for this Python (clear error if not).
                              Idempotent and fast when already complete.
  check --venv DIR            print {"ok", "python", "casatools", "casatasks", "version", "problems"} as JSON;
                              exit 0 if ok. "version" is the CASA version of the venv (casatools').
  env --venv DIR --home H     print the JSON environment dict a runner should use for CASA subprocesses.

See /work/shared/reference/casa-offline.md for why each setting exists.
"""
import argparse
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
SITECONFIG_NAME = "casasiteconfig.py"
STAMP_NAME = ".casaenv-complete.json"
VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+){1,3}$")
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


def pinned_version():
    """The casatools version casa/requirements.txt pins (the default environment)."""
    with open(REQUIREMENTS) as f:
        for line in f:
            if line.strip().startswith("casatools=="):
                return line.strip().split("==", 1)[1]
    raise SystemExit("casaenv: %s pins no casatools version" % REQUIREMENTS)


def requirements_text(version=None):
    """casa/requirements.txt, with casatools and casatasks pinned to ``version`` when given."""
    with open(REQUIREMENTS) as f:
        lines = f.read().splitlines()
    if version:
        lines = [("%s==%s" % (line.split("==")[0], version)
                  if line.split("==")[0].strip() in ("casatools", "casatasks") else line) for line in lines]
    return "\n".join(lines) + "\n"


def requirements_digest(version=None):
    return hashlib.sha256(requirements_text(version).encode()).hexdigest()


def read_stamp(venv):
    try:
        with open(os.path.join(venv, STAMP_NAME)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def wanted_version(venv):
    """The CASA version the venv is meant to hold: its stamp's, else the pinned one."""
    stamp = read_stamp(venv)
    return stamp.get("version") or stamp.get("casatools") or pinned_version()


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


def verify(venv, timeout=300, expected=None):
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
        expected = expected or wanted_version(venv)
        if info.get("casatools") != expected:
            problems.append("casatools version %s, expected %s" % (info.get("casatools"), expected))
        if info.get("casatasks") and info.get("casatasks") != info.get("casatools"):
            problems.append("casatasks %s does not match casatools %s" % (info.get("casatasks"), info.get("casatools")))
        if not info.get("casatasks"):
            problems.append("casatasks not installed")
        if not info.get("measures_ok"):
            problems.append("measures conversion failed (casadata not usable)")
        return info, problems
    finally:
        shutil.rmtree(home, ignore_errors=True)


def check(venv, expected=None):
    info, problems = verify(venv, expected=expected)
    result = {
        "ok": not problems and info is not None,
        "python": (info or {}).get("python"),
        "casatools": (info or {}).get("casatools"),
        "casatasks": (info or {}).get("casatasks"),
        "version": (info or {}).get("casatools"),
        "problems": problems,
    }
    return result


def stamp_valid(venv, version=None):
    stamp = read_stamp(venv)
    return (bool(stamp) and stamp.get("requirements") == requirements_digest(version)
            and os.path.exists(venv_python(venv))
            and os.path.exists(os.path.join(venv, SITECONFIG_NAME)))


def available_versions(venv):
    """casatools versions pip can install into this venv (wheels for its Python and platform), newest first."""
    p = subprocess.run([venv_python(venv), "-m", "pip", "index", "versions", "casatools"],
                       capture_output=True, text=True, timeout=300)
    for line in p.stdout.splitlines():
        if line.startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    return []


def wheel_exists(venv, version):
    """Whether pip can install casatools==version into this venv, asked without installing (pip --dry-run reads
    only the wheel's metadata)."""
    p = subprocess.run([venv_python(venv), "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                        "--only-binary=:all:", "--disable-pip-version-check", "-q", "casatools==" + version],
                       capture_output=True, text=True, timeout=600)
    return p.returncode == 0


def has_pytest(venv):
    return bool(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "pytest")))


def log(msg):
    print("casaenv: " + msg, file=sys.stderr, flush=True)


def install(venv, with_tests=False, version=None):
    venv = os.path.abspath(venv)
    if version is not None and not VERSION_RE.match(version):
        return failure("not a CASA version: %r (expected e.g. 6.6.5.31)" % version)
    if version == pinned_version():
        version = None
    os.makedirs(venv, exist_ok=True)
    # One installer per venv at a time (two restores may want the same on-demand version at once).
    with open(os.path.join(venv, ".casaenv.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return install_locked(venv, with_tests, version)


def failure(problem):
    return {"ok": False, "python": None, "casatools": None, "casatasks": None, "version": None, "problems": [problem]}


def install_locked(venv, with_tests, version):
    wanted = version or pinned_version()
    if with_tests and stamp_valid(venv, version) and not has_pytest(venv):
        log("installing pytest into %s" % venv)
        subprocess.run([venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                        TEST_REQUIREMENT], check=True)
    if stamp_valid(venv, version):
        write_siteconfig(venv)
        result = check(venv, expected=wanted)
        if result["ok"]:
            log("already complete: %s" % venv)
            return result
        log("stamp present but verification failed; reinstalling: %s" % result["problems"])
    created = False
    if not os.path.exists(venv_python(venv)):
        log("creating venv %s with %s" % (venv, sys.executable))
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        created = True
    if version and not wheel_exists(venv, version):
        available = available_versions(venv)
        if created:
            shutil.rmtree(venv, ignore_errors=True)
        return failure("no casatools %s wheel for Python %s on this platform (pip can install: %s)"
                       % (version, sys.version.split()[0], ", ".join(available) or "none found"))
    requirements = os.path.join(venv, "casa-requirements.txt")
    with open(requirements, "w") as f:
        f.write(requirements_text(version))
    log("pip install -r %s (CASA %s)" % (requirements, wanted))
    subprocess.run([venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    "-r", requirements] + ([TEST_REQUIREMENT] if with_tests else []), check=True)
    write_siteconfig(venv)
    result = check(venv, expected=wanted)
    if result["ok"]:
        with open(os.path.join(venv, STAMP_NAME), "w") as f:
            json.dump({"requirements": requirements_digest(version), "casatools": result["casatools"],
                       "casatasks": result["casatasks"], "python": result["python"], "version": wanted}, f)
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
            p.add_argument("--version", help="CASA version (casatools/casatasks) instead of the pinned one")
    args = ap.parse_args(argv)
    if args.cmd == "env":
        print(json.dumps(runner_env(args.venv, args.home), sort_keys=True))
        return 0
    if args.cmd == "install":
        try:
            result = install(args.venv, with_tests=args.with_tests, version=args.version)
        except subprocess.CalledProcessError as e:
            result = failure("command failed (exit %d): %s" % (e.returncode, " ".join(map(str, e.cmd))))
    else:
        result = check(os.path.abspath(args.venv))
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
