#!/usr/bin/env bash
# Build the agent's wheelhouse on the controller (the agent role copies it to the droplet and installs it
# there with `pip install --no-index --find-links`, so the droplet never needs a package index).
#
#   scripts/build_wheelhouse.sh [OUT_DIR]        # default: build/wheelhouse
#
# OUT_DIR gets:
#   catalyst-<version>-py3-none-any.whl   the project (`pip wheel --no-deps .`)
#   <dep>-*.whl                           every runtime dependency, and the `report` extra's when
#                                         pyproject.toml declares one, pinned by requirements/constraints.txt
#   requirements.txt                      name==version of every wheel here (what the role installs)
#   SHA256SUMS                            sha256sum of every file above, sorted: the role's "content hash"
#                                         (the droplet reinstalls only when this file changes)
#
# The wheels are built by the controller's Python, which must be the droplet's Python minor version (Debian 12:
# 3.11; override the check with CATALYST_TARGET_PYTHON=3.X) on the same architecture. The project wheel is
# reproducible (SOURCE_DATE_EPOCH), so rebuilding unchanged sources gives the same SHA256SUMS and no reinstall.
# Built into a temp dir beside OUT_DIR and swapped in only when complete.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/build/wheelhouse}
case $out in /*) ;; *) out=$PWD/$out ;; esac
python=${PYTHON:-$root/.venv/bin/python}
target=${CATALYST_TARGET_PYTHON:-3.11}
constraints=$root/requirements/constraints.txt

[ -x "$python" ] || { echo "build_wheelhouse: no Python at $python (set PYTHON=...)" >&2; exit 2; }
have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$have" != "$target" ]; then
    echo "build_wheelhouse: $python is Python $have but the droplet runs $target (set PYTHON or CATALYST_TARGET_PYTHON)" >&2
    exit 2
fi

# Runtime requirements: [project].dependencies plus the `report` extra when there is one.
mapfile -t deps < <("$python" - "$root/pyproject.toml" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for req in project.get("dependencies", []) + project.get("optional-dependencies", {}).get("report", []):
    print(req)
EOF
)

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$(dirname "$out")/.wheelhouse.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}  # 1980-01-01: zip's epoch; same bytes every build
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The project itself; a scratch copy so the build leaves no build/ or *.egg-info in the checkout.
src=$tmp/.src
mkdir -p "$src"
cp -a "$root/pyproject.toml" "$root/README.md" "$src/"
cp -a "$root/agent" "$src/agent"
find "$src/agent" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$tmp" "$src"
rm -rf "$src"
# Its runtime dependencies, every transitive one pinned by the constraints file.
"$python" -m pip wheel --quiet --constraint "$constraints" --wheel-dir "$tmp" "${deps[@]}"

cd "$tmp"
shopt -s nullglob
wheels=(*.whl)
[ ${#wheels[@]} -gt 0 ] || { echo "build_wheelhouse: no wheels built" >&2; exit 1; }
ls catalyst-*.whl >/dev/null 2>&1 || { echo "build_wheelhouse: the project wheel is missing" >&2; exit 1; }
# name==version from each wheel's file name (PEP 427: {name}-{version}-...)
for w in "${wheels[@]}"; do
    IFS=- read -r name version _ <<<"$w"
    echo "$name==$version"
done | LC_ALL=C sort >requirements.txt
LC_ALL=C sha256sum -- requirements.txt *.whl | LC_ALL=C sort -k2 >SHA256SUMS
chmod 0644 -- *.whl requirements.txt SHA256SUMS
chmod 0755 "$tmp"
cd "$root"

trap - EXIT
rm -rf "$out.old"
[ -e "$out" ] && mv "$out" "$out.old"
mv "$tmp" "$out"
rm -rf "$out.old"
echo "wheelhouse: $out ($(wc -l <"$out/requirements.txt") wheels, $(du -sh "$out" | cut -f1))"
