import pytest

from simulator.errors import ConfigError
from simulator.hardware import CEILING_KNEE, Efficiency, efficiency_for, get_gpu, load_gpus, load_profile, under_ceiling

REQUIRED = ("h100", "h200", "b200", "b300", "gb200", "mi300x", "mi325x", "mi350x", "mi355x")


def test_catalog_has_every_required_gpu_with_a_source():
    gpus = load_gpus()
    for name in REQUIRED:
        assert gpus[name].source
        assert gpus[name].peak_flops("bf16") > 0


def test_dense_figures_not_sparse():
    """MI355X: ~10,000 dense FP4 TFLOPS (20,000 is the sparse figure); B200: 9,000 dense."""
    assert get_gpu("mi355x").peak_flops("fp4") == 10_000e12
    assert get_gpu("b200").peak_flops("fp4") == 9_000e12
    assert get_gpu("h100").peak_flops("fp8") == 1_979e12


def test_missing_dtype_is_an_error_not_a_fallback():
    with pytest.raises(ConfigError, match="h100 has no fp4"):
        get_gpu("h100").peak_flops("fp4")


def test_user_file_overrides_and_adds(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[mi355x]\nhbm_tb_per_s = 9.0\n\n[x1]\ndisplay_name = "X1"\nvendor = "nvidia"\nfamily = "x"\n'
                    'hbm_gb = 100\nhbm_tb_per_s = 2\npeak_tflops = { bf16 = 100 }\nscaleup = "nvswitch"\n'
                    'scaleup_gb_per_s = 100\ngpus_per_server = 8\nnic_gbps = 100\npower_w = 300\n'
                    'usd_per_gpu_hour = [1, 2]\n')
    gpus = load_gpus([path])
    assert gpus["mi355x"].hbm_tb_per_s == 9.0
    assert gpus["mi355x"].hbm_gb == 288
    assert gpus["x1"].vendor == "nvidia"
    assert gpus["x1"].node_other_power_w is None      # optional: a GPU without a rated server power


def test_node_power_is_the_rated_server_power_less_its_gpus():
    """DGX B200: 14.3 kW max for 8 x 1,000 W B200 -> (14,300 - 8,000) / 8 = 787.5 W per GPU;
    DGX H100: 10.2 kW for 8 x 700 W -> 575 W."""
    assert get_gpu("b200").node_other_power_w == 787.5
    assert get_gpu("h100").node_other_power_w == 575


