"""Session fixtures of the rehearsal: one miniature layout per dataset, built on first use and shared by every
recipe; one pretraining run per recipe, shared by its evaluation recipes."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from .layouts import (BUILDERS, REALDATA, Layout, derive_kinetics_complete, derive_ssv2_complete,
                      write_image_vit_weights)
from .rehearse import (cpu_overrides, data_root_override, preparation_commands, real_data_recipes, relocate,
                       run_preparation, shrink_overrides, smallest_batch, videossl, weights_files)


class Layouts:
    """``layouts.get("ucf101")`` -> the ``Layout`` under ``base/ucf101``, built once per session."""

    def __init__(self, base: Path):
        self.base = base
        self._built: dict[str, Layout] = {}
        self._prepared: set[str] = set()
        self.seconds: dict[str, float] = {}

    def get(self, name: str) -> Layout:
        if name not in self._built:
            if name == "kinetics400_complete":
                self._built[name] = derive_kinetics_complete(self.get("kinetics400"), self.base / name)
                return self._built[name]
            if name == "ssv2_complete":
                self._built[name] = derive_ssv2_complete(self.get("ssv2"), self.base / name)
                return self._built[name]
            if name == "weights":  # miniature copies of the weights files recipes load
                layout = Layout("weights", self.base / name, generated=["tiny image-ViT checkpoints, DINO layout"])
                for path in {relocate(p, self.base) for r in real_data_recipes() for p in weights_files(r)}:
                    write_image_vit_weights(Path(path))
                    layout.files += 1
                self._built[name] = layout
                return layout
            if name not in BUILDERS:
                pytest.fail(f"no rehearsal layout for dataset folder /data/{name} (a recipe names a dataset that is "
                            f"not one of {sorted(BUILDERS)})")
            start = time.perf_counter()
            self._built[name] = BUILDERS[name](self.base / name)
            self.seconds[name] = time.perf_counter() - start
        return self._built[name]

    def prepare(self, recipe: str) -> None:
        """Run the data-preparation commands the recipe documents (once per recipe)."""
        if recipe not in self._prepared:
            for command in preparation_commands(recipe):
                run_preparation(command, self.base)
            self._prepared.add(recipe)


@pytest.fixture(scope="session")
def layouts(tmp_path_factory) -> Layouts:
    if not REALDATA.is_dir():
        pytest.skip(f"the real annotation files are not at {REALDATA}: the rehearsal layouts are built from them")
    return Layouts(tmp_path_factory.mktemp("rehearsal-data"))


class Runs:
    """``runs.get(recipe)`` -> the run directory of the recipe's shrunk pretraining (run once; a failure is kept
    and reported again to every evaluation of that recipe)."""

    def __init__(self, base: Path, layouts: Layouts):
        self.base, self.layouts = base, layouts
        self._done: dict[str, Path | str] = {}

    def argv(self, recipe: str) -> list[str]:
        return ["pretrain", recipe, data_root_override(recipe, self.layouts.base),
                *shrink_overrides(recipe, self.layouts.base),
                *cpu_overrides(self.base / recipe, batch=smallest_batch(recipe))]

    def get(self, recipe: str) -> Path:
        if recipe not in self._done:
            argv = self.argv(recipe)
            try:
                result = videossl(argv)
                self._done[recipe] = self.base / recipe if result.code == 0 else result.explain(argv)
            except Exception as error:  # noqa: BLE001 - kept, and raised again below
                self._done[recipe] = f"`videossl {' '.join(argv)}` raised {type(error).__name__}: {error}"
                raise
        done = self._done[recipe]
        if isinstance(done, str):
            pytest.fail(f"pretraining {recipe} failed: {done}")
        return done


@pytest.fixture(scope="session")
def runs(tmp_path_factory, layouts) -> Runs:
    return Runs(tmp_path_factory.mktemp("rehearsal-runs"), layouts)
