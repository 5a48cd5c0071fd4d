import numpy as np
import pytest

from simulator.run import ServingConfig
from simulator.hardware import get_gpu
from simulator.models import Precision, get_model
from simulator.plan import Plan


class FixedStepCost:
    """Hand-set step times: any step with prompt work costs `prefill_s`, any step with decodes
    `decode_s` (a mixed step costs both), so expected timelines can be worked out on paper."""

    def __init__(self, plan, prefill_s=1.0, decode_s=0.1):
        self.plan, self.prefill_s, self.decode_s = plan, prefill_s, decode_s
        self.model = get_model("llama2-70b")

    def step_time_s(self, shape):
        return self.row_time_s(*shape.as_row())

    def row_time_s(self, prefill_tokens, prefill_pairs, prefill_window_pairs, prefill_seqs, decode_seqs,
                   decode_context):
        return (self.prefill_s if prefill_tokens else 0.0) + (self.decode_s if decode_seqs else 0.0)

    def decode_coefficients(self, n):
        return self.decode_s, 0.0


class Stream:
    def __init__(self, arrival_s, input_tokens, output_tokens):
        self.arrival_s = np.asarray(arrival_s, dtype=float)
        self.input_tokens = np.asarray(input_tokens, dtype=np.int64)
        self.output_tokens = np.asarray(output_tokens, dtype=np.int64)


@pytest.fixture
def small_config():
    """One MI355X serving Llama 2 70B in fp8 (a real memory plan; step times come from the test)."""
    def make(batching="continuous", gpus=1, plan=None, **kw):
        return ServingConfig(model=get_model("llama2-70b"), gpu=get_gpu("mi355x"), gpus=gpus,
                             precision=Precision.parse("fp8"), plan=plan or Plan(), batching=batching, **kw)
    return make
