"""Measurement import formats (`infersim import-runs --format NAME`): each turns measured runs into
calibration rows (`measurements.Measurement`). One small class per format, registered in `IMPORT_FORMATS`.

A format names the options it reads besides the files (`options`), the ones it cannot do without
(`required`: the file does not say them), and `read(files, **options)` returns the rows and an optional
note for the user (what was left out).
"""
from __future__ import annotations

from simulator.api import serving_config
from simulator.errors import ConfigError, InfeasibleError
from simulator.memory import weights_bytes_per_gpu
from simulator.mlperf_results import import_mlperf
from simulator.registry import Registry
from simulator.run_results import from_inferencemax, from_vllm_benchmark

IMPORT_FORMATS = Registry("import format")


class ImportFormat:
    """Interface: `read(files, **options) -> (rows, note or None)`."""

    name = "base"
    options: tuple = ()
    required: tuple = ()

    def read(self, files, **options):  # pragma: no cover - interface
        raise NotImplementedError

    def check(self, options: dict) -> None:
        """Every required option present (the caller words the error for its own flags first)."""
        for name in self.required:
            if options.get(name) is None:
                raise ConfigError(f"{name}: required with format {self.name} (the result file does not say)")


@IMPORT_FORMATS.register
class MLPerfResults(ImportFormat):
    """MLCommons MLPerf Inference results: submission trees (mlperf_log_summary.txt with systems/*.json),
    summary_results.json, or folders of them."""

    name = "mlperf"
    options = ("strict",)

    def read(self, files, strict: bool = False, **_):
        """The rows and the one line saying what was left out; none imported is an error saying why (an
        empty result is never written as if the files held nothing)."""
        report = import_mlperf(files, strict=strict)
        if not report.rows:
            raise ConfigError(f"{', '.join(map(str, files))}: {report.summary_line()}")
        return report.rows, report.summary_line()


@IMPORT_FORMATS.register
class VLLMBenchmark(ImportFormat):
    """vLLM benchmark_serving result JSON (--save-result); the GPU, count and plan come from the options."""

    name = "vllm"
    options = ("model", "gpu", "gpus", "tp", "ep", "precision", "stack")
    required = ("model", "gpu", "gpus")

    def read(self, files, model=None, gpu=None, gpus=None, tp=None, ep=None, precision="fp8", stack="vllm", **_):
        self.check({"model": model, "gpu": gpu, "gpus": gpus})
        if not str(stack).strip():
            raise ConfigError("`stack`: an empty name; give the serving stack the runs used (e.g. vllm, sglang)")
        check_deployment(model, gpu, gpus, tp=tp, ep=ep, precision=precision)
        return [from_vllm_benchmark(f, model=model, gpu=gpu, gpus=gpus, tp=tp, ep=ep, precision=precision,
                                    stack=stack) for f in files], None


def check_deployment(model: str, gpu: str, gpus, *, tp=None, ep=None, precision: str = "fp8") -> None:
    """The options that say how a run was deployed, checked before any file is read by resolving them
    as a simulation of that run would (`api.serving_config`): an error names the option (`gpus`, `tp`,
    ...), not the file, which says none of these. A deployment whose weights alone exceed its GPUs' memory
    cannot have run: it is refused here (InfeasibleError), not when a calibration later tries to simulate its
    rows. One that fits only tighter than infersim's memory plan (its step budget, its reserve) is imported:
    the run happened, and calibrate says which rows it cannot simulate."""
    config = serving_config(model=model, gpu=gpu, gpus=gpus, tp=1 if tp is None else tp, ep=1 if ep is None else ep,
                            precision=precision)
    weights_gb = weights_bytes_per_gpu(config.model, config.precision, config.plan) / 1e9
    if weights_gb > config.gpu.hbm_gb:
        raise InfeasibleError(f"does not fit: {config.model.name} in {config.precision.weights} needs "
                              f"{weights_gb:.1f} GB of weights per GPU with tp={config.plan.tp} ep={config.plan.ep}; "
                              f"{config.gpu.name} has {config.gpu.hbm_gb:g} GB: check `tp`, `ep` and `precision`")


@IMPORT_FORMATS.register
class InferenceMAX(ImportFormat):
    """InferenceMAX per-run result JSON (hardware, model, plan and concurrency are in the file)."""

    name = "inferencemax"

    def read(self, files, **_):
        return [from_inferencemax(f) for f in files], None
