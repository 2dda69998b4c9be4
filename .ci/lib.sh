# Shared by .ci/run (the gate) and .ci/full: timed stages and the install.
# Source it; it expects `set -euo pipefail` and the repository root as cwd.
#
#   stage "ruff and mypy" bash .ci/lint
#
# runs one command as a stage: prints "== NAME", then "== NAME: 123 s", and
# appends "NAME<TAB>seconds<TAB>status" to $CI_TIMES. A failed stage prints
# the table so far and ends the run. The command runs as a background job and
# is waited for: that keeps `set -e` in force inside shell functions (a
# function called from `cmd || ...` runs with -e off).

export PIP_DISABLE_PIP_VERSION_CHECK=1
CI_BEGAN=${CI_BEGAN:-$SECONDS}
CI_TIMES=${CI_TIMES:-$(mktemp "${TMPDIR:-/tmp}/wscodec-ci-times.XXXXXX")}
export CI_TIMES

stage() {
    local name=$1 began=$SECONDS status=0 log="" counts=""
    shift
    echo "== $name"
    if [ -n "${CI_STAGE_LOGS:-}" ]; then
        # .ci/full: each stage keeps its own log, for its counts and so that
        # stages running side by side do not interleave.
        log=$CI_STAGE_LOGS/$(printf '%s' "$name" | tr -c 'A-Za-z0-9.-' '_').log
        "$@" >"$log" 2>&1 &
        wait $! || status=$?
        cat "$log"
        counts=$(stage_counts <"$log")
    else
        "$@" &
        wait $! || status=$?
    fi
    local took=$((SECONDS - began))
    printf '%s\t%s\t%s\t%s\n' "$name" "$took" "$([ "$status" = 0 ] && echo ok || echo "FAILED ($status)")" \
        "$counts" >>"$CI_TIMES"
    echo "== $name: $took s"
    if [ "$status" != 0 ]; then
        echo "FAIL: $name (exit $status)" >&2
        stage_table >&2
        exit 1
    fi
}

# What a stage's log says it counted: pytest's closing line, Autobahn's
# "N passed, N failed", each fuzz target's executions; joined with "; ".
stage_counts() {
    grep -E '^(=+ )?[0-9]+ (passed|failed)[^=]* in [0-9.]+s|^[0-9]+ passed, [0-9]+ failed$|^ +[a-z0-9]+: [0-9]+ executions in' \
        | sed -E 's/^=+ //; s/ =+$//; s/^ +//; s/, coverage.*//' | awk '!seen[$0]++' | paste -sd ';' | sed 's/;/; /g' || true
}

# The stage times recorded so far, then the total wall time.
stage_table() {
    echo "== stage times"
    awk -F '\t' '{ printf "   %-62s %6d s  %s\n", $1, $2, $3 }' "$CI_TIMES"
    echo "== total: $((SECONDS - CI_BEGAN)) s"
}

