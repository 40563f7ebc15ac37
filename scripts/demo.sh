#!/usr/bin/env bash
# One command for a new user: install what is missing, build, and run the demo overlay
# (a manager and three servants on loopback that chat; the transcript is printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
BUILD_DIR=$root/build "$root/scripts/build.sh" -DCMAKE_BUILD_TYPE=RelWithDebInfo
exec python3 "$root/scripts/demo.py" --bindir "$root/build/bin"
