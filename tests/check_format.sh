#!/usr/bin/env bash
# Fails when a C++ file differs from clang-format's output (.clang-format at the root).
set -euo pipefail
root=$1
cd "$root"
files=$(git ls-files '*.h' '*.cc' 2>/dev/null || find models memory fabric accelerators workloads tests bench -name '*.h' -o -name '*.cc')
[ -n "$files" ] || exit 0
clang-format --dry-run --Werror $files
