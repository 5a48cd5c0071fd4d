"""Request streams: arrival processes, length distributions, trace replay, workload specs and the MLPerf
benchmark scenarios."""
from workloads.arrivals import ARRIVALS, ClosedLoop, Constant, Gamma, Offline, Poisson
from workloads.lengths import LENGTHS, Empirical, Fixed, LogNormal, Uniform, parse_length_flag
from workloads.requests import ClosedLoopRequests, Requests
from workloads.scenarios import Scenario, get_scenario, list_scenarios, mlperf_tpot_s
from workloads.spec import WorkloadSpec
from workloads.spec_inputs import workload_from_dict, workload_from_flags, workload_from_toml
from workloads.traces import load_trace

__all__ = ["ARRIVALS", "ClosedLoop", "ClosedLoopRequests", "Constant", "Empirical", "Fixed", "Gamma", "LENGTHS", "LogNormal", "Offline", "Poisson",
           "Requests", "Scenario", "Uniform", "WorkloadSpec", "get_scenario", "list_scenarios", "load_trace",
           "mlperf_tpot_s", "parse_length_flag", "workload_from_dict", "workload_from_flags", "workload_from_toml"]
