# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet lab: several real Docker hosts on this machine, reached over SSH.

    python tests/fleet/lab.py up      build the lab images if stale, start a fresh lab, write its inventory
    python tests/fleet/lab.py down    remove every container, volume and network the lab made (idempotent)
    python tests/fleet/lab.py status  print the lab's hosts and addresses

Each host is a container of the lab host image running its own dockerd and sshd, on a bridge
network of the lab's own. One registry container on that network holds the stack's images; every
host trusts it (``insecure-registries``). The state directory (default ``.cache/fleet``) holds the
SSH keys the lab made, ``known_hosts``, ``ssh_config``, ``inventory.yml`` and ``lab.json``.

Environment: AUTOPROXY_LAB_PREFIX (``aplab``), AUTOPROXY_LAB_HOSTS (4), AUTOPROXY_LAB_STATE
(``.cache/fleet``), AUTOPROXY_LAB_STORAGE (``overlay2``: /var/lib/docker on a volume; ``vfs``:
on tmpfs, in RAM), AUTOPROXY_IMAGE_VARS (``inventory/group_vars/all/images.yml``, written by
images/select-images).
Everything the lab makes carries the label ``org.autoproxy.lab=<prefix>``; its images are kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = Path(__file__).resolve().parent / "lab"
LABEL = "org.autoproxy.lab"
HASH_LABEL = "org.autoproxy.lab.image-hash"
REGISTRY_PORT = 5000
# Where images/select-images (make images) writes the image choice, in the checkout's inventory.
IMAGE_VARS = "inventory/group_vars/all/images.yml"
AGENT_DOCKERFILE = "roles/agent_image/files/Dockerfile"
# The roles' defaults for the images (kept in step with roles/*/defaults/main.yml): used when
# images/select-images found the upstream images, so its vars file is empty.
DEFAULT_IMAGES = {
    "consul_image": "hashicorp/consul:1.20",
    "demo_app_image": "tutum/hello-world:latest",
    "agent_image_base": "debian:trixie-slim",
}
AGENT_IMAGE = ("autoproxy/agent", "0.1")


class LabError(Exception):
    """A step of the lab failed; the message says which and what to look at."""


@dataclass(frozen=True)
class Config:
    prefix: str
    hosts: int
    state: Path
    storage: str
    image_vars: Path

    @classmethod
    def from_env(cls) -> Config:
        hosts = int(os.environ.get("AUTOPROXY_LAB_HOSTS", "4"))
        if hosts < 2:
            raise LabError(f"AUTOPROXY_LAB_HOSTS={hosts}: a fleet lab needs at least 2 hosts")
        storage = os.environ.get("AUTOPROXY_LAB_STORAGE", "overlay2")
        if storage not in ("overlay2", "vfs"):
            raise LabError(f"AUTOPROXY_LAB_STORAGE={storage!r}: choose overlay2 or vfs")
        return cls(
            prefix=os.environ.get("AUTOPROXY_LAB_PREFIX", "aplab"),
            hosts=hosts,
            state=Path(os.environ.get("AUTOPROXY_LAB_STATE", ROOT / ".cache" / "fleet")).resolve(),
            storage=storage,
            image_vars=Path(os.environ.get("AUTOPROXY_IMAGE_VARS", ROOT / IMAGE_VARS)),
        )

    @property
    def network(self) -> str:
        return f"{self.prefix}_net"

    @property
    def registry(self) -> str:
        """Container name of the registry, also its address on the lab network."""
        return f"{self.prefix}-registry"

    @property
    def registry_address(self) -> str:
        """host:port under which the lab hosts pull (and the inventory names images)."""
        return f"{self.registry}:{REGISTRY_PORT}"

    def host_names(self) -> list[str]:
        return [f"{self.prefix}-h{i}" for i in range(1, self.hosts + 1)]

    def image(self, role: str) -> str:
        """Name of a lab image (kept between labs): role is ``host``, ``registry`` or ``agent``."""
        return f"{self.prefix}/{role}:latest"


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


