"""The typed state one conversion carries from stage to stage once its staging folder exists."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .data import PreparedData, probe_inputs
from .exports import SourceExports
from .manifest_base import ManifestBase
from .options import ConvertOptions
from .plan import PlanSet
from .source import OpenedSource
from .staging import staging_folder

__all__ = ["ConversionContext", "conversion_context"]


@dataclass(frozen=True)
class ConversionContext:
    """Everything the build, validate, report and publish stages read.

    Attributes:
        options: the checked arguments.
        source: the loaded source, its roles and preprocessing.
        plans: the artifacts, their names and destinations.
        data: calibration and validation sets, float probe.
        manifest: what every artifact's manifest shares.
        exports: the source's SavedModel / float ONNX, made once and shared by the builds.
        stage: the hidden staging folder artifacts are built into.
    """

    options: ConvertOptions
    source: OpenedSource
    plans: PlanSet
    data: PreparedData
    manifest: ManifestBase
    exports: SourceExports
    stage: Path

    @property
    def task(self) -> str:
        """The canonical task name."""
        return self.options.task


@contextmanager
def conversion_context(options: ConvertOptions, source: OpenedSource, plans: PlanSet, data: PreparedData,
                       manifest: ManifestBase) -> Iterator[ConversionContext]:
    """The context of a conversion, with its staging folder in the output folder and the source's exports.

    Both are removed on exit, whatever happens; files not yet published are lost with the staging folder.

    Raises:
        ConfigError: the output folder is not writable.
    """
    probe = probe_inputs(source.preprocess, data.calibration, data.validation_inputs)
    with staging_folder(plans.output_dir) as stage, \
            SourceExports(source.model, source.roles, manifest.transform, options.opset, probe) as exports:
        yield ConversionContext(options, source, plans, data, manifest, exports, stage)
