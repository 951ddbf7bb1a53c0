"""Regenerate docs/blocks.md, the block reference, from the catalog.

    python docs/gen_blocks.py          # rewrite docs/blocks.md
    python docs/gen_blocks.py --check  # exit 1 if docs/blocks.md is stale

tests/test_docs.py fails when the file is stale.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

from nodenet.engine import CATEGORIES, block_class, block_types, fmt_shape

OUT = Path(__file__).with_name("blocks.md")


def _inputs(cls) -> str:
    if cls.N_INPUTS is None:
        return f"{cls.MIN_INPUTS} or more (ports 0, 1, 2, ... in order)"
    return str(cls.N_INPUTS)


def _default(value) -> str:
    return f"`{json.dumps(value)}`"


def _example(cls) -> str:
    example = cls.EXAMPLES[0]
    layer = cls(example.params)
    shapes = list(example.input_shapes)
    if cls.N_INPUTS == 0:
        return f"`{fmt_shape(layer.infer_shape([]))}`"
    out = layer.infer_shape(shapes)
    ins = " + ".join(fmt_shape(s) for s in shapes)
    params = json.dumps(example.params) if example.params else "defaults"
    trainable, frozen = layer.count_params(shapes)
    return f"with {params}: {ins} → {fmt_shape(out)}, {trainable + frozen:,} parameters"


def render() -> str:
    lines = [
        "# Block reference",
        "",
        "Generated from the catalog by `python docs/gen_blocks.py`; do not edit by hand.",
        "Names, defaults, shapes and parameter counts are Keras 3's. Shapes show the batch",
        "dimension as `None`.",
        "",
    ]
    for category in CATEGORIES:
        names = [n for n in block_types() if block_class(n).CATEGORY == category]
        if not names:
            continue
        lines += [f"## {category}", ""]
        for name in names:
            cls = block_class(name)
            doc = inspect.cleandoc(cls.__doc__ or cls.doc())
            lines += [
                f"### {name}",
                "",
                doc,
                "",
                f"Inputs: {_inputs(cls)}. Example {_example(cls)}.",
                "",
            ]
            if cls.PARAMS:
                lines += ["| parameter | default | accepts | meaning |", "|---|---|---|---|"]
                for p in cls.PARAMS:
                    accepts = p.describe().replace("|", "\\|")
                    lines.append(f"| `{p.name}` | {_default(p.default)} | {accepts} | {p.help} |")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run python docs/gen_blocks.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