# Debian packages some tests need (with CI set, their tests fail, not skip, when missing):
# chromium (tests/demo/test_browser.py, headless), redis-server (tests/test_scale.py),
# gcc-aarch64-linux-gnu and qemu-user (the NEON kernels, tests/test_native_kernels.py),
# valgrind (.ci/memcheck and the instruction-count benchmark).
install_system_packages() {
    local as_root="" apt
    [ "$(id -u)" -eq 0 ] || as_root="sudo"
    apt() { $as_root env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
    apt update -qq
    apt install -y -qq chromium redis-server gcc-aarch64-linux-gnu qemu-user valgrind >/dev/null
    chromium --version 2>/dev/null
    redis-server --version
}

# A fresh .venv-ci with the dev extra (builds the extension from source) and
# the peer libraries the integration tests need.
install_python_environment() {
    local python=${PYTHON:-python3}
    echo "   $($python --version), $(nproc) cores"
    rm -rf .venv-ci
    "$python" -m venv .venv-ci
    .venv-ci/bin/python -m pip install -q -e '.[dev]'
    # The peers; the docs site (sphinx, furo, myst-parser) and the benchmark charts
    # (matplotlib) in the same install: each `pip install -e` builds the package again.
    .venv-ci/bin/python -m pip install -q -e '.[peers,docs,bench,uvicorn-suite,peer-suites]'
}

# Enter .venv-ci and require what the installs put there.
use_ci_environment() {
    # shellcheck disable=SC1091
    . .venv-ci/bin/activate
    export WSCODEC_PEERS_REQUIRED_IN="$VIRTUAL_ENV" WSCODEC_REQUIRE_SYSTEM_DEPS=1
}

check_compiled_backend() {
    python -m wscodec info
    python -c 'import sys, wscodec; sys.exit(wscodec.BACKEND != "cython")' \
        || { echo "FAIL: the compiled extension did not build" >&2; return 1; }
}

lint() {
    ruff check wscodec tests benchmarks setup.py docs
    ruff format --check wscodec tests benchmarks setup.py docs
    mypy
}

# The README's test command on one backend; pytest's exit code 5 (no tests
# collected) fails like any other.
test_suite() {
    local backend=$1
    # tests/docs use the site the docs stage built (.ci/docs) instead of building it again.
    if [ -f docs/_build/html/index.html ]; then export WSCODEC_DOCS_HTML=docs/_build/html; fi
    if [ "$backend" = python ]; then
        WSCODEC_NO_EXTENSIONS=1 python -m pytest
    else
        WSCODEC_REQUIRE_EXTENSION=1 python -m pytest
    fi
}

# uvicorn's own WebSocket tests (from its sdist) against wscodec.asgi.uvicorn,
# on both backends: each test that passes with uvicorn's websockets-sansio
# class must pass with ours, or be excused in tests/asgi/uvicorn_excused.txt.
uvicorn_suite() {
    WSCODEC_REQUIRE_EXTENSION=1 python -m tests.asgi.uvicorn_suite
    WSCODEC_NO_EXTENSIONS=1 python -m tests.asgi.uvicorn_suite
}

# Each peer library's own WebSocket tests, without and with wscodec's adapter,
# on both backends (python -m tests.peer_suites; README "Use wscodec inside
# your library"). The sdists are downloaded once into ~/.cache/wscodec-peer-suites.
peer_suites_sdist() {
    python -m tests.peer_suites sdist
}

# The same, plus websockets, whose sdist ships no tests: they come from a
# checkout of github.com/python-websockets/websockets at the installed
# release's tag (or the nearest commit), named by WSCODEC_WEBSOCKETS_CHECKOUT.
peer_suites_all() {
    python -m tests.peer_suites sdist
    if [ -n "${WSCODEC_WEBSOCKETS_CHECKOUT:-}" ]; then
        python -m tests.peer_suites websockets --source "$WSCODEC_WEBSOCKETS_CHECKOUT"
    else
        echo "   websockets: SKIPPED: its sdist ships no tests and WSCODEC_WEBSOCKETS_CHECKOUT"
        echo "   names no checkout (git clone https://github.com/python-websockets/websockets,"
        echo "   check out the installed version's tag, export WSCODEC_WEBSOCKETS_CHECKOUT=PATH)"
    fi
}

benchmark_smoke_runs() {
    echo "   codec benchmarks (a few seconds; peers absent here are listed as such)"
    python -m benchmarks --quick --json >/dev/null
    echo "   server benchmark (~20 s: echo servers over loopback, installed peers only)"
    python -m benchmarks server --quick --json >/dev/null
    echo "   instruction counts (one case under callgrind, twice)"
    WSCODEC_NO_EXTENSIONS=1 python -m benchmarks.instructions --only roundtrip --sizes 256 \
        --contenders "wscodec (python)" --no-peers --json >/dev/null
    echo "   server instructions (one echo server under callgrind, 100 round trips)"
    python -m benchmarks.server_instructions --servers wscodec-asyncio --round-trips 100 \
        --json >/dev/null
    echo "   adapters (~20 s: each library's own echo, 1 x 256 B, with and without its adapter)"
    python -m benchmarks adapters --quick --json --strict >/dev/null
}
