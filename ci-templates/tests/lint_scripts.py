"""Run shellcheck on every shell script of the include files.

The components reuse the include files' hidden jobs, so this covers all the
shell code of the project. Usage: python tests/lint_scripts.py include/*.yml
"""

import pathlib
import subprocess
import sys
import tempfile

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads GitLab's !reference tags as plain lists."""


_Loader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))


def _scripts(job):
    for key in ("before_script", "script", "after_script"):
        items = job.get(key) or []
        for index, item in enumerate(items if isinstance(items, list) else [items]):
            if isinstance(item, str):
                yield f"{key}.{index}", item


def main(paths):
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            text = pathlib.Path(path).read_text(encoding="utf-8")
            config = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
            for job_name, job in (config or {}).items():
                if not isinstance(job, dict):
                    continue
                for where, text in _scripts(job):
                    target = pathlib.Path(tmp) / f"{pathlib.Path(path).stem}{job_name}.{where}.sh"
                    target.write_text(text, encoding="utf-8")
                    files.append(str(target))
        if not files:
            print("no scripts found", file=sys.stderr)
            return 1
        print(f"shellcheck: {len(files)} scripts from {len(paths)} files")
        return subprocess.call(["shellcheck", "--shell=sh", "--severity=style", *files])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
