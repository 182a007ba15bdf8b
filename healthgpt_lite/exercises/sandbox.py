"""A best-effort fence around a graded notebook's kernel (used by ``grading.py``).

What it does, and what it does not (be honest with yourself about the second list):

* **Process + time limit** (``nbrun.run_notebook``): the notebook runs in its own papermill
  process and kernel, in its own session; at the time limit the whole process tree is killed.
* **A throw-away folder**: the kernel's working directory is a fresh temporary folder holding
  only a copy of the submission, and ``HOME``, ``TMPDIR``, the IPython / Jupyter / matplotlib /
  Hugging Face folders all point inside it, so relative paths, ``~`` and temp files land there.
* **A write fence in the kernel** (:func:`install_guard`, a Python audit hook installed by an
  IPython startup file before the first cell runs): opening a file for writing, deleting,
  renaming, ``chmod`` or ``rmtree`` outside the folder raise ``PermissionError``, and so do
  starting programs (``subprocess``, ``os.system``, ``fork``, ``exec``) and signalling other
  processes. An audit hook cannot be removed once installed.

Not protected: code that bypasses Python's audit events (C extensions and native libraries
writing files themselves, ``ctypes`` calls into libc, ...), reading any file the grader's user
can read, memory exhaustion, and a determined student forging the verdict file. The fence stops
accidents and naive mischief. Real isolation needs an OS boundary: run the grader in a
container or VM, or as a user without write access to anything of value.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

STARTUP_FILE = "00-healthgpt-lite-sandbox.py"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
                "os.link", "os.symlink", "os.rename", "shutil.rmtree", "os.setxattr", "os.removexattr"}
_SPAWN_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn",
                 "os.spawn", "pty.spawn"}
_ALWAYS_WRITABLE = ("/dev/null",)


def sandbox_env(root: Path) -> dict[str, str]:
    """Environment variables that keep a kernel's own files inside ``root`` (and install the fence)."""
    home = root / "home"
    dirs = {"HOME": home, "TMPDIR": root / "tmp", "IPYTHONDIR": home / ".ipython",
            "JUPYTER_RUNTIME_DIR": home / "runtime", "JUPYTER_DATA_DIR": home / "jupyter",
            "MPLCONFIGDIR": home / "mpl", "XDG_CACHE_HOME": home / ".cache", "XDG_CONFIG_HOME": home / ".config",
            "XDG_DATA_HOME": home / ".local", "HF_HOME": home / "hf", "TORCH_HOME": home / "torch"}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    startup = home / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / STARTUP_FILE).write_text(
        "from healthgpt_lite.exercises.sandbox import install_guard as _install_guard\n"
        f"_install_guard({str(root.resolve())!r})\n"
        "del _install_guard\n", encoding="utf-8")
    return {k: str(v) for k, v in dirs.items()} | {"PYTHONDONTWRITEBYTECODE": "1"}


def install_guard(root: str) -> None:
    """Refuse writes outside ``root``, starting programs and signalling others, in this process."""
    allowed = (os.path.realpath(root),)

    def inside(path, dir_fd=None) -> bool:
        if isinstance(path, int):
            return True  # an already open file descriptor: its opening was checked
        path = os.fsdecode(path)
        if dir_fd is not None and dir_fd >= 0 and not os.path.isabs(path):  # -1: no dir_fd
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        real = os.path.realpath(path)
        return real in _ALWAYS_WRITABLE or any(real == a or real.startswith(a + os.sep) for a in allowed)

    def refuse(event: str, what) -> None:
        raise PermissionError(f"sandbox: {event} {what!r} is refused in a graded notebook (it may only "
                              f"write inside its own folder {allowed[0]}, and not start programs)")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
            if writing and path is not None and not inside(path):
                refuse("writing", path)
        elif event in _PATH_EVENTS:
            dir_fd = args[1] if event in ("os.remove", "os.rmdir", "shutil.rmtree") and len(args) > 1 else None
            paths = args[:2] if event in ("os.rename", "os.link", "os.symlink") else args[:1]
            for p in paths:
                if p is not None and not inside(p, dir_fd if isinstance(dir_fd, int) else None):
                    refuse(event, p)
        elif event in _SPAWN_EVENTS:
            refuse(event, args[0] if args else "")
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill") and args and args[0] != os.getpid():
            refuse(event, args[0])

    sys.addaudithook(hook)
