"""The emulator is the lambdaemu package behind lambda_emulator.py: every way it was used as
one file still works (`import lambda_emulator`, `from lambda_emulator import ...`, its
command line), and the parts compose into one Emulator without a method hidden by another.

    python3 -m unittest discover -s tests/emulator -p 'test_*.py'
"""
import importlib
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lambda_emulator  # noqa: E402
import lambdaemu  # noqa: E402


class PackageTest(unittest.TestCase):
    def parts(self):
        return [importlib.import_module("lambdaemu." + p) for p in lambdaemu.PARTS]

    def test_every_name_of_every_part_is_reachable_as_before(self):
        for mod in self.parts():
            for name in mod.__all__:
                with self.subTest(part=mod.__name__, name=name):
                    self.assertIs(getattr(lambda_emulator, name), getattr(mod, name))

    def test_the_parts_list_is_the_package(self):
        files = {f[:-3] for f in os.listdir(os.path.join(HERE, "lambdaemu"))
                 if f.endswith(".py") and f != "__init__.py"}
        self.assertEqual(files, set(lambdaemu.PARTS))

    def test_star_import_gives_the_public_api(self):
        ns = {}
        exec("from lambda_emulator import *", ns)
        self.assertEqual(sorted(k for k in ns if not k.startswith("__")), sorted(lambda_emulator.__all__))
        self.assertIs(ns["Emulator"], lambdaemu.Emulator)
        for name in ("Emulator", "InitResult", "InvokeResult", "ShutdownResult", "validate_subscription"):
            self.assertIn(name, lambda_emulator.__all__)

    def test_no_method_is_defined_in_two_parts(self):
        """A name defined twice would be hidden by the mixin order, silently."""
        owners = {}
        for cls in lambdaemu.Emulator.__mro__[:-1]:
            for name, value in vars(cls).items():
                if callable(value) and not (name.startswith("__") and name.endswith("__")):
                    owners.setdefault(name, []).append(cls.__name__)
        twice = {n: o for n, o in owners.items() if len(o) > 1}
        self.assertEqual(twice, {})
        self.assertGreater(len(owners), 80)

    def test_the_mixins_hold_no_state_of_their_own(self):
        for cls in lambdaemu.Emulator.__mro__[1:-1]:
            own = [n for n, v in vars(cls).items() if not callable(v) and not n.startswith("__")]
            self.assertEqual(own, [], cls.__name__)

    def test_command_line_still_runs_from_the_file(self):
        for cwd in (HERE, os.path.dirname(os.path.dirname(HERE)), "/"):
            p = subprocess.run([sys.executable, os.path.join(HERE, "lambda_emulator.py"), "run", "--help"],
                               capture_output=True, text=True, timeout=60, cwd=cwd)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("usage: lambda_emulator.py run", p.stdout)
            p = subprocess.run([sys.executable, os.path.join(HERE, "lambda_emulator.py"), "nonsense"],
                               capture_output=True, text=True, timeout=60, cwd=cwd)
            self.assertEqual(p.returncode, 2, p.stderr)

    def test_importable_by_path_without_the_directory_on_sys_path(self):
        code = ("import importlib.util, sys; "
                f"s = importlib.util.spec_from_file_location('le', {os.path.join(HERE, 'lambda_emulator.py')!r}); "
                "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
                "print(m.Emulator.__name__, m.SHUTDOWN_REASONS[0])")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["Emulator", "spindown"])


if __name__ == "__main__":
    unittest.main()
