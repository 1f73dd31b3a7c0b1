"""Run the ``dacli`` entry point with one function wrapped to signal this process around its call.

    python tests/signal_child.py MODULE:FUNCTION before|after SIGNAL -- dacli-arguments...

The tests use it to land a signal at an exact moment of a real ``dacli`` process: ``before``
(e.g. while the inputs are read, before anything is compiled) or ``after`` (e.g. once the run
function returned: the output file is written, the process has not yet exited). The wrapped
function must be looked up at call time by its caller (the commands import their run function
inside the command), so patching the module attribute, once dacli imported it, is enough.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import signal
import sys


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patch a module right after dacli imports it: importing it here, first, would change the
    process (e.g. equinox imported before dacli sets EQX_ON_ERROR)."""

    def __init__(self, name: str, patch):
        self.name, self.patch = name, patch

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        execute = spec.loader.exec_module

        def exec_then_patch(module):
            execute(module)
            self.patch(module)

        spec.loader.exec_module = exec_then_patch
        return spec


def main() -> None:
    target, when, name, separator, *arguments = sys.argv[1:]
    assert separator == "--" and when in ("before", "after"), sys.argv
    module_name, attribute = target.split(":")
    number = getattr(signal.Signals, name)

    def patch(module):
        wrapped = getattr(module, attribute)

        def signalled(*args, **kwargs):
            if when == "before":
                os.kill(os.getpid(), number)
            result = wrapped(*args, **kwargs)
            if when == "after":
                os.kill(os.getpid(), number)
            return result

        setattr(module, attribute, signalled)

    sys.meta_path.insert(0, _PatchOnImport(module_name, patch))
    sys.argv = ["dacli", *arguments]
    from dacli.__main__ import main as dacli_main

    dacli_main()


if __name__ == "__main__":
    main()
