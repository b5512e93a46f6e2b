#!/usr/bin/env python3
"""The layering of the library, held: every file of src/ and include/grpo/ sits in a folder of
src/LAYERS, and includes files of its own layer or a lower one only (an include that goes up a layer
is an error naming both files and layers). README.md's "Layout" must show src/LAYERS' table.

    scripts/check_layers.py [ROOT]
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
table = [l for l in (root / "src/LAYERS").read_text().splitlines() if l.strip() and not l.startswith("#")]
layer_of = {}
for rank, line in enumerate(table):
    name, folders = line.split()[0], re.split(r"\s{2,}", line.strip())[1].split()
    for f in folders:
        layer_of[f] = (rank, name)

errors = []


def folder_of(path):
    rel = path.relative_to(root)
    parts = rel.parts[2:] if rel.parts[:2] == ("include", "grpo") else rel.parts[1:]
    return parts[0] if len(parts) > 1 else None


include = re.compile(r'^\s*#\s*include\s+"grpo/([^"/]+)/[^"]+"', re.M)
for path in sorted(list((root / "src").rglob("*.cpp")) + list((root / "src").rglob("*.h")) + list((root / "include/grpo").rglob("*.h"))):
    folder = folder_of(path)
    if folder not in layer_of:
        errors.append(f"{path.relative_to(root)}: not in a folder of src/LAYERS")
        continue
    rank, name = layer_of[folder]
    for m in include.finditer(path.read_text(errors="replace")):
        target = m.group(1)
        if target not in layer_of:
            errors.append(f"{path.relative_to(root)}: includes grpo/{target}/, a folder src/LAYERS does not name")
        elif layer_of[target][0] > rank:
            line = path.read_text(errors="replace")[: m.start()].count("\n") + 1
            header = m.group(0).split('"')[1]
            errors.append(f"{path.relative_to(root)}:{line}: includes {header} of layer "
                          f"'{layer_of[target][1]}', above its own layer '{name}'")

readme = (root / "README.md").read_text()
if "\n".join(table) not in readme:
    errors.append("README.md: the Layout section does not show src/LAYERS' table (copy its lines unchanged)")

for e in errors:
    print("check_layers: " + e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"check_layers: {len(layer_of)} folders in {len(table)} layers, no include goes up a layer")
