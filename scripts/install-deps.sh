#!/usr/bin/env bash
# Installs the Debian packages the agent and its tests need (root; apt-get only).
source "$(dirname "$0")/lib.sh"
missing="$(missing_apt_packages)"
if [ -z "$missing" ]; then say "system packages: all present"; exit 0; fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
say "installing: $missing"
# No service may start from a package script (there is no init system in containers/CI).
if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends --no-upgrade $missing
