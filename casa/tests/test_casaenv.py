"""casaenv.py check/env on the venv running the tests (install from scratch is exercised by hand, ~40 s)."""
import json
import os
import subprocess
import sys

from conftest import CASA_DIR

CASAENV = os.path.join(CASA_DIR, "casaenv.py")


def test_check_reports_ok_for_this_venv():
    p = subprocess.run([sys.executable, CASAENV, "check", "--venv", sys.prefix], capture_output=True, text=True)
    r = json.loads(p.stdout)
    assert p.returncode == 0 and r["ok"], r
    assert r["casatools"] == "6.7.0.31" and r["casatasks"] and r["problems"] == []
    assert os.path.exists(os.path.join(sys.prefix, "casasiteconfig.py"))


def test_install_is_idempotent_and_fast():
    p = subprocess.run([sys.executable, CASAENV, "install", "--venv", sys.prefix], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and json.loads(p.stdout)["ok"], p.stdout + p.stderr


def test_check_fails_for_missing_venv(tmp_path):
    p = subprocess.run([sys.executable, CASAENV, "check", "--venv", str(tmp_path / "none")], capture_output=True,
                       text=True)
    r = json.loads(p.stdout)
    assert p.returncode == 1 and not r["ok"] and r["problems"]


def test_env_dict(tmp_path):
    p = subprocess.run([sys.executable, CASAENV, "env", "--venv", "/v", "--home", str(tmp_path)],
                       capture_output=True, text=True)
    env = json.loads(p.stdout)
    assert env["CASASITECONFIG"] == "/v/casasiteconfig.py" and env["HOME"] == str(tmp_path)
    assert env["MPLBACKEND"] == "Agg" and "DISPLAY" not in env and env["PATH"].startswith("/v/bin:")


def test_siteconfig_is_offline():
    with open(os.path.join(sys.prefix, "casasiteconfig.py")) as f:
        text = f.read()
    for setting in ("measures_auto_update = False", "data_auto_update = False", "skipnetworkcheck = True",
                    "nologger = True", "nogui = True", "agg = True"):
        assert setting in text
