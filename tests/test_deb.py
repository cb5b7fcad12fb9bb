"""The Debian package: its sources in packaging/deb, and a .deb built by scripts/build-deb.sh.

The source checks run always (they need the debug build, like test_schemas.py, and systemd-analyze).
The .deb checks need a package: a release build takes minutes, so `make test` does not build one;
build it with `scripts/build-deb.sh` (or `make deb`) and run

    DROPBOX_DEB=.build-deb/dropbox-agent_<version>_amd64.deb python3 -m pytest -q tests/test_deb.py

Without DROPBOX_DEB those tests are reported as skipped, with that command as the reason; in CI (CI=true)
they fail instead, and .ci/run builds the package first.
"""
import configparser
import gzip
import json
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "packaging/deb"
AGENT = ROOT / ".build/debug/dropbox-agent"
UNIT = PKG / "dropbox-agent.service"
CONFIG = PKG / "agent.json"
SCRIPTS = ["postinst", "prerm", "postrm"]
SUBCOMMANDS = ["run", "submit", "status", "validate", "cancel", "check", "catalog", "casa"]


def require_tool(name, package):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install {package}")
    return path


def require_debug_agent():
    if not AGENT.exists():
        pytest.fail(f"{AGENT} is missing: run `swift build` first (make test does)")
    return AGENT


def run(argv, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, **kwargs)


def read_unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path)
    return parser


def verify_unit(unit_text, binary, tmp_path, manpath=None):
    """systemd-analyze verify on a copy of the unit whose ExecStart names `binary` (verify needs it to exist)."""
    systemd_analyze = require_tool("systemd-analyze", "systemd")
    copy = tmp_path / "dropbox-agent.service"
    copy.write_text(unit_text.replace("/usr/bin/dropbox-agent", str(binary)))
    env = dict(os.environ)
    argv = [systemd_analyze, "verify"]
    if manpath is None:
        argv.append("--man=no")
    else:
        env["MANPATH"] = str(manpath)
    argv.append(copy)
    return run(argv, env=env)


# ---- sources -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SCRIPTS)
def test_maintainer_script_is_executable_posix_sh(name):
    script = PKG / "DEBIAN" / name
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n"), f"{name} must be a /bin/sh script"
    assert "\nset -e\n" in text, f"{name} must stop at the first error"
    assert os.access(script, os.X_OK), f"{name} must be executable in git"
    dash = require_tool("dash", "dash")
    result = run([dash, "-n", script])
    assert result.returncode == 0, result.stderr


def test_unit_passes_systemd_analyze_verify(tmp_path):
    result = verify_unit(UNIT.read_text(), require_debug_agent(), tmp_path)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_unit_verify_catches_a_broken_unit(tmp_path):
    # The check above can fail: an unknown directive and a relative ExecStart are reported.
    broken = UNIT.read_text().replace("Type=notify", "Type=notify\nNoSuchDirective=1").replace(
        "ExecStart=/usr/bin/dropbox-agent", "ExecStart=dropbox-agent-nowhere")
    result = verify_unit(broken, require_debug_agent(), tmp_path)
    assert result.returncode != 0 or result.stdout + result.stderr != ""


