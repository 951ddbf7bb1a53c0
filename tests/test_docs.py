"""The documentation generated from the code is up to date."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_block_reference_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_blocks.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_block_reference_lists_every_block():
    from nodenet.engine import block_types

    text = (ROOT / "docs" / "blocks.md").read_text()
    missing = [name for name in block_types() if f"### {name}\n" not in text]
    assert not missing
