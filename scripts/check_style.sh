#!/usr/bin/env bash
# The house rules CI holds before it builds anything (seconds):
#   - no function in src/ longer than 80 lines, no file in src/ or include/ longer than 700 (code_size.py)
#   - no include going up a layer of src/LAYERS, every file in a layer's folder (check_layers.py)
#   - every relative link of README.md and docs/ resolves (check_doc_links.py)
#   - every C++ file of src/ include/ tests/ bench/ formatted by .clang-format (clang-format 14,
#     Debian 12's; other majors format some constructs differently, so they are refused here)
# Fix the format with: git ls-files '*.cpp' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/code_size.py src include
python3 scripts/check_layers.py
python3 scripts/check_doc_links.py
fmt="${CLANG_FORMAT:-clang-format}"
if ! command -v "$fmt" >/dev/null; then
  echo "check_style: $fmt not found (apt-get install clang-format, or CLANG_FORMAT=path)" >&2; exit 1
fi
major="$("$fmt" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')"
if [[ "$major" != 14 ]]; then
  echo "check_style: expected clang-format 14 (the version the tree is formatted with), found $major" >&2; exit 1
fi
mapfile -t files < <(git ls-files 'src/*.cpp' 'src/*.h' 'include/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'bench/*.h')
if ! "$fmt" --dry-run --Werror "${files[@]}" 2>/tmp/check_style.$$; then
  grep -E "^[^ ].*: error:" /tmp/check_style.$$ | cut -d: -f1,2 | sort -u | head -20 >&2
  echo "check_style: the files above are not formatted (git ls-files '*.cpp' '*.h' | xargs clang-format -i)" >&2
  rm -f /tmp/check_style.$$; exit 1
fi
rm -f /tmp/check_style.$$
echo "check_style: ${#files[@]} files formatted, sizes within the limits"
