#!/usr/bin/env bash
# Prove that a change kept the output byte for byte: generate the default fleet, the test systems
# and a 100-service benchmark system at REVISION (checked out in a temporary git worktree) and at
# the working tree, then compare the two trees. Usage: bash scripts/same-output.sh REVISION
set -euo pipefail
cd "$(dirname "$0")/.."
revision=${1:?usage: same-output.sh REVISION}
scratch=$(mktemp -d)
trap 'git worktree remove --force "$scratch/before-tree" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
git worktree add --quiet --detach "$scratch/before-tree" "$revision"
python3 -c "
import sys, yaml; sys.path.insert(0, '.')
from bench.generate import synthetic_system
open('$scratch/bench100.yaml', 'w').write(yaml.safe_dump(synthetic_system(100)))"
inventories=(inventory tests/fixtures/inventory/shop.yaml tests/rules/fixtures/skiff.yaml
             tests/rules/fixtures/shipyard.yaml "$scratch/bench100.yaml")
generate() {  # generate TREE OUT: every inventory, with the code of TREE
    local tree=$1 out=$2
    for inventory in "${inventories[@]}"; do
        local source=$inventory
        [[ $inventory == /* ]] || source=$PWD/$inventory
        (cd "$tree" && PYTHONPATH="$tree/src" python3 generate.py --inventory "$source" \
            --out "$out/$(basename "$inventory" .yaml)" >/dev/null)
    done
}
generate "$scratch/before-tree" "$scratch/before"
generate "$PWD" "$scratch/after"
diff -r "$scratch/before" "$scratch/after" && echo "identical: $(find "$scratch/after" -type f | wc -l) files, $revision and the working tree"
