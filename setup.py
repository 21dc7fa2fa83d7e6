"""Build hook: wheels carry the top-level config trees (conf/, experiments/, multirun_sweeps/).

Everything else is declared in setup.cfg. The trees stay the single source at the top level of
the repository; a built wheel gets copies under ``certssb/_data/`` (see certssb/resources.py).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
TREES = ("conf", "experiments", "multirun_sweeps")


class BuildPyWithConfigTrees(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the trees in place
            return
        for name in TREES:
            for src in sorted((ROOT / name).rglob("*.yaml")):
                dst = Path(self.build_lib) / "certssb" / "_data" / src.relative_to(ROOT)
                self.mkpath(str(dst.parent))
                self.copy_file(str(src), str(dst))


setup(cmdclass={"build_py": BuildPyWithConfigTrees})
