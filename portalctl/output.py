"""How portalctl prints: exactly one JSON document with --json, readable lines otherwise."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit(obj: Any, as_json: bool, title: str | None = None) -> None:
    if as_json:
        json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return
    if title:
        print(title)
    _human(obj, indent=0)


def _human(obj: Any, indent: int) -> None:
    pad = "  " * indent
    if isinstance(obj, list):
        if not obj:
            print(f"{pad}(none)")
        for item in obj:
            if isinstance(item, dict | list):
                _human(item, indent)
                print()
            else:
                print(f"{pad}- {item}")
        return
    if isinstance(obj, dict):
        width = max((len(str(key)) for key in obj), default=0)
        for key, value in obj.items():
            if isinstance(value, dict | list) and value:
                print(f"{pad}{key}:")
                _human(value, indent + 1)
            else:
                print(f"{pad}{str(key).ljust(width)}  {'' if value is None else value}")
        return
    print(f"{pad}{obj}")
