#!/usr/bin/env bash
# Create the Python virtual environments used by the Hermes integration tests.
#
#   tests/hermes/setup_venvs.sh            # all versions
#   tests/hermes/setup_venvs.sh 0.19.0     # just one
#
# Each venv lives in $CARGO_TARGET_DIR/hermes-venvs/<version> (default:
# <repo>/target/hermes-venvs/<version>) and holds hermes-agent==<version> from
# PyPI plus the `anthropic` extra (the real Anthropic SDK, used by the
# anthropic-auth-error scenario). A venv is skipped when its marker file says it
# was built for the same version and `import agent.credential_pool` still works,
# so a second run takes well under a second.
#
# Prints the venv directories, one per line, on stdout; progress goes to stderr.
set -euo pipefail

VERSIONS=("0.15.0" "0.19.0")
if [[ $# -gt 0 ]]; then
    VERSIONS=("$@")
fi

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd -- "${script_dir}/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-${repo_root}/target}"
# A relative CARGO_TARGET_DIR is relative to the repository root, as for cargo.
if [[ "${target_dir}" != /* ]]; then
    target_dir="${repo_root}/${target_dir}"
fi
venv_root="${target_dir}/hermes-venvs"
PYTHON="${PYTHON:-python3}"

die() {
    echo "setup_venvs.sh: error: $*" >&2
    exit 1
}

command -v "${PYTHON}" >/dev/null 2>&1 \
    || die "${PYTHON} not found. Install Python 3.11+ with venv and pip, e.g. 'apt-get install python3 python3-venv python3-pip'."
"${PYTHON}" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "$(${PYTHON} -V 2>&1) is too old: hermes-agent needs Python 3.11 or later."
"${PYTHON}" -c 'import venv, ensurepip' >/dev/null 2>&1 \
    || die "${PYTHON} has no working venv/ensurepip module. Install it with 'apt-get install python3 python3-venv'."

mkdir -p "${venv_root}"
# Serialise concurrent callers (e.g. parallel cargo tests) on one lock file.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${venv_root}/.lock"
    flock 9
fi

venv_ok() {
    # $1 = venv dir, $2 = version
    local dir="$1" version="$2"
    [[ -x "${dir}/bin/python" ]] || return 1
    [[ -f "${dir}/.hermes-harness-ok" ]] || return 1
    [[ "$(cat "${dir}/.hermes-harness-ok")" == "hermes-agent==${version}" ]] || return 1
    (cd "${dir}" && HERMES_HOME="${dir}/.probe-home" HOME="${dir}/.probe-home" \
        "${dir}/bin/python" -c 'import agent.credential_pool' >/dev/null 2>&1) || return 1
    return 0
}

for version in "${VERSIONS[@]}"; do
    dir="${venv_root}/${version}"
    if venv_ok "${dir}" "${version}"; then
        echo "setup_venvs.sh: ${dir} is up to date (hermes-agent==${version})" >&2
        echo "${dir}"
        continue
    fi
    echo "setup_venvs.sh: building ${dir} (hermes-agent==${version}) ..." >&2
    rm -rf "${dir}"
    "${PYTHON}" -m venv "${dir}" \
        || die "'${PYTHON} -m venv' failed. Install venv support with 'apt-get install python3 python3-venv'."
    "${dir}/bin/python" -m pip --version >/dev/null 2>&1 \
        || die "pip is missing in the new venv. Install it with 'apt-get install python3 python3-venv python3-pip'."
    # The anthropic extra pins the SDK version that hermes-agent was released with.
    if ! "${dir}/bin/python" -m pip install --quiet --disable-pip-version-check \
            "hermes-agent[anthropic]==${version}" >&2; then
        die "pip install hermes-agent[anthropic]==${version} failed (network or PyPI problem?)."
    fi
    mkdir -p "${dir}/.probe-home"
    (cd "${dir}" && HERMES_HOME="${dir}/.probe-home" HOME="${dir}/.probe-home" \
        "${dir}/bin/python" -c 'import agent.credential_pool, openai, anthropic') \
        || die "hermes-agent==${version} installed but 'import agent.credential_pool' fails in ${dir}."
    installed="$("${dir}/bin/python" -m pip show hermes-agent 2>/dev/null | sed -n 's/^Version: //p')"
    [[ "${installed}" == "${version}" ]] \
        || die "expected hermes-agent ${version} in ${dir}, pip reports '${installed}'."
    echo "hermes-agent==${version}" > "${dir}/.hermes-harness-ok"
    echo "setup_venvs.sh: ${dir} ready" >&2
    echo "${dir}"
done