def run(*args: str, check: bool = True, input_text: str | None = None, timeout: float = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise LabError with its output."""
    proc = subprocess.run(args, input=input_text, capture_output=True, text=True, timeout=timeout,
                          check=False, env=env)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
    return proc


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return run("docker", *args, **kwargs)


def wait_for(what: str, probe, timeout: float, interval: float = 0.5):
    """Poll probe() until it returns a true value (returned); LabError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- images -------------------------------------------------------------------------------------

def image_label(image: str, key: str) -> str:
    proc = docker("image", "inspect", "-f", f'{{{{ index .Config.Labels "{key}" }}}}', image, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def image_id(image: str) -> str:
    proc = docker("image", "inspect", "-f", "{{ .Id }}", image, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def tree_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_lab_image(cfg: Config, role: str, base: str) -> None:
    """Build aplab/<role> from tests/fleet/lab/<role>/ unless its inputs are unchanged.

    The key is the build context's files and the base image's ID, kept in a label: a warm run
    builds nothing, a changed file or a rebuilt base rebuilds, and the image it replaced goes.
    """
    name = cfg.image(role)
    base_id = image_id(base)
    if not base_id:
        raise LabError(f"base image {base} is missing: run images/select-images {IMAGE_VARS} first")
    context = LAB_DIR / role
    key = hashlib.sha256(f"{tree_hash(context)} {base_id}".encode()).hexdigest()
    if image_label(name, HASH_LABEL) == key:
        log(f"{name}: up to date")
        return
    old = image_id(name)
    start = time.monotonic()
    docker("build", "-q", "--rm", "--force-rm", "--build-arg", f"BASE_IMAGE={base}",
           "--label", f"{HASH_LABEL}={key}", "-t", name, str(context),
           env=dict(os.environ, DOCKER_BUILDKIT="0"), timeout=1200)
    if old and old != image_id(name):
        docker("image", "rm", old, check=False)
    log(f"{name}: built ({time.monotonic() - start:.0f} s)")


def stack_images(cfg: Config) -> dict[str, str]:
    """The stack's image references on this machine's engine, by role variable."""
    if not cfg.image_vars.exists():
        raise LabError(f"{cfg.image_vars} is missing: run images/select-images {cfg.image_vars}")
    import yaml  # the project's venv has it (Ansible needs it); `down` must work without it

    chosen = yaml.safe_load(cfg.image_vars.read_text()) or {}
    return {key: chosen.get(key, default) for key, default in DEFAULT_IMAGES.items()}


def build_agent_image(cfg: Config, base: str) -> str:
    """The agent image from this working tree, as the agent_image role builds it (aplab/agent).

    The builder's cache makes an unchanged tree cheap; a rebuilt image drops the one it replaced.
    """
    tag = cfg.image("agent")
    old = image_id(tag)
    start = time.monotonic()
    docker("build", "-q", "-f", AGENT_DOCKERFILE, "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(ROOT),
           env=dict(os.environ, DOCKER_BUILDKIT="0"), timeout=1200)
    if old and old != image_id(tag):
        docker("image", "rm", old, check=False)
    log(f"{tag}: built from the working tree ({time.monotonic() - start:.0f} s)")
    return tag


def in_registry(cfg: Config, image: str) -> str:
    """The name under which the lab hosts pull `image`: same path and tag, the lab's registry."""
    return f"{cfg.registry_address}/{image}"


def push_images(cfg: Config, local_port: int, images: dict[str, str]) -> None:
    """Push local images (source -> path:tag in the registry) through the registry's loopback port.

    Docker treats 127.0.0.1 registries as insecure without any daemon setting, so this machine's
    engine needs no change; the temporary tags are removed after the push.
    """
    for source, target in images.items():
        via = f"127.0.0.1:{local_port}/{target}"
        start = time.monotonic()
        docker("tag", source, via)
        try:
            docker("push", "-q", via, timeout=900)
        finally:
            docker("image", "rm", via, check=False)
        log(f"pushed {source} as {cfg.registry_address}/{target} ({time.monotonic() - start:.0f} s)")


# --- containers ---------------------------------------------------------------------------------

def labels(cfg: Config) -> list[str]:
    return ["--label", f"{LABEL}={cfg.prefix}"]


def container_ip(name: str, network: str) -> str:
    proc = docker("inspect", "-f", f'{{{{ (index .NetworkSettings.Networks "{network}").IPAddress }}}}', name)
    return proc.stdout.strip()


def tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def keygen(path: Path, comment: str) -> str:
    """Make an ed25519 key pair at path (no passphrase); return the public key line."""
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))
    return path.with_suffix(".pub").read_text().strip()


def start_registry(cfg: Config) -> int:
    """Start the registry container; return its loopback port on this machine."""
    docker("run", "-d", "--name", cfg.registry, "--hostname", cfg.registry, "--network", cfg.network,
           *labels(cfg), "-p", f"127.0.0.1::{REGISTRY_PORT}", cfg.image("registry"))
    port = int(docker("port", cfg.registry, f"{REGISTRY_PORT}/tcp").stdout.split("\n")[0].rsplit(":", 1)[1])
    wait_for(f"the registry {cfg.registry} on 127.0.0.1:{port}", lambda: tcp_open("127.0.0.1", port), 30)
    return port


def daemon_json(cfg: Config) -> str:
    """The lab hosts' dockerd settings; each host's entry point adds its own DNS forwarder."""
    settings = {
        "storage-driver": cfg.storage,
        "insecure-registries": [cfg.registry_address],
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "2"},
    }
    return json.dumps(settings, indent=2) + "\n"


