"""A warm ``python`` for shell scripts under test: every ``python SCRIPT.py ARGS`` runs in a
process forked from this test process, which has already imported the heavy packages.

A fresh interpreter spends 10-40 s (idle to loaded 2-core machine) importing torch, DeepSpeed,
MMDetection and the package before a CLI does anything; a guide of nine commands would spend
most of its test there. ``WarmPython`` forks a server from the test process; for each command
the stand-in ``python`` passes its argv, working directory, environment and standard streams
(file descriptors) over a Unix socket, the server forks again, the child runs the script as
``__main__`` with those (fresh ``sys.std*``, the root logger's handlers removed, the default
warning filters), and the stand-in exits with the child's status. Anything but
``python SCRIPT.py ...`` (``-c``, ``-m``, no script) runs the real interpreter.

    with WarmPython(tmp_path, preload=['mmdet.models']) as bin_dir:
        subprocess.run(['bash', '-c', SCRIPT], env=dict(os.environ, PATH=f'{bin_dir}:...'))
"""
import importlib
import json
import logging
import os
import os.path as osp
import runpy
import signal
import socket
import sys
import traceback
import warnings
from typing import Sequence

# the stand-in `python`: standard library only, started without site-packages (-S)
_STAND_IN = '''#!{python} -S
import json, os, socket, sys
args = sys.argv[1:]
if not args or not args[0].endswith('.py'):
    os.execv({python!r}, [{python!r}] + args)
sock = socket.socket(socket.AF_UNIX)
sock.connect({address!r})
request = json.dumps(dict(argv=args, cwd=os.getcwd(), env=dict(os.environ))).encode()
socket.send_fds(sock, [request], [0, 1, 2])
sock.shutdown(socket.SHUT_WR)
sys.exit(int(sock.makefile('rb').read() or 1))
'''


def serve(server: socket.socket) -> None:
    """Run each request of ``server`` in a forked child, one at a time."""
    while True:
        conn, _ = server.accept()
        message, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        with conn.makefile('rb') as rest:
            request = json.loads(message + rest.read())
        pid = os.fork()
        if pid == 0:
            server.close()
            _run(request, fds)
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        conn.sendall(str(os.waitstatus_to_exitcode(status) & 0xff).encode())
        conn.close()


def _run(request: dict, fds: Sequence[int]) -> None:
    """In the forked child: become ``python SCRIPT ARGS`` and exit with its status."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = sys.__stdin__ = open(0, 'r', closefd=False)
    sys.stdout = sys.__stdout__ = open(1, 'w', buffering=1, closefd=False)
    sys.stderr = sys.__stderr__ = open(2, 'w', buffering=1, closefd=False)
    for handler in logging.root.handlers[:]:  # the test runner's (log capture)
        logging.root.removeHandler(handler)
    logging.root.setLevel(logging.WARNING)
    warnings.resetwarnings()
    warnings.simplefilter('default')
    warnings.simplefilter('ignore', DeprecationWarning)
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    script, *args = request['argv']
    sys.argv = [script, *args]
    sys.path[0] = osp.dirname(osp.abspath(script))
    code = 0
    try:
        runpy.run_path(script, run_name='__main__')
    except SystemExit as stop:
        if isinstance(stop.code, int) or stop.code is None:
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: B902 (the script's failure is reported like python does)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class WarmPython:
    """Context manager: a folder with the stand-in ``python``, served by a fork of this process.

    Args:
        folder: where the stand-in and the socket go (socket paths are limited to about 100
            characters; a path under /tmp is used when it would be longer).
        preload: modules the server imports (once) before serving.
    """

    def __init__(self, folder: str, preload: Sequence[str] = ()) -> None:
        self.bin_dir = osp.join(str(folder), 'warm_bin')
        os.makedirs(self.bin_dir, exist_ok=True)
        self.address = osp.join(self.bin_dir, 'socket')
        if len(self.address) > 100:
            self.address = osp.join('/tmp', f'warm_python_{os.getpid()}_{id(self)}.sock')
        self.preload = list(preload)
        self.pid = None

    def __enter__(self) -> str:
        for module in self.preload:
            importlib.import_module(module)
        server = socket.socket(socket.AF_UNIX)
        server.bind(self.address)
        server.listen()
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                serve(server)
            finally:
                os._exit(1)
        server.close()
        stand_in = osp.join(self.bin_dir, 'python')
        with open(stand_in, 'w', encoding='utf-8') as file:
            file.write(_STAND_IN.format(python=sys.executable, address=self.address))
        os.chmod(stand_in, 0o755)
        return self.bin_dir

    def __exit__(self, *exc) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.remove(self.address)
