#!/usr/bin/env bash
# Quick start: set up everything and run the device on embedded defaults (SQLite, ./run/data, a config
# generated from this host's interfaces, listening on 127.0.0.1:2020). Run as root so it can capture.
source "$(dirname "$0")/scripts/bootstrap.sh"
bootstrap ""
CONF="${OPENTAP_CONF:-$ROOT/run/opentap.conf}"
if [ ! -f "$CONF" ]; then
    "$VENV/bin/opentap" config init --config "$CONF"
fi
exec "$VENV/bin/opentap" serve --config "$CONF" "$@"
