#!/usr/bin/env bash
# Builds and runs libcapsule's libFuzzer harnesses (clang, ASan, UBSan).
#
#   fuzz/run.sh build [OUT]                   build every harness into OUT
#   fuzz/run.sh run NAME [OUT] [libFuzzer options...]
#                                             fuzz NAME (ldcache, elffile, resolve)
#                                             from its seeds in fuzz/corpus/NAME;
#                                             new inputs go to OUT/corpus-NAME
#
# e.g. fuzz/run.sh run ldcache build-fuzz -runs=1000000
# Needs: clang and its runtime (Debian 12: apt-get install clang libclang-rt-14-dev).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lib=$here/../libcapsule
harnesses=(ldcache elffile resolve)
CC=${CC:-clang}

build() {
    local out=$1
    mkdir -p "$out"
    for name in "${harnesses[@]}"; do
        "$CC" -std=c11 -g -O1 -Wall -Wextra -Werror \
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -DCAPSULE_FUZZING -I"$lib" -I"$lib/arch/x86_64" -I"$here" \
            "$here/fuzz_$name.c" "$lib"/{error,debug,mapfile,ldcache,elffile,resolve,plancache,forklock}.c \
            -o "$out/fuzz_$name" -lpthread
    done
}

case "${1:-}" in
build)
    build "${2:-build-fuzz}"
    ;;
run)
    name=${2:?fuzz/run.sh run NAME [OUT] [options]}
    out=${3:-build-fuzz}
    shift $(($# < 3 ? $# : 3))
    [ -x "$out/fuzz_$name" ] || build "$out"
    mkdir -p "$out/corpus-$name"
    # New inputs go to the first directory; the seeds in the tree stay as they are.
    exec "$out/fuzz_$name" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" \
        "$out/corpus-$name" "$here/corpus/$name"
    ;;
*)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
