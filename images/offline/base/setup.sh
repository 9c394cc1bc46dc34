#!/bin/sh
# Runs inside the freshly debootstrapped rootfs (chroot) before it is
# imported as autoproxy/debian:trixie. Part of the base image's cache key.
# Usage: setup.sh MIRROR SUITE
set -eu
mirror=$1
suite=$2

# Plain http to Debian's mirror: that is what containers here can reach.
rm -f /etc/apt/sources.list.d/*
echo "deb $mirror $suite main" >/etc/apt/sources.list

# Keep later `apt-get install` layers small: no docs, man pages or
# translations (copyright files stay, as in Debian's slim images).
cat >/etc/dpkg/dpkg.cfg.d/01-autoproxy-nodoc <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG

# Same policy as the docker-official debian image: no recommends, and
# apt caches are emptied after each run.
cat >/etc/apt/apt.conf.d/01-autoproxy <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
CFG

# Services must not start inside the build (no init there anyway).
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d

# Trim: package lists and caches are refetched by `apt-get update`.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
    /var/log/*.log /var/log/apt/* /tmp/* /var/tmp/*
find /usr/share/doc -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
find /usr/share/doc -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf /usr/share/man/* /usr/share/info/*
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
# A fresh machine-id per container, as systemd-less images expect.
: >/etc/machine-id
