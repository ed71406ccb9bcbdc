"""Check the installed packages against ``requirements/constraints.txt``.

    python tools/misc/check_constraints.py [--constraints FILE] [--require-installed]
                                           [--state FILE]

Exits 1, naming each package, when an installed package violates its constraint, when
``--require-installed`` is given and a constrained package is missing, or when ``--state FILE``
is given and a package recorded there by an earlier call has changed version since (the set-up
calls it after every step, so a step that moves a package an earlier step installed fails at
that step). With ``--state`` the current versions are written back to FILE on success.

Only the standard library and ``packaging`` are imported, so it runs in a half-built venv.
"""
import argparse
import json
import os
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'requirements',
                       'constraints.txt')


def read_constraints(path: str) -> dict:
    """Constraint lines of ``path`` as {canonical name: (Requirement, line number)}."""
    constraints = {}
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            req = Requirement(line)
            constraints[canonicalize_name(req.name)] = (req, lineno)
    return constraints


def installed_versions() -> dict:
    """{canonical name: version} of every distribution visible to this interpreter."""
    return {canonicalize_name(d.metadata['Name']): d.version for d in metadata.distributions()
            if d.metadata['Name']}


def violations(constraints: dict, installed: dict, path: str, require_installed: bool) -> list:
    """One message per installed package outside its constraint (and per missing one if asked)."""
    problems = []
    for name, (req, lineno) in sorted(constraints.items()):
        version = installed.get(name)
        if version is None:
            if require_installed:
                problems.append(f'{path}:{lineno}: {req} is not installed')
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            problems.append(f'{path}:{lineno}: {name} {version} is installed, the constraint '
                            f'is {req}')
    return problems


def drift(previous: dict, installed: dict) -> list:
    """One message per package whose version changed (or that vanished) since ``previous``."""
    return [f'{name} changed from {old} to {installed.get(name, "(uninstalled)")} since the '
            f'previous set-up step' for name, old in sorted(previous.items())
            if installed.get(name) != old]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--constraints', default=os.path.normpath(DEFAULT))
    parser.add_argument('--require-installed', action='store_true',
                        help='also fail when a constrained package is not installed')
    parser.add_argument('--state', help='JSON file of the versions seen by the previous call')
    args = parser.parse_args(argv)

    installed = installed_versions()
    problems = violations(read_constraints(args.constraints), installed, args.constraints,
                          args.require_installed)
    if args.state and os.path.exists(args.state):
        with open(args.state, encoding='utf-8') as f:
            problems += drift(json.load(f), installed)
    if problems:
        print('check_constraints: the environment breaks the pins:', file=sys.stderr)
        for problem in problems:
            print(f'  {problem}', file=sys.stderr)
        return 1
    if args.state:
        tmp = f'{args.state}.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(installed, f, indent=0, sort_keys=True)
        os.replace(tmp, args.state)
    return 0


if __name__ == '__main__':
    sys.exit(main())
