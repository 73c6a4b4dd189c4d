#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Rust: installs what the tests need
# (Debian packages, the real hermes-agent releases in virtual environments cached under
# target/), then checks formatting and lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
command -v python3 >/dev/null || need_debs+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_debs+=(python3-venv)
command -v rg >/dev/null || need_debs+=(ripgrep)
command -v logrotate >/dev/null || need_debs+=(logrotate)
command -v promtool >/dev/null || need_debs+=(prometheus)
if ((${#need_debs[@]})); then
    echo "test.sh: installing Debian packages: ${need_debs[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_debs[@]}"
fi

tests/hermes/setup_venvs.sh

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