def start_host(cfg: Config, name: str) -> None:
    """Start one lab host: its own dockerd (its data on a volume, or tmpfs for vfs) and sshd."""
    state = cfg.state
    storage = (["--tmpfs", "/var/lib/docker:exec"] if cfg.storage == "vfs"
               else ["--mount", f"type=volume,source={name}-docker,target=/var/lib/docker"])
    if cfg.storage != "vfs":
        docker("volume", "create", *labels(cfg), f"{name}-docker")
    docker(
        "run", "-d", "--name", name, "--hostname", name, "--network", cfg.network, *labels(cfg),
        # An init reaps what sshd sessions leave behind; dockerd is not meant to be PID 1.
        "--init",
        # --privileged is refused in this sandbox (no CAP_SYS_RESOURCE); this set runs dockerd.
        "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--device", "/dev/fuse", *storage,
        # A real host boots with an empty /run. In the container's own layer it would survive a
        # stop and start (the fault tests kill hosts and start them again), and the engine's run
        # state with it: dockerd refused to start (its old pid file named a PID of the new boot),
        # runc to recreate containers ("container with given ID already exists").
        "--tmpfs", "/run:exec",
        "-v", f"{state / 'hostkeys' / name}:/etc/ssh/ssh_host_ed25519_key:ro",
        "-v", f"{state / 'hostkeys' / name}.pub:/etc/ssh/ssh_host_ed25519_key.pub:ro",
        "-v", f"{state / 'id_ed25519.pub'}:/root/.ssh/authorized_keys:ro",
        "-v", f"{state / 'daemon.json'}:/etc/docker/daemon.lab.json:ro",
        cfg.image("host"),
    )


def engine_ready(name: str) -> bool:
    proc = docker("exec", name, "docker", "version", "-f", "{{ .Server.Version }}", check=False, timeout=30)
    if proc.returncode == 0:
        return True
    if docker("inspect", "-f", "{{ .State.Running }}", name, check=False).stdout.strip() != "true":
        tail = docker("logs", "--tail", "20", name, check=False)
        raise LabError(f"lab host {name} stopped while its dockerd started:\n{tail.stdout}{tail.stderr}")
    return False


# --- state files --------------------------------------------------------------------------------

def write_inventory(cfg: Config, addresses: dict[str, str], images: dict[str, str]) -> None:
    """inventory.yml: the hosts by lab address over SSH, the fleet groups, the registry's images."""
    import yaml

    names = cfg.host_names()
    servers = names[:3] if len(names) >= 4 else names[:1]
    edges = [names[0], names[-1]]
    ssh_args = (f"-o UserKnownHostsFile={cfg.state / 'known_hosts'} -o StrictHostKeyChecking=yes "
                "-o ControlMaster=auto -o ControlPersist=60s")
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "ssh",
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(cfg.state / "id_ed25519"),
                "ansible_ssh_common_args": ssh_args,
                # Per lab, so a master connection to a removed host is never reused by the next lab.
                "ansible_control_path_dir": str(cfg.state / "cp"),
                "ansible_python_interpreter": "/usr/bin/python3",
                # One SSH round trip per module instead of several.
                "ansible_pipelining": True,
                "autoproxy_lab_registry": cfg.registry_address,
                **images,
            },
            "hosts": {name: {"ansible_host": addresses[name]} for name in names},
            "children": {
                "docker_hosts": {"hosts": {name: {} for name in names}},
                "consul_servers": {"hosts": {name: {} for name in servers}},
                "edges": {"hosts": {name: {} for name in edges}},
            },
        }
    }
    header = "# Written by tests/fleet/lab.py up: the lab's hosts, reached over SSH. Rewritten on every up.\n"
    (cfg.state / "inventory.yml").write_text(header + yaml.safe_dump(inventory, sort_keys=False))


def write_ssh_files(cfg: Config, addresses: dict[str, str]) -> None:
    known, config = [], []
    for name, address in addresses.items():
        host_key = (cfg.state / "hostkeys" / f"{name}.pub").read_text().split()
        known.append(f"{address} {host_key[0]} {host_key[1]}")
        config.append(
            f"Host {name}\n  HostName {address}\n  User root\n  IdentityFile {cfg.state / 'id_ed25519'}\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {cfg.state / 'known_hosts'}\n  StrictHostKeyChecking yes\n")
    (cfg.state / "known_hosts").write_text("\n".join(known) + "\n")
    (cfg.state / "ssh_config").write_text("\n".join(config))