def test_unit_runs_the_agent_as_the_brief_says():
    service = read_unit(UNIT)["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert float(service["WatchdogSec"]) >= 30
    assert service["ExecStart"] == "/usr/bin/dropbox-agent run --config /etc/dropbox-agent/agent.json"
    assert service["User"] == "dropbox-agent"
    assert (service["KillSignal"], service["KillMode"], service["Restart"]) == ("SIGTERM", "mixed", "on-failure")
    assert service["StateDirectory"] == "dropbox-agent"
    assert service["NoNewPrivileges"] == "yes" and service["PrivateTmp"] == "yes"
    assert service["ProtectSystem"] in ("full", "strict")
    if service["ProtectSystem"] == "strict":
        assert "/var/lib/dropbox-agent" in service["ReadWritePaths"].split()


def test_unit_and_packaged_config_agree():
    """The unit waits for the configured spool's mount, and gives the agent time for a clean stop."""
    unit = read_unit(UNIT)
    config = json.loads(CONFIG.read_text())
    assert unit["Unit"]["RequiresMountsFor"] == config["spool"]["directory"]
    assert unit["Service"]["WorkingDirectory"] == config["dataDirectory"]
    assert config["dataDirectory"] == "/var/lib/" + unit["Service"]["StateDirectory"]
    timeout = float(unit["Service"]["TimeoutStopSec"])
    clean_stop = config["agent"]["shutdownGraceSeconds"] + config["casa"]["killGraceSeconds"]
    assert timeout > clean_stop, f"TimeoutStopSec={timeout} leaves no time for a clean stop ({clean_stop} s)"


def test_packaged_config_is_accepted_by_the_agent(tmp_path):
    agent = require_debug_agent()
    spool = tmp_path / "spool"
    spool.mkdir()
    result = run([agent, "status", "--config", CONFIG, "--spool", spool, "--json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_agent_rejects_a_config_with_an_unknown_key(tmp_path):
    # ... so the test above would notice a key the agent no longer knows.
    config = json.loads(CONFIG.read_text())
    config["spool"]["noSuchKey"] = 1
    broken = tmp_path / "agent.json"
    broken.write_text(json.dumps(config))
    spool = tmp_path / "spool"
    spool.mkdir()
    result = run([require_debug_agent(), "status", "--config", broken, "--spool", spool, "--json"])
    assert result.returncode != 0
    assert "noSuchKey" in result.stderr


def test_packaged_config_keeps_everything_in_the_data_directory():
    config = json.loads(CONFIG.read_text())
    data = config["dataDirectory"]
    paths = [config["spool"]["directory"], config["catalogue"]["sqlite"], config["archive"]["localDirectory"],
             config["archive"]["cacheDirectory"], config["casa"]["modularVenv"], config["delivery"]["directory"],
             config["notifications"]["outboxDirectory"]]
    assert all(p.startswith(data + "/") for p in paths), paths
    assert config["casa"]["programDirectory"] == "/usr/share/dropbox-agent/casa"


def test_conffiles_lists_the_configuration():
    assert (PKG / "DEBIAN/conffiles").read_text().split() == ["/etc/dropbox-agent/agent.json"]


# ---- a built .deb --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deb():
    value = os.environ.get("DROPBOX_DEB")
    if not value and os.environ.get("CI"):
        pytest.fail("CI must build the package first (.ci/run does: scripts/build-deb.sh, then DROPBOX_DEB=...)")
    if not value:
        pytest.skip("no .deb to inspect: run scripts/build-deb.sh, then DROPBOX_DEB=.build-deb/dropbox-agent_<version>_amd64.deb")
    path = pathlib.Path(value)
    if not path.is_file():
        pytest.fail(f"DROPBOX_DEB={value} is not a file")
    require_tool("dpkg-deb", "dpkg")
    return path.resolve()


@pytest.fixture(scope="module")
def extracted(deb, tmp_path_factory):
    root = tmp_path_factory.mktemp("deb") / "root"
    result = run(["dpkg-deb", "-x", deb, root])
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="module")
def control(deb):
    result = run(["dpkg-deb", "--field", deb])
    assert result.returncode == 0, result.stderr
    fields, key = {}, None
    for line in result.stdout.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


@pytest.fixture(scope="module")
def contents(deb):
    """path -> (mode string, owner/group) from dpkg-deb --contents."""
    result = run(["dpkg-deb", "--contents", deb])
    assert result.returncode == 0, result.stderr
    entries = {}
    for line in result.stdout.splitlines():
        parts = line.split(None, 5)
        path = parts[5].split(" -> ")[0]
        entries[path.removeprefix(".").rstrip("/") or "/"] = (parts[0], parts[1])
    return entries


def packaged_binary(extracted):
    return extracted / "usr/bin/dropbox-agent"


def run_packaged(extracted, *args, cwd=None):
    # A clean environment: no LD_LIBRARY_PATH, no toolchain on PATH.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(extracted)}
    return run([packaged_binary(extracted), *args], env=env, cwd=cwd)


def test_control_fields(control, extracted):
    assert control["Package"] == "dropbox-agent"
    assert control["Architecture"] == "amd64"
    version = run_packaged(extracted, "--version")
    assert version.returncode == 0, version.stderr
    assert control["Version"] == version.stdout.strip()
    depends = [d.strip().split(" ")[0] for d in control["Depends"].split(",")]
    for needed in ["libc6", "libcurl4", "libxml2", "libsqlite3-0", "libarchive13", "python3", "python3-venv", "adduser"]:
        assert needed in depends, f"Depends lacks {needed}: {control['Depends']}"
    assert not [d for d in depends if "swift" in d], control["Depends"]
    assert "xvfb" in control["Recommends"]


def test_contents_are_where_the_brief_puts_them(contents):
    expected = {
        "/usr/bin/dropbox-agent": "-rwxr-xr-x",
        "/usr/share/dropbox-agent/casa/restore_mous.py": "-rw-r--r--",
        "/usr/share/dropbox-agent/casa/casaenv.py": "-rw-r--r--",
        "/usr/share/dropbox-agent/casa/requirements.txt": "-rw-r--r--",
        "/usr/share/dropbox-agent/casa/run_job.sh": "-rwxr-xr-x",
        "/usr/share/dropbox-agent/schemas/request.schema.json": "-rw-r--r--",
        "/usr/share/dropbox-agent/schemas/status.schema.json": "-rw-r--r--",
        "/usr/share/dropbox-agent/examples/requests/demo.json": "-rw-r--r--",
        "/lib/systemd/system/dropbox-agent.service": "-rw-r--r--",
        "/etc/dropbox-agent/agent.json": "-rw-r--r--",
        "/usr/share/man/man1/dropbox-agent.1.gz": "-rw-r--r--",
        "/usr/share/doc/dropbox-agent/copyright": "-rw-r--r--",
        "/usr/share/doc/dropbox-agent/README.Debian": "-rw-r--r--",
        "/usr/share/bash-completion/completions/dropbox-agent": "-rw-r--r--",
        "/usr/share/zsh/vendor-completions/_dropbox-agent": "-rw-r--r--",
        "/usr/share/fish/vendor_completions.d/dropbox-agent.fish": "-rw-r--r--",
    }
    for path, mode in expected.items():
        assert path in contents, f"{path} is not in the package"
        assert contents[path][0] == mode, f"{path}: {contents[path][0]}, expected {mode}"
    assert {owner for _, owner in contents.values()} == {"root/root"}


def test_packaged_files_match_the_repository(extracted):
    """A stale .deb (built before a change to casa/, schemas/, examples/ or packaging/) is caught here."""
    pairs = [(f, extracted / "usr/share/dropbox-agent/casa" / f.name)
             for f in sorted((ROOT / "casa").glob("*.py")) + sorted((ROOT / "casa").glob("*.sh")) + [ROOT / "casa/requirements.txt"]]
    pairs += [(f, extracted / "usr/share/dropbox-agent/schemas" / f.name) for f in sorted((ROOT / "schemas").glob("*.json"))]
    pairs += [(f, extracted / "usr/share/dropbox-agent/examples/requests" / f.relative_to(ROOT / "examples/requests"))
              for f in sorted((ROOT / "examples/requests").rglob("*.json"))]
    pairs += [(CONFIG, extracted / "etc/dropbox-agent/agent.json"), (UNIT, extracted / "lib/systemd/system/dropbox-agent.service")]
    for source, packaged in pairs:
        assert packaged.is_file(), f"{packaged.relative_to(extracted)} is missing"
        assert packaged.read_bytes() == source.read_bytes(), f"{packaged.relative_to(extracted)} differs from {source.relative_to(ROOT)}"
    packaged_casa = {p.name for p in (extracted / "usr/share/dropbox-agent/casa").iterdir()}
    assert packaged_casa == {s.name for s, p in pairs if "casa" in p.parts}


def test_maintainer_scripts_in_the_package(deb, tmp_path):
    control_dir = tmp_path / "DEBIAN"
    result = run(["dpkg-deb", "--control", deb, control_dir])
    assert result.returncode == 0, result.stderr
    for name in SCRIPTS + ["conffiles"]:
        assert (control_dir / name).read_bytes() == (PKG / "DEBIAN" / name).read_bytes(), f"{name} differs"
    for name in SCRIPTS:
        assert os.access(control_dir / name, os.X_OK), f"{name} is not executable in the package"


def test_packaged_binary_needs_no_swift_libraries(extracted):
    ldd = run(["ldd", packaged_binary(extracted)])
    assert ldd.returncode == 0, ldd.stderr
    assert "not found" not in ldd.stdout, ldd.stdout
    for marker in ["libswift", "libFoundation", "libdispatch", "/opt/swift", "/usr/share/swift"]:
        assert marker not in ldd.stdout, ldd.stdout


def test_packaged_binary_validates_the_packaged_examples(extracted):
    examples = extracted / "usr/share/dropbox-agent/examples/requests"
    valid = sorted(examples.glob("*.json"))
    invalid = sorted((examples / "invalid").glob("*.json"))
    assert valid and invalid
    for path in valid:
        result = run_packaged(extracted, "validate", path)
        assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"
    for path in invalid:
        result = run_packaged(extracted, "validate", path)
        assert result.returncode == 1, f"{path.name} was not rejected: {result.stdout}{result.stderr}"


def test_packaged_binary_accepts_the_packaged_config(extracted, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    result = run_packaged(extracted, "status", "--config", extracted / "etc/dropbox-agent/agent.json", "--spool", spool, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_casa_programs_are_where_the_binary_looks(extracted):
    # AgentConfiguration.locateCASAProgramDirectory: <dir of the binary>/../share/dropbox-agent/casa.
    casa = packaged_binary(extracted).parent.parent / "share/dropbox-agent/casa"
    assert (casa / "restore_mous.py").is_file()
    assert (casa / "casaenv.py").is_file()
    assert (casa / "requirements.txt").is_file()


def test_man_page_documents_every_subcommand(extracted):
    page = gzip.decompress((extracted / "usr/share/man/man1/dropbox-agent.1.gz").read_bytes()).decode()
    assert page.startswith('.\\" "Generated by swift-argument-parser"')
    help_text = run_packaged(extracted, "--help").stdout
    for subcommand in SUBCOMMANDS:
        assert subcommand in help_text
        assert f".It Em {subcommand}\n" in page, f"the man page lacks {subcommand}"
    assert ".Sh FILES" in page and "/etc/dropbox-agent/agent.json" in page
    man = require_tool("man", "man-db")
    result = run([man, "--warnings", "-l", extracted / "usr/share/man/man1/dropbox-agent.1.gz"],
                 env={**os.environ, "MANWIDTH": "100", "MANPAGER": "cat"})
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_bash_completion_completes_subcommands(extracted):
    script = extracted / "usr/share/bash-completion/completions/dropbox-agent"
    # Load the completion function and ask it what follows "dropbox-agent va".
    probe = f"""
source {script}
COMP_WORDS=(dropbox-agent va); COMP_CWORD=1; COMP_LINE="dropbox-agent va"; COMP_POINT=${{#COMP_LINE}}
_dropbox-agent 2>/dev/null || _dropbox_agent 2>/dev/null || complete -p dropbox-agent
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    result = run(["bash", "-c", probe])
    assert "validate" in result.stdout.split(), result.stdout + result.stderr


def test_packaged_unit_verifies_with_its_man_page(extracted, tmp_path):
    unit = (extracted / "lib/systemd/system/dropbox-agent.service").read_text()
    result = verify_unit(unit, packaged_binary(extracted), tmp_path, manpath=extracted / "usr/share/man")
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
