#!/usr/bin/env bash
# The dependency rule (docs/architecture.md): core <- config <- {fabric, memory, workloads,
# accelerators}; accelerators may include fabric; accelerators/policies/ include only core and
# never SystemC; nothing outside models/run/, tests/ and bench/ includes models/run/. The
# generated schema (configs/) may be included everywhere but in accelerators/policies/. Quoted
# and angle-bracket includes of project headers count. Prints every violation; exit 1 if any.
set -euo pipefail
root=$1
bad=0

# allowed <folder>: the include prefixes (first path components) a folder's files may use.
allowed() {
  case $1 in
    models/core) echo "models/core configs" ;;
    models/config) echo "models/core models/config configs" ;;
    fabric) echo "models/core models/config fabric configs" ;;
    memory) echo "models/core models/config memory configs" ;;
    workloads) echo "models/core models/config workloads configs" ;;
    accelerators/policies) echo "models/core accelerators/policies" ;;
    accelerators) echo "models/core models/config fabric accelerators configs" ;;
  esac
}

check_folder() {
  local folder=$1 prefixes
  prefixes=$(allowed "$folder")
  while IFS= read -r line; do
    local file=${line%%:*} inc ok=0
    # accelerators/policies/ is checked as its own folder.
    if [ "$folder" = accelerators ] && [[ $file == */accelerators/policies/* ]]; then continue; fi
    inc=$(sed -E 's/^[^#]*#[[:space:]]*include(_next)?[[:space:]]*[<"]([^">]+)[">].*/\2/' <<<"${line#*:}")
    # System and library headers (<vector>, <systemc>, <gtest/...>) are not the project's.
    case $inc in
      models/* | memory/* | fabric/* | accelerators/* | workloads/* | configs/* | tests/* | bench/*) ;;
      *) continue ;;
    esac
    for p in $prefixes; do
      if [[ $inc == "$p"/* ]]; then ok=1; fi
    done
    if [ $ok -eq 0 ]; then
      echo "layering violation ($folder may include only: $prefixes): ${line#"$root"/}"
      bad=1
    fi
  done < <(grep -rnE \
             '^[[:space:]]*#[[:space:]]*include(_next)?[[:space:]]*[<"](models|memory|fabric|accelerators|workloads|configs|tests|bench)/' \
             "$root/$folder" \
             --include='*.h' --include='*.cc' --include='*.hpp' --include='*.inl' \
             --include='*.ipp' || true)
}

for folder in models/core models/config fabric memory workloads accelerators/policies accelerators; do
  [ -d "$root/$folder" ] && check_folder "$folder"
done

# C++ outside the folders above, models/run/, tests/ and bench/ has no rule yet: give it one.
while IFS= read -r file; do
  rel=${file#"$root"/}
  case $rel in
    models/core/* | models/config/* | models/run/* | fabric/* | memory/* | workloads/*) ;;
    accelerators/* | tests/* | bench/* | build/* | build-*/*) ;;
    *)
      echo "layering: $rel is in a folder without a rule (add it to tests/check_layering.sh)"
      bad=1
      ;;
  esac
done < <(find "$root" -path "$root/.git" -prune -o -path "$root/build*" -prune -o \
  \( -name '*.h' -o -name '*.cc' -o -name '*.hpp' -o -name '*.inl' -o -name '*.ipp' \) -print)

# Plain C++ policies: no SystemC, directly or through a core header that pulls it in (the
# closure of core headers including <systemc> or <tlm>, computed here).
sc_headers=$(grep -rlE '#include <(systemc|tlm)' "$root/models/core" --include='*.h' || true)
changed=1
while [ $changed -eq 1 ]; do
  changed=0
  for h in "$root"/models/core/*.h; do
    grep -qxF "$h" <<<"$sc_headers" && continue
    for s in $sc_headers; do
      if grep -q "#include \"models/core/$(basename "$s")\"" "$h"; then
        sc_headers=$(printf '%s\n%s' "$sc_headers" "$h")
        changed=1
        break
      fi
    done
  done
done
while IFS= read -r line; do
  inc=$(sed -E 's/.*#include [<"]([^">]+)[">].*/\1/' <<<"${line#*:}")
  if [[ $inc == systemc* || $inc == tlm* ]] || grep -qxF "$root/$inc" <<<"$sc_headers"; then
    echo "layering violation (accelerators/policies/ stays plain C++, no SystemC): ${line#"$root"/}"
    bad=1
  fi
done < <(grep -rn '#include ' "$root/accelerators/policies" --include='*.h' --include='*.cc' || true)
exit $bad