def control_path_ok(cfg: Config) -> None:
    # A Unix socket path has at most 107 bytes; ssh adds a 40-character hash (%C) and a suffix.
    if len(str(cfg.state / "cp")) + 60 > 107:
        raise LabError(f"state dir {cfg.state} is too long for SSH control sockets; set AUTOPROXY_LAB_STATE shorter")


# --- commands -----------------------------------------------------------------------------------

def down(cfg: Config) -> None:
    """Remove everything labelled as this lab's (containers, then volumes, networks) and its state dir."""
    selector = f"label={LABEL}={cfg.prefix}"
    containers = docker("ps", "-aq", "--filter", selector).stdout.split()
    if containers:
        docker("rm", "-f", "-v", *containers, timeout=300)
    volumes = docker("volume", "ls", "-q", "--filter", selector).stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes)
    networks = docker("network", "ls", "-q", "--filter", selector).stdout.split()
    if networks:
        docker("network", "rm", *networks)
    if cfg.state.exists():
        shutil.rmtree(cfg.state)
    log(f"down: removed {len(containers)} containers, {len(volumes)} volumes, {len(networks)} networks")


def up(cfg: Config) -> dict:
    """Start a fresh lab (an old one of the same prefix is removed first); return lab.json's content."""
    started = time.monotonic()
    control_path_ok(cfg)
    images = stack_images(cfg)
    base = images["agent_image_base"]
    build_lab_image(cfg, "host", base)
    build_lab_image(cfg, "registry", base)
    agent = build_agent_image(cfg, base)

    down(cfg)
    (cfg.state / "hostkeys").mkdir(parents=True)
    (cfg.state / "cp").mkdir()
    keygen(cfg.state / "id_ed25519", f"{cfg.prefix}-controller")
    for name in cfg.host_names():
        keygen(cfg.state / "hostkeys" / name, name)
    (cfg.state / "daemon.json").write_text(daemon_json(cfg))

    docker("network", "create", *labels(cfg), cfg.network)
    port = start_registry(cfg)
    for name in cfg.host_names():
        start_host(cfg, name)

    # Push while the hosts' engines start.
    pushes = {source: source for source in images.values()}
    pushes[agent] = f"{AGENT_IMAGE[0]}:{AGENT_IMAGE[1]}"
    push_images(cfg, port, pushes)
    registry_images = {key: in_registry(cfg, value) for key, value in images.items()}
    registry_images["agent_image_name"] = in_registry(cfg, AGENT_IMAGE[0])
    registry_images["agent_image_tag"] = AGENT_IMAGE[1]
    # Every host pulls the same agent image instead of building it (no Debian mirror in the lab).
    registry_images["agent_image_source"] = "registry"

    addresses = {}
    for name in cfg.host_names():
        wait_for(f"dockerd in lab host {name}", lambda name=name: engine_ready(name), 120)
        addresses[name] = container_ip(name, cfg.network)
        wait_for(f"sshd of {name} on {addresses[name]}:22", lambda a=addresses[name]: tcp_open(a, 22), 30)
    write_ssh_files(cfg, addresses)
    write_inventory(cfg, addresses, registry_images)
    for name in cfg.host_names():
        run("ssh", "-F", str(cfg.state / "ssh_config"), "-o", "BatchMode=yes", name, "true", timeout=30)

    facts = {
        "prefix": cfg.prefix,
        "network": cfg.network,
        "storage": cfg.storage,
        "hosts": addresses,
        "registry": cfg.registry_address,
        "registry_local_port": port,
        "images": registry_images,
        "inventory": str(cfg.state / "inventory.yml"),
        "ssh_config": str(cfg.state / "ssh_config"),
        "up_seconds": round(time.monotonic() - started, 1),
    }
    (cfg.state / "lab.json").write_text(json.dumps(facts, indent=2) + "\n")
    log(f"up in {facts['up_seconds']} s: {', '.join(f'{n} {a}' for n, a in addresses.items())}; "
        f"inventory {facts['inventory']}")
    return facts


def status(cfg: Config) -> int:
    path = cfg.state / "lab.json"
    if not path.exists():
        print(f"no lab (no {path})")
        return 1
    print(path.read_text(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--keep-on-failure", action="store_true",
                        help="leave a lab whose `up` failed in place, to look at it")
    args = parser.parse_args(argv)
    try:
        cfg = Config.from_env()
        if args.command == "down":
            down(cfg)
        elif args.command == "status":
            return status(cfg)
        else:
            try:
                up(cfg)
            except BaseException:
                if not args.keep_on_failure:
                    log("up failed: removing the partial lab (--keep-on-failure keeps it)")
                    down(cfg)
                raise
    except (LabError, subprocess.TimeoutExpired) as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