@pytest.mark.parametrize("line, message", [
    ("hbm_gb = -1", "hbm_gb: -1 is out of range"),
    ("hbm_tb_per_s = nan", "must be a finite number"),
    ("scaleup = \"ring\"", "scaleup: 'ring' is not one of"),
    ("hbm_gbs = 3", "unknown key 'hbm_gbs'"),
    ("peak_tflops = { bf16 = 1, fp3 = 2 }", "'fp3' is not one of"),
    ("node_other_power_w = -5", "node_other_power_w: -5 is out of range"),
])
def test_bad_gpu_entries(tmp_path, line, message):
    path = tmp_path / "bad.toml"
    path.write_text(f"[h100]\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        load_gpus([path])


def test_unparsable_and_empty_files(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[h100\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_gpus([broken])
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_gpus([empty])


def test_unknown_gpu():
    with pytest.raises(ConfigError, match="unknown GPU 'a100'"):
        get_gpu("a100")


def test_gemm_efficiency_by_dtype_and_small_batch_falloff():
    """8- and 16-bit GEMMs reach compute_efficiency of their peak, 4- and 6-bit ones
    narrow_compute_efficiency. Small batches reach less: with half = 32 tokens a GEMM of t rows runs at
    t / (t + 32) of that. One Llama 2 70B attention projection (150,994,944 params) on a B200 in fp8,
    compute 0.6: 32 rows take 2 x P x 32 / (4.5e15 x 0.6 x 0.5) = 7.158 us of math, less than reading
    the weights (P bytes / 8e12 = 18.874 us): memory-bound; 3,200 rows take
    2 x P x 3,200 / (4.5e15 x 0.6 x 3200/3232) = 361.5 us of math."""
    from simulator.costmodel import TokenCost, gemm_time_s
    from simulator.models import Precision, get_model
    from simulator.plan import Plan
    eff = Efficiency(compute_efficiency=0.6, narrow_compute_efficiency=0.4, gemm_half_tokens=32, memory_efficiency=1.0,
                     gemm_ridge_excess=0.0)
    assert eff.gemm_efficiency("fp8") == 0.6 and eff.gemm_efficiency("bf16") == 0.6
    assert eff.gemm_efficiency("fp4") == 0.4 and eff.gemm_efficiency("fp6") == 0.4
    cost = TokenCost(get_model("llama2-70b"), get_gpu("b200"), Precision("fp8", "fp8", "fp8"), Plan(), eff)
    params = 150_994_944
    fp8 = 4.5e15 * 0.6
    assert cost.gemm_flops_per_s == pytest.approx(fp8) and cost.bytes_per_s == pytest.approx(8e12)

    def gemm_s(rows):
        return gemm_time_s(params, rows, cost.gemm_flops_per_s, 1.0, cost.bytes_per_s, eff.gemm_half_tokens, 0.0)

    assert gemm_s(3200) == pytest.approx(2 * params * 3200 / (fp8 * 3200 / 3232))
    assert gemm_s(3200) == pytest.approx(361.5e-6, rel=1e-3)
    assert gemm_s(32) == pytest.approx(18.874e-6, rel=1e-4)
    assert 2 * params * 32 / (fp8 * 0.5) == pytest.approx(7.158e-6, rel=1e-3)
    assert gemm_s(0) == 0.0


def test_profile_default_applies():
    eff = efficiency_for(get_gpu("mi355x"))
    assert 0 < eff.compute_efficiency <= 1
    with pytest.raises(ConfigError, match="efficiency.memory_efficiency"):
        Efficiency(memory_efficiency=1.5)


def test_base_family_defaults_to_the_chip_family_and_takes_its_own_profile_section():
    """B300 is Blackwell Ultra for compute but streams Blackwell's HBM3e: its memory factor is the
    [base_family."blackwell"] section's, which B200 shares; a GPU without the key uses its family."""
    b200, b300, h100 = get_gpu("b200"), get_gpu("b300"), get_gpu("h100")
    assert (b300.family, b300.base_family) == ("blackwell-ultra", "blackwell")
    assert b200.base_family == b200.family and h100.base_family == "hopper"
    profile = {"default": {"memory_efficiency": 0.8}, "base_family": {"blackwell": {"memory_efficiency_factor": 0.5}}}
    assert efficiency_for(b300, profile).memory_efficiency == pytest.approx(0.4)
    assert efficiency_for(b200, profile).memory_efficiency == pytest.approx(0.4)
    assert efficiency_for(h100, profile).memory_efficiency == pytest.approx(0.8)


def test_a_value_bends_under_its_ceiling_with_a_continuous_slope():
    """Collective efficiency's ceiling is 1.0, compute's 0.99; the knee k is 0.1. By hand, u = value / c:
    u <= 0.9 unchanged; u = 1: c (1 - 0.1^2 / 0.4) = 0.975 c; u = 0.95: c (0.95 - 0.05^2 / 0.4) = 0.94375 c;
    u >= 1.1: c. Value and slope (1 at 0.9 and 0 at 1.1 from the quadratic's 1 - (u - 0.9) / 0.2) join."""
    assert CEILING_KNEE == 0.1
    assert under_ceiling("collective_efficiency", 0.8) == 0.8
    assert under_ceiling("collective_efficiency", 1.0) == pytest.approx(0.975)
    assert under_ceiling("collective_efficiency", 0.95) == pytest.approx(0.94375)
    assert under_ceiling("compute_efficiency", 0.99) == pytest.approx(0.975 * 0.99)
    assert under_ceiling("collective_efficiency", 1.3) == 1.0
    eps = 1e-7
    for knee in (0.9, 1.1):
        below, above = under_ceiling("collective_efficiency", knee - eps), under_ceiling("collective_efficiency", knee + eps)
        assert above - below == pytest.approx(2 * eps * (1.0 if knee == 0.9 else 0.0), abs=1e-12)


def test_profile_factors_compose_before_the_ceiling_bends_them():
    """[default] 0.9 x vendor 1.2 x GPU 0.85 = 0.918 of the collective ceiling: 0.918 - 0.018^2 / 0.4 =
    0.91719. Capping each section in turn (0.9 x 1.2 -> 1.0, x 0.85) gave 0.85, which is not what the fit
    that wrote the factors predicted with."""
    h100 = get_gpu("h100")
    profile = {"default": {"collective_efficiency": 0.9}, "vendor": {"nvidia": {"collective_efficiency_factor": 1.2}},
               "gpu": {"h100": {"collective_efficiency_factor": 0.85}}}
    assert efficiency_for(h100, profile).collective_efficiency == pytest.approx(0.91719)
    with pytest.raises(ConfigError, match=r"\[gpu.h100\]: collective_efficiency_factor"):
        efficiency_for(h100, {"gpu": {"h100": {"collective_efficiency_factor": 0.0}}})


def test_a_profile_file_is_read_again_once_it_changes(tmp_path):
    """load_profile parses each version of a file once; a rewritten file (another size) is read anew, and
    a caller that edits its copy does not change what the next caller gets."""
    path = tmp_path / "p.toml"
    path.write_text("[default]\ncompute_efficiency = 0.5\n")
    first = load_profile(path)
    first["default"]["compute_efficiency"] = 0.01
    assert load_profile(path)["default"]["compute_efficiency"] == 0.5
    path.write_text("[default]\ncompute_efficiency = 0.625\n")
    assert load_profile(path)["default"]["compute_efficiency"] == 0.625
    path.unlink()
    with pytest.raises(ConfigError, match="p.toml"):
        load_profile(path)
