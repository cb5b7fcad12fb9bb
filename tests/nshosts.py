"""Agents on several "hosts" on one machine: each host is a set of Linux namespaces made by `unshare` (util-linux):
its own hostname (UTS), PID and network namespaces, and a private mount namespace in which the shared spool is
mounted at the same path on every host — a bind mount of one directory, or sshfs (FUSE) from a storage host
running a real sshd.

A host is a `unshare --fork` whose child is the namespace's init (a shell); the agent is the init's child. Killing
the init with SIGKILL (by PID) makes the kernel kill every process of that PID namespace: the whole host dies at
once, its agent and anything else it ran (sshfs). Nothing here changes the machine's configuration: all mounts
live in private mount namespaces and vanish with them; sshd runs in its own network namespace on a fixed port.
"""
from __future__ import annotations

import os
import pathlib
import shlex
import shutil
import signal
import subprocess

from agentlib import Agent, wait_until

UNSHARE_HOST = ["unshare", "--uts", "--pid", "--net", "--mount", "--propagation", "private", "--fork", "--mount-proc",
                "--kill-child"]


def namespaces_unavailable() -> str | None:
    """Why namespace hosts cannot be made here (the exact error), or None when they can."""
    if os.geteuid() != 0:
        return "namespace hosts need root (unshare of PID, network and mount namespaces)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run([*UNSHARE_HOST, "sh", "-c", "hostname probe && ip link set lo up && hostname"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or probe.stdout.strip() != "probe":
        return f"unshare failed: {probe.stderr.strip() or probe.stdout.strip()} (exit {probe.returncode})"
    return None


