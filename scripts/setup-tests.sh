#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine (run as root):
# the real servers the tests start, then the Python package with its test extras.
# Packages already installed are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(prometheus prometheus-alertmanager postgresql pgbouncer rabbitmq-server redis-server
          prometheus-postgres-exporter prometheus-pgbouncer-exporter
          prometheus-node-exporter prometheus-blackbox-exporter prometheus-redis-exporter
          victoria-metrics etcd-server)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The packages' own services are not wanted: tests start their own servers on free ports.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
