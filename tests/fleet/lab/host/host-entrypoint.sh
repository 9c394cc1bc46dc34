#!/usr/bin/env bash
# Entry point of a lab host: make cgroups writable, start a DNS forwarder and sshd, then run
# dockerd in the foreground (the container lives as long as its engine). The lab mounts:
#   /etc/ssh/ssh_host_ed25519_key[.pub]  the host key the lab made (the .pub is in known_hosts)
#   /root/.ssh/authorized_keys           the lab's controller key
#   /etc/docker/daemon.lab.json          the engine's settings (storage driver, lab registry)
#   /run                                 a tmpfs, empty on every start
set -euo pipefail

# The sandbox mounts each cgroup v1 hierarchy read-only in containers; an engine inside needs
# to create cgroups, so mount each hierarchy again read-write (systemd's is a named one).
remount_cgroups() {
    local dir name opts
    for dir in /sys/fs/cgroup/*; do
        [ -L "$dir" ] && continue
        mountpoint -q "$dir" || continue
        name=${dir##*/}
        case $name in
        systemd) opts=none,name=systemd ;;
        unified) continue ;;
        *) opts=$name ;;
        esac
        umount "$dir"
        mount -t cgroup -o "$opts" cgroup "$dir"
    done
}

if [ -d /sys/fs/cgroup/memory ]; then
    remount_cgroups
fi

# This host's resolver is the lab network's (127.0.0.11), which dockerd refuses to hand to inner
# containers (it is a loopback address there) and would replace with public resolvers. A
# forwarder on the host's lab address serves inner containers instead: lab names and the rest.
lab_ip=$(hostname -i | cut -d' ' -f1)
dnsmasq --no-resolv --no-hosts --server=127.0.0.11 --listen-address="$lab_ip" --bind-interfaces \
    --user=root --pid-file=/run/dnsmasq.pid

python3 - "$lab_ip" <<'PY'
import json
import sys

with open("/etc/docker/daemon.lab.json") as src:
    settings = json.load(src)
settings["dns"] = [sys.argv[1]]
with open("/etc/docker/daemon.json", "w") as dst:
    json.dump(settings, dst, indent=2)
PY

# /proc/sys is read-only here: dockerd would fail to set IPv6 sysctls on inner networks.
export DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1

# /run is a fresh tmpfs on every start (lab.py), as on a real host: sshd's privilege separation
# directory has to be made again.
mkdir -p /run/sshd
/usr/sbin/sshd -e

exec dockerd --host=unix:///var/run/docker.sock "$@"
