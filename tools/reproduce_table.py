"""Write docs/reproduce.md from the recipes' reference: sections (``--check``: exit 1 when it is stale).

    python tools/reproduce_table.py            # regenerate
    python tools/reproduce_table.py --check    # CI / tests: is the committed page current?
"""
import argparse
import sys
from pathlib import Path

from videossl.reproduce import build_reproduce_markdown

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reproduce.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/reproduce.md differs from the recipes")
    args = parser.parse_args()
    page = build_reproduce_markdown()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != page:
            print(f"{PAGE} is stale: run python tools/reproduce_table.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