def children(pid: int) -> list[int]:
    try:
        text = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def comm(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


class NamespaceHost:
    """One host: its own hostname, PID, network and mount namespaces, and one `dropbox-agent run`, started by
    agentlib's ``Agent`` with the namespace's init as its launcher.

    `mount_command` mounts the shared spool at `mountpoint` inside the host (a bind mount, or sshfs).
    """

    def __init__(self, base: pathlib.Path, name: str, mountpoint: pathlib.Path, mount_command: list[str],
                 config: dict, unmount_command: list[str] | None = None, env: dict | None = None):
        self.name = name
        self.base = base / name
        self.base.mkdir(parents=True, exist_ok=True)
        self.mountpoint = mountpoint
        spool = pathlib.Path(config.get("spool", {}).get("directory", mountpoint))
        self.agent = Agent(self.base, spool, "agent", config=config, env=env)
        self.data = self.agent.data
        self.config_path = self.agent.config_path
        self.log_path = self.agent.log_path
        self.mount_command = mount_command
        self.unmount_command = unmount_command

    @property
    def process(self) -> subprocess.Popen | None:
        """The host's `unshare` process (its child is the namespace's init)."""
        return self.agent.process

    def start(self, timeout: float = 60) -> "NamespaceHost":
        unmount = shlex.join(self.unmount_command) if self.unmount_command else "true"

        def init(argv: list[str]) -> list[str]:
            # The init shell: set the host up, run the agent, wait for it (reaping it), then unmount.
            script = (f"set -e; hostname {shlex.quote(self.name)}; ip link set lo up; {shlex.join(self.mount_command)}; "
                      f"set +e; {shlex.join(argv)} 2>>{shlex.quote(str(self.log_path))} & wait $!; rc=$?; {unmount}; "
                      "exit $rc")
            return [*UNSHARE_HOST, "sh", "-c", script]

        self.agent.start(timeout=timeout, launch=init, output=self.base / "init.log")
        return self

    @property
    def init_pid(self) -> int | None:
        """The PID (in our namespace) of the host's init: the child of `unshare --fork`."""
        assert self.process is not None
        kids = children(self.process.pid)
        return kids[0] if kids else None

    @property
    def agent_pid(self) -> int | None:
        init = self.init_pid
        if init is None:
            return None
        return next((p for p in children(init) if comm(p) == "dropbox-agent"), None)

    def log_text(self) -> str:
        return self.agent.log_text()

    def log_lines(self) -> list[dict]:
        return self.agent.log_lines()

    def log_has(self, message: str) -> bool:
        return self.agent.log_has(message)

    def freeze(self) -> None:
        """SIGSTOP of the agent (by PID): the host hangs, holding what it holds."""
        pid = self.agent_pid
        assert pid, f"host {self.name} has no agent"
        os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        pid = self.agent_pid
        if pid:
            os.kill(pid, signal.SIGCONT)

    def kill_whole_host(self) -> None:
        """SIGKILL of the host's init: the kernel kills every process of its PID namespace."""
        init = self.init_pid
        assert init, f"host {self.name} has no init"
        agent = self.agent_pid
        os.kill(init, signal.SIGKILL)
        self.process.wait(timeout=30)
        if agent:
            wait_until(lambda: not pathlib.Path(f"/proc/{agent}").exists(), 30, what=f"host {self.name}'s agent to die with it")
        self.agent.wait_exit()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM to the agent (a clean stop), then the host ends by itself; returns the agent's exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            pid = self.agent_pid
            if pid:
                os.kill(pid, signal.SIGTERM)
        return self.agent.wait_exit(timeout=timeout)

    def kill_if_running(self) -> None:
        if self.process is not None and self.process.poll() is None:
            init = self.init_pid
            if init:
                try:
                    os.kill(init, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.wait(timeout=30)


def bind_mount(shared: pathlib.Path, mountpoint: pathlib.Path) -> list[str]:
    return ["mount", "--bind", str(shared), str(mountpoint)]


# ---------------------------------------------------------------------------------------------------------------
# sshfs from a storage host


def fuse_unavailable() -> str | None:
    """Why sshfs cannot be used here, or None. Only a missing /dev/fuse skips; missing packages (sshfs,
    openssh-server, socat: scripts/install-deps.sh) make the test fail, as scripts/test.sh's check does."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent: FUSE (and so sshfs) cannot be used in this sandbox"
    return None


class StorageHost:
    """A file server host: its own UTS/PID/network/mount namespaces, a real sshd on its own loopback (port 22 of
    its own network namespace), with keys generated for this run. Other hosts reach it over a Unix socket bridged
    to that port by socat (pathname Unix sockets cross network namespaces; TCP does not without routing, which
    would mean changing the machine's network configuration)."""

    def __init__(self, base: pathlib.Path, export: pathlib.Path):
        self.base = base / "storage"
        self.base.mkdir(parents=True, exist_ok=True)
        self.export = export
        self.socket = self.base / "ssh.sock"
        self.client_key = self.base / "client_key"
        self.known_hosts = self.base / "known_hosts"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "StorageHost":
        host_key = self.base / "host_key"
        for key in (host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (self.base / "authorized_keys").write_text((self.base / "client_key.pub").read_text())
        self.known_hosts.write_text("storage " + " ".join((self.base / "host_key.pub").read_text().split()[:2]) + "\n")
        # StrictModes off: the keys live under the test's temporary directory, beneath the world-writable /tmp.
        config = self.base / "sshd_config"
        config.write_text("\n".join([
            "Port 22", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"AuthorizedKeysFile {self.base}/authorized_keys",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "UsePAM no", "PidFile none", "StrictModes no", "Subsystem sftp internal-sftp", "LogLevel INFO", "",
        ]))
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        # /run/sshd (privilege separation) on a tmpfs of this host's own mount namespace.
        script = (f"set -e; hostname storage; ip link set lo up; mount -t tmpfs tmpfs /run; mkdir -m 755 /run/sshd; "
                  f"{sshd} -D -e -f {config} 2>>{self.base}/sshd.log & "
                  f"exec socat UNIX-LISTEN:{self.socket},fork,unlink-early TCP:127.0.0.1:22")
        self.log = open(self.base / "init.log", "ab")
        self.process = subprocess.Popen([*UNSHARE_HOST, "sh", "-c", script], stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=self.log, start_new_session=True)
        wait_until(lambda: self.socket.exists() or self.process.poll() is not None, timeout, what="the storage host's sshd")
        assert self.process.poll() is None, (self.base / "init.log").read_text()
        return self

    def sshfs_command(self, mountpoint: pathlib.Path) -> list[str]:
        """What a host runs to mount the export. Caching off, so every host sees the others' renames, links
        and lease files at once (sshfs caches directory contents for 20 s and attributes for 1 s by default)."""
        return ["sshfs", f"root@storage:{self.export}", str(mountpoint),
                "-o", f"ProxyCommand=socat - UNIX-CONNECT:{self.socket}",
                "-o", f"IdentityFile={self.client_key}", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "HostKeyAlias=storage",
                "-o", "dir_cache=no", "-o", "entry_timeout=0", "-o", "attr_timeout=0", "-o", "negative_timeout=0"]

    @staticmethod
    def unmount_command(mountpoint: pathlib.Path) -> list[str]:
        return ["fusermount3", "-u", str(mountpoint)]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            init = children(self.process.pid)
            for pid in init:
                os.kill(pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.log.close()
