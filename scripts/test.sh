#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/bootstrap.sh), runs
# ruff and pytest (the demo and the graphics tests with their i386 and
# aarch64 parts among them), then libcapsule's runtime tests again under
# ASan+UBSan and under valgrind memcheck, then the runtime tests and the
# end-to-end tests for i386 (CAPSULE_TEST_ARCH=i386: built gcc -m32; also
# under ASan+UBSan) and aarch64 (CAPSULE_TEST_ARCH=aarch64: built by clang,
# run under qemu-aarch64).
#
#   bash scripts/test.sh                  # everything
#   bash scripts/test.sh --coverage       # ... measuring C (gcov) and Python coverage
#                                         #     in the main run, reports at the end
#   bash scripts/test.sh --glibc-matrix   # ... and the runtime tests and the demo under
#                                         # Debian 13's glibc 2.41 and unstable's 2.43
#   bash scripts/test.sh --glibc-matrix-only   # only those (about 2 minutes)
#   bash scripts/test.sh --arches-only    # only the i386 and aarch64 phases (about 6 minutes)
#   bash scripts/test.sh -k e2e           # extra arguments go to the main pytest run
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase's header says when it started (seconds since the script did),
# so a CI log tells how long each part took.
started=$(date +%s)
phase() {
    echo "== [$(( $(date +%s) - started ))s] $*"
}

coverage=0
matrix=0
main=1
arches=1
while [ $# -gt 0 ]; do
    case "$1" in
        --coverage) coverage=1 ;;
        --glibc-matrix) matrix=1 ;;
        --glibc-matrix-only) matrix=1; main=0; arches=0 ;;
        --arches-only) main=0 ;;
        *) break ;;
    esac
    shift
done

bash scripts/bootstrap.sh
py=.venv/bin/python
.venv/bin/ruff check capsule_module tests bench fuzz examples scripts

if [ "$main" = 1 ]; then
    # With --coverage the main run itself is measured: libcapsule built with
    # gcov counters for the runtime tests (CAPSULE_TEST_SANITIZE=coverage,
    # counters left under the run's basetemp) and coverage.py started in
    # every Python process (scripts/pycoverage.sh). Nothing runs a second
    # time for coverage.
    main_env=()
    main_args=()
    if [ "$coverage" = 1 ]; then
        source scripts/pycoverage.sh
        pycov_out=$PWD/build-coverage/python
        pycov_prepare "$pycov_out"
        gcov_tmp=$(mktemp -d /tmp/capsule-cov-XXXXXX)
        trap 'rm -rf "$gcov_tmp"' EXIT  # (the memcheck run's trap below replaces it)
        main_env=("${PYCOV_ENV[@]}" CAPSULE_TEST_SANITIZE=coverage)
        main_args=("--basetemp=$gcov_tmp/t")
    fi

    # The demo's, the graphics tests' and the Meson cross tests' parts for
    # the other architectures (32-bit i386; aarch64, run under qemu-aarch64)
    # use Debian's packages of that architecture, unpacked with a private
    # apt state (nothing installed, no dpkg architecture added; kept in
    # build-arch/). Fetched here, so that an unreachable archive stops the
    # run instead of leaving those tests skipped. Whether their shims and
    # programs can be built and run here, arch_tree.py --why-not says.
    for arch in i386 aarch64; do
        phase "$arch: Debian's packages of $arch for the demo and graphics tests (scripts/arch_tree.py)"
        $py scripts/arch_tree.py "$arch" zlib1g libexpat1 >/dev/null
        $py scripts/arch_tree.py "$arch" zlib1g libexpat1 zlib1g-dev libexpat1-dev >/dev/null
        $py examples/graphics/graphics_trees.py fetch --arch "$arch"
        blocker=$($py scripts/arch_tree.py "$arch" --why-not)
        echo "   $arch shims and programs: ${blocker:-built and run}"
    done

    # The memcheck run starts beside the main run: valgrind keeps one core
    # busy, and the main run uses about one of the two (measured: 597 s of
    # CPU in 626 s). Its own basetemp and log; its output follows the
    # ASan run's, and a failure fails the script there.
    memcheck_tmp=$(mktemp -d /tmp/capsule-memcheck-XXXXXX)
    memcheck_log=$memcheck_tmp/log
    phase "libcapsule runtime tests under valgrind memcheck: started beside the main run"
    CAPSULE_TEST_SANITIZE=valgrind $py -m pytest -q -ra tests/runtime -k "not fuzz" \
        --basetemp="$memcheck_tmp/t" >"$memcheck_log" 2>&1 &
    memcheck_pid=$!
    # A main run that fails stops the script: the memcheck run goes with it.
    trap '[ -z "$memcheck_pid" ] || kill "$memcheck_pid" 2>/dev/null || true
          rm -rf "${gcov_tmp:-}" "$memcheck_tmp"' EXIT

    phase "pytest: the whole suite"
    env ${main_env[@]+"${main_env[@]}"} $py -m pytest -ra ${main_args[@]+"${main_args[@]}"} "$@" tests

    phase "libcapsule runtime tests under ASan+UBSan"
    CAPSULE_TEST_SANITIZE=asan $py -m pytest -q -ra tests/runtime -k "not fuzz"
    phase "libcapsule runtime tests under valgrind memcheck (started beside the main run)"
    memcheck_rc=0
    wait "$memcheck_pid" || memcheck_rc=$?
    memcheck_pid=  # reaped: the exit trap must not signal whatever reuses its id
    cat "$memcheck_log"
    if [ "$memcheck_rc" != 0 ]; then
        echo "memcheck run failed ($memcheck_rc)" >&2
        exit 1
    fi
