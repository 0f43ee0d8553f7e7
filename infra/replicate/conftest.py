"""A stand-in for the `cog` package, for the predictor's test only.

Cog is not installable here (no Docker, and the package is not on this machine's package mirror), so
predict.py is imported against the four names it uses from Cog's documented API (docs/python.md):
BasePredictor, Input, Path and BaseModel. Input() keeps its keyword arguments, so the test can read the
schema Cog would make of predict() (test_predict.py, cog_components). Inside the image Cog's own package
is imported instead.
"""

import pathlib
import sys
import types


class BasePredictor:
    def setup(self) -> None:
        pass


class Input:
    """What Input(...) was given: description, default (absent: required), ge, le, regex, choices."""

    def __init__(self, **options):
        self.options = options


class Path(pathlib.PosixPath):
    """cog.Path is a pathlib.Path; a prediction's files are returned as Paths."""


class BaseModel:
    """Cog's output object: its fields are its annotations, each given by keyword."""

    def __init__(self, **fields):
        missing = set(self.__annotations__) - set(fields)
        if missing:
            raise TypeError(f"missing output fields: {sorted(missing)}")
        for name, value in fields.items():
            setattr(self, name, value)


shim = types.ModuleType("cog")
shim.BasePredictor, shim.Input, shim.Path, shim.BaseModel = BasePredictor, Input, Path, BaseModel
sys.modules["cog"] = shim
