#!/usr/bin/env bash
# Fails when a model folder includes another model folder (only models/ and itself allowed).
set -euo pipefail
root=$1
bad=0
for dir in memory fabric accelerators workloads; do
  [ -d "$root/$dir" ] || continue
  while IFS= read -r line; do
    inc=$(sed -E 's/.*#include "([^/]+)\/.*/\1/' <<<"${line#*:}")
    if [ "$inc" != "models" ] && [ "$inc" != "$dir" ] && [ "$inc" != "configs" ]; then
      echo "layering violation: $line"
      bad=1
    fi
  done < <(grep -rn '#include "[a-z_]*/' "$root/$dir" --include='*.h' --include='*.cc' || true)
done
exit $bad