fi

if [ "$arches" = 1 ]; then
    # The same runtime and end-to-end suites for the other architectures
    # (tests/testarch.py): libcapsule, every library, shim and program built
    # for it, prefix trees in its multiarch directory, shims rendered for it.
    # i386 is built gcc -m32, its libc, libstdc++ and sanitizer runtimes from
    # gcc-multilib (/usr/lib32); aarch64 is built by clang for the aarch64
    # target against the cross libc and runs under qemu-aarch64. zlib, expat,
    # libX11 and the allocators come from Debian's packages of the
    # architecture unpacked with a private apt state (scripts/arch_tree.py:
    # nothing installed, no dpkg architecture added), fetched here so that an
    # unreachable archive stops the run instead of leaving tests skipped.
    # ASan runs for i386 only (clang's aarch64 sanitizer runtimes are not
    # packaged in Debian 12); no valgrind run for either: memcheck needs the
    # architecture's libc6-dbg, and does not run under qemu.
    for arch in i386 aarch64; do
        if [ "$($py -c "from capsule_module.arch import get; print(int(get('$arch').shim_runtime))")" != 1 ]; then
            phase "$arch: skipped: capsule_module/arch.py says its shim runtime (libcapsule" \
                 "and the shim template for $arch) is not available yet (shim_runtime)"
            continue
        fi
        packages=$(CAPSULE_TEST_ARCH=$arch $py -c 'import sys; sys.path.insert(0, "tests")
import testarch; print(" ".join(testarch.CROSS_PACKAGES))')
        phase "$arch: Debian's $arch packages for the tests ($packages)"
        # (word splitting intended: one argument per package)
        # shellcheck disable=SC2086
        $py scripts/arch_tree.py "$arch" $packages >/dev/null
        phase "$arch: libcapsule runtime tests"
        CAPSULE_TEST_ARCH=$arch $py -m pytest -q -ra tests/runtime -k "not fuzz"
        if [ "$arch" = i386 ]; then
            phase "$arch: libcapsule runtime tests under ASan+UBSan"
            CAPSULE_TEST_ARCH=$arch CAPSULE_TEST_SANITIZE=asan $py -m pytest -q -ra tests/runtime \
                -k "not fuzz"
        fi
        phase "$arch: end-to-end tests"
        CAPSULE_TEST_ARCH=$arch $py -m pytest -q -ra tests/e2e
    done
fi

if [ "$matrix" = 1 ]; then
    # The PLT-rewrite tests link with -z mark-plt, which Debian 12's ld
    # lacks: Debian 13's binutils, fetched like the glibc trees (and run
    # through trixie's glibc). Fetched here, so a failure stops the matrix
    # instead of leaving those tests skipped.
    binutils=$(python3 scripts/glibc_tree.py trixie --binutils --print version)
    phase "glibc matrix: linking -z mark-plt programs with trixie's binutils $binutils"
    # Every release runs even when one fails; the script fails at the end.
    failed=()
    for release in trixie sid; do
        phase "glibc matrix: runtime tests and the demo under $release's glibc" \
             "($(python3 scripts/glibc_tree.py "$release" --print version))"
        CAPSULE_TEST_GLIBC=$release $py -m pytest -q -ra tests/runtime tests/test_demo.py \
            -k "not fuzz" || failed+=("$release")
    done
    if [ "${#failed[@]}" -gt 0 ]; then
        echo "glibc matrix: failed under ${failed[*]}" >&2
        exit 1
    fi
fi

if [ "$coverage" = 1 ] && [ "$main" = 1 ]; then
    phase "coverage: libcapsule (gcov, from the main run)"
    $py tests/runtime/coverage.py --from "$gcov_tmp/t"
    phase "coverage: the Python package (coverage.py, from the main run)"
    pycov_report "$pycov_out"
fi
phase "done"
