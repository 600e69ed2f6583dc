"""The likelihood passes by blocks of groups give the numbers of the whole-array code.

`RandomEffectsProbit` evaluates the log-likelihood, gradient, Hessian, firm
scores and posterior weights by contiguous blocks of whole groups (at most
``block_rows`` observations each, `re_probit.BLOCK_ROWS` by default), in
``threads`` threads, summing the blocks' shares in block order. Checked here:

* on wagepan, the estimates, standard errors, log-likelihood, quadrature check
  and firm scores equal those of the former whole-array code (figures below,
  computed by it before the change) to 1e-10 relative, with the default blocks,
  one group per block, and small blocks in two threads;
* on a simulated dynamic panel, every block size (one group per block, a few
  groups, the default, everything in one block) gives the same fit, clustered
  standard errors, scores, Hessian, quadrature check and predictions to 1e-10,
  and two threads give bit for bit the numbers of one thread;
* the warm refits' d log F / d eta, kept or computed again, give the same numbers;
* the blocks hold whole groups and cover the sample once, and a pass's memory
  beyond what it returns stays far below one (observations x nodes) array.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from offshoring.econometrics import RandomEffectsProbit, build_dynamic_sample, re_probit
from offshoring.econometrics.simulate import simulate_firm_years

RTOL = 1e-10
POINTS = (8, 16, 24)

# Computed by the whole-array code (commit 48a671a, before the block passes) on
# wagepan, 12 points, OIM: estimates, std. errors, llf, the quadrature check's
# estimates at 8/16/24 nodes (rows: params then llf), three groups' scores
# (groups 0, 272, 544) and each score column's sum of squares over groups.
WHOLE_ARRAY_REFERENCE = {
    'adaptive': {
        'params': [-1.6816048166459705, 0.16890803514295322, 0.8975105424093931, 0.042768178928838316,
                   -0.0812469185510326, -0.08878000337489556, 0.02603805110599912, 0.39617023502587995,
                   0.12481136833829828, -0.3862443910575025, 1.4445111090669378, -0.018435905016938977,
                   0.5297955656322854, 0.02760212359978999, -0.08962610178780225, -0.050357527525740325,
                   -0.2669310334281031, -0.31594881367321975, 0.0730304819201582, 0.14689686772189897],
        'bse': [0.4425936152015471, 0.11076845967796334, 0.09264490014152132, 0.21496934606305632,
                0.25295035377264546, 0.2554920515332745, 0.2760442247443685, 0.26069539792209967,
                0.26085794751670704, 0.20434217184394163, 0.1641767849704592, 0.0361953686302178,
                0.1836106223120032, 0.1136781555305876, 0.11752661601236604, 0.11911933391895782,
                0.12252008970824012, 0.12447876033674984, 0.11897865851217745, 0.16745735810745083],
        'llf': -1283.7406004783995,
        'q': [[-1.6841701605207717, 0.16908491916688423, 0.8950709108088724, 0.04295583573042215,
               -0.08207135504486562, -0.08893565381688186, 0.026148484978140422, 0.3983982509032545,
               0.12602245580976482, -0.38809518558165745, 1.452212458236109, -0.01877107966445668,
               0.5325983427556231, 0.027583100173358577, -0.08979940577558815, -0.05050310185971508,
               -0.2674105344216794, -0.31666344058021473, 0.07295596753027188, 0.1570711725723404,
               -1283.8287966335288],
              [-1.6816623024653516, 0.16891917432188222, 0.8973985537942147, 0.04277605718156044,
               -0.08128432474153617, -0.0887899672434868, 0.026041529358159135, 0.3963102816934134,
               0.12488978049229571, -0.386364042210596, 1.4447912192571604, -0.01845180537393343,
               0.5299260635827706, 0.027601590905529168, -0.08963479463503972, -0.05036456607937739,
               -0.2669566917679746, -0.3159861634566844, 0.0730280362070941, 0.1473161273636299,
               -1283.747606194359],
              [-1.6816740361997589, 0.1689190682757269, 0.8973938506170647, 0.0427764876210486,
               -0.08128617698583733, -0.08879031280964837, 0.026042681364415735, 0.39631017583628,
               0.12488812667889508, -0.3863617323664837, 1.4448156454552306, -0.018452586721155986,
               0.5299327691874758, 0.027601529144351947, -0.0896350087018603, -0.05036478256438691,
               -0.2669570988761977, -0.3159869058159348, 0.07302777463780112, 0.14734159874597924,
               -1283.7471431401627]],
        'gs_rows': [[0.4616431464107407, 0.0, -0.559276604673031, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                     6.46300404975037, 0.0, -0.559276604673031, -0.17745587785303482, -0.18728259928979732,
                     -0.13762201864411716, -0.12786950953378498, -0.2206317930455182, -0.24621444035558426],
                    [1.266925898277633, 0.46590580115828295, 1.266925898277633, 0.0, 1.266925898277633, 0.0,
                     0.0, 0.0, 1.266925898277633, 1.266925898277633, 1.266925898277633, 15.203110779331595,
                     0.0, 0.13169854767724792, 0.19592043437176113, 0.18600827126246797, 0.245269575679158,
                     0.21106928674417388, 0.12313796673686116, 0.6132165060081329],
                    [0.9320561495747861, 1.8286635545802201, -0.32085643672162273, 0.0, 0.0,
                     0.9320561495747861, 0.9320561495747861, 0.9320561495747861, 0.9320561495747861,
                     0.9320561495747861, 0.0, 8.388505346173075, 0.0, -0.45462361111660154,
                     -0.47883908933025265, 1.2140666222954177, -0.88592457876204, 1.4142924583366778,
                     0.5650681420404172, 0.09075503605870537]],
        'gs_sq': [272.55123995787835, 211.48458203716473, 256.21814305838586, 81.94552418622519,
                  106.48014697827608, 127.76818130612759, 143.74929771118204, 155.9402761257822,
                  158.19159194615244, 165.4319008626764, 83.03410509234382, 37692.841696320116,
                  40.31805250522193, 157.28764643278313, 116.32328951489545, 108.56813613434372,
                  102.81345236790415, 107.17254216578826, 158.08227344707538, 76.2484623342334],
    },
    'ordinary': {
        'params': [-1.7123685837009215, 0.16911915840031516, 0.8856921585084171, 0.05465077925766249,
                   -0.06064739565421253, -0.13629477873876178, 0.06981680445070254, 0.42816461087168767,
                   0.0788873272311234, -0.3878434502669398, 1.4770769341449128, -0.016856612970086733,
                   0.534903905744009, 0.027408062536683146, -0.08931432144045554, -0.05085246978505107,
                   -0.2680619201221815, -0.31729262402021247, 0.07270568874617263, 0.18850872709513297],
        'bse': [0.4493546774518185, 0.11099067208977831, 0.09424308902391447, 0.20712524686628997,
                0.24579353619091754, 0.2423353959314523, 0.26780245224230637, 0.24446152920880665,
                0.26282143878067626, 0.21570583943545846, 0.17056753438243868, 0.036120217071033536,
                0.19424523406651506, 0.11394918744718452, 0.11778294223391685, 0.11944201804038083,
                0.12282789715958285, 0.12476570053437665, 0.11925226767696462, 0.17881830152767134],
        'llf': -1283.390276895368,
        'q': [[-1.6631301189433463, 0.17047172155502663, 0.8649755165227316, 0.031506298059273866,
               0.05117644349138902, -0.20932369211257051, 0.020880056927282502, 0.4747828709114445,
               0.028336229610922036, -0.3848911302449801, 1.5555532615645395, -0.0220958686656717,
               0.5597839300320749, 0.025490200758960788, -0.0889038467114386, -0.04844206931340012,
               -0.2673103724230017, -0.31858226411416063, 0.07211723798465083, 0.23881481463242055,
               -1282.2998473359519],
              [-1.7018820230830307, 0.16888660115669119, 0.8941986278265365, 0.05026713518014952,
               -0.0849342905626096, -0.09825773754365562, 0.03876396522245496, 0.39596524162582664,
               0.12471843971121639, -0.3858329401398674, 1.452308776147642, -0.017196759174809634,
               0.5338208276874391, 0.027689029126318983, -0.08945154027540589, -0.05012769158240559,
               -0.2668942190337874, -0.3160391486886469, 0.07314296978213355, 0.15713237214435707,
               -1283.677880268463],
              [-1.6818619801772399, 0.16892444104114485, 0.8971197251431048, 0.04263656571166695,
               -0.08108740826286394, -0.0885724996575554, 0.025840659058593826, 0.39571610430657544,
               0.1253154331589745, -0.3861292160535461, 1.4452548735461357, -0.0184740415954282,
               0.5307488494007804, 0.027601980606685596, -0.08965739418272034, -0.050341769816198936,
               -0.26694728350953834, -0.31600256808900584, 0.07304523068418524, 0.1481197861022021,
               -1283.7431005326828]],
        'gs_rows': [[0.4902966910664748, 0.0, -0.5482027001619808, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                     6.864153674930646, 0.0, -0.5482027001619808, -0.1753256860348862, -0.18481939965652824,
                     -0.13578430954397225, -0.12616336020396113, -0.21778736475421218, -0.24316737260235174],
                    [1.236819485312508, 0.45494060593167923, 1.2368194853125078, 0.0, 1.236819485312508, 0.0,
                     0.0, 0.0, 1.236819485312508, 1.236819485312508, 1.236819485312508, 14.841833823750097,
                     0.0, 0.12851014011521864, 0.1910459698502112, 0.18156574669730197, 0.23971290248245963,
                     0.20622511599316717, 0.12020534982329337, 0.60542477557266],
                    [0.7589379679652587, 1.7050826932473753, -0.3575607531723305, 0.0, 0.0, 0.7589379679652587,
                     0.7589379679652587, 0.7589379679652587, 0.7589379679652587, 0.7589379679652587, 0.0,
                     6.830441711687328, 0.0, -0.4795107811033451, -0.5046747345906478, 1.1841885465778503,
                     -0.9097275078603563, 1.3831296344325035, 0.5521667546880259, -0.029212664172168]],
        'gs_sq': [263.843260737029, 208.27283701567802, 252.57621019565667, 80.08023175804404,
                  103.72146768913132, 124.05367776378195, 139.9521864136518, 151.28545920467093,
                  152.58906346046126, 159.6067754938802, 80.23658557143017, 36440.45350584506,
                  38.5990308786669, 156.80377028528486, 116.03866049088104, 107.50873987590494,
                  102.58132341486433, 106.72564879684201, 157.99239272541627, 75.97998321308215],
    },
}


def assert_close(new, ref, what, rtol=RTOL):
    new, ref = np.asarray(new, float), np.asarray(ref, float)
    assert new.shape == ref.shape, what
    # relative to each number, or to the largest of the array for numbers near zero
    scale = np.maximum(np.abs(ref), 1e-3 * np.max(np.abs(ref)))
    worst = float(np.max(np.abs(new - ref) / scale))
    assert worst <= rtol, f"{what}: largest relative difference {worst:.1e}"


def fit_summary(res) -> dict:
    """What the pipeline keeps of a fit, as arrays."""
    quad = res.quadrature_check(POINTS)
    return {
        "params": res.params_array,
        "bse": res.bse.to_numpy(),
        "llf": res.llf,
        "group_scores": res.group_scores,
        "hessian": res.hessian,
        "quad": quad[[f"q{K}" for K in POINTS]].to_numpy(),
        "quad_rel": quad[[f"rel_change_q{K}" for K in POINTS]].to_numpy(),
        "quad_iterations": dict(res.quadrature_check_iterations),
        "iterations": res.iterations,
        "nodes": np.concatenate(res.node_moments) if res.node_moments is not None else np.zeros(0),
        "predict": res.predict(),
    }


def assert_same_fit(new: dict, ref: dict, label: str) -> None:
    assert new["iterations"] == ref["iterations"], label
    assert new["quad_iterations"] == ref["quad_iterations"], label
    for key in ("params", "bse", "llf", "group_scores", "hessian", "quad", "nodes", "predict"):
        assert_close(new[key], ref[key], f"{label}: {key}")
    # relative changes are differences of nearly equal numbers: compared as such
    assert np.max(np.abs(new["quad_rel"] - ref["quad_rel"])) < RTOL, label


# --------------------------------------------------------------- wagepan


@pytest.mark.parametrize(
    "adaptive,block_rows,threads",
    [(True, None, None), (True, 1, 1), (True, 50, 2), (False, None, None), (False, 50, 2)],
    ids=["adaptive, default blocks", "adaptive, one group per block",
         "adaptive, 50-row blocks in 2 threads", "ordinary, default blocks",
         "ordinary, 50-row blocks in 2 threads"],
)
def test_wagepan_equals_the_whole_array_code(wagepan_design, adaptive, block_rows, threads):
    y, X, g = wagepan_design
    model = RandomEffectsProbit(y, X, g)
    model.block_rows, model.threads = block_rows, threads
    if block_rows == 1:
        assert len(model._blocks()) == model.ngroups
    res = model.fit(quad_points=12, adaptive=adaptive, cov_type="oim")
    ref = WHOLE_ARRAY_REFERENCE["adaptive" if adaptive else "ordinary"]
    assert_close(res.params_array, ref["params"], "params")
    assert_close(res.bse, ref["bse"], "bse")
    assert_close(res.llf, ref["llf"], "llf")
    quad = res.quadrature_check(POINTS)
    assert_close(np.array([quad[f"q{K}"].to_numpy() for K in POINTS]), ref["q"], "quadrature check")
    gs = res.group_scores
    assert_close(gs[[0, 272, 544]], ref["gs_rows"], "group scores")
    assert_close(np.einsum("gj,gj->j", gs, gs), ref["gs_sq"], "group scores' squares")


# ----------------------------------------------------- simulated dynamic panel


@pytest.fixture(scope="module")
def dynamic_sample():
    panel, _ = simulate_firm_years(n_firms=1200, seed=11)
    return build_dynamic_sample(panel)


def dynamic_fit(sample, block_rows, threads, link="probit", adaptive=True):
    model = RandomEffectsProbit(sample.y, sample.X, sample.groups, link=link,
                                exog_names=sample.exog_names)
    model.block_rows, model.threads = block_rows, threads
    return model, model.fit(quad_points=12, adaptive=adaptive, cov_type="cluster")


@pytest.fixture(scope="module")
def one_block_fit(dynamic_sample):
    # everything in one block: the whole-array evaluation
    model, res = dynamic_fit(dynamic_sample, 10**9, 1)
    assert len(model._blocks()) == 1
    return fit_summary(res)


@pytest.mark.parametrize(
    "block_rows,threads",
    [(1, 1), (37, 1), (37, 2), (None, 2), (None, 1)],
    ids=["one group per block", "37-row blocks", "37-row blocks, 2 threads",
         "default, 2 threads", "default"],
)
def test_block_size_does_not_change_the_fit(dynamic_sample, one_block_fit, block_rows, threads):
    model, res = dynamic_fit(dynamic_sample, block_rows, threads)
    if block_rows == 1:
        assert len(model._blocks()) == model.ngroups
    assert_same_fit(fit_summary(res), one_block_fit, f"block_rows={block_rows}, threads={threads}")


@pytest.mark.parametrize("link,adaptive", [("probit", False), ("logit", True)])
def test_threads_give_the_same_bits(dynamic_sample, link, adaptive):
    # block results are summed in block order: the thread count and the
    # threads' timing change nothing, not even the last bit
    fits = [fit_summary(dynamic_fit(dynamic_sample, 300, t, link, adaptive)[1]) for t in (1, 2)]
    for key, value in fits[0].items():
        other = fits[1][key]
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, other, equal_nan=True), key
        else:
            assert value == other, key


def test_warm_refit_with_or_without_kept_derivatives(dynamic_sample, monkeypatch):
    model, res = dynamic_fit(dynamic_sample, 500, 1)
    kept = res.quadrature_check(POINTS)
    monkeypatch.setattr(re_probit, "KEEP_D1_BYTES", 0)
    again = res.quadrature_check(POINTS)
    assert kept.equals(again)
    # and the derivatives really were kept in one case and not in the other
    p, (m, s) = res.params_array, res.node_moments
    assert model._score(p, m, s, 8, keep_d1=True).d1_blocks is None
    monkeypatch.setattr(re_probit, "KEEP_D1_BYTES", 2**40)
    st = model._score(p, m, s, 8, keep_d1=True)
    assert len(st.d1_blocks) == len(model._blocks())


# -------------------------------------------------------------- the blocks


@pytest.mark.parametrize("budget", [1, 2, 7, 37, 1000, 10**9])
def test_blocks_hold_whole_groups_and_cover_the_sample(dynamic_sample, budget):
    model = RandomEffectsProbit(dynamic_sample.y, dynamic_sample.X, dynamic_sample.groups)
    model.block_rows = budget
    blocks = model._blocks()
    ends = model.starts + model.sizes
    assert blocks[0][0] == 0 and blocks[0][2] == 0
    assert blocks[-1][1] == model.ngroups and blocks[-1][3] == model.nobs
    for (g0, g1, r0, r1), nxt in zip(blocks, blocks[1:] + [None]):
        assert g1 > g0 and r0 == model.starts[g0] and r1 == ends[g1 - 1]
        # within the budget unless one group alone exceeds it
        assert r1 - r0 <= budget or g1 == g0 + 1
        if nxt is not None:
            assert nxt[0] == g1 and nxt[2] == r1
            # greedy: the next group did not fit
            assert r1 - r0 + model.sizes[g1] > budget


def test_pass_memory_does_not_grow_with_the_sample(dynamic_sample):
    model = RandomEffectsProbit(dynamic_sample.y, dynamic_sample.X, dynamic_sample.groups)
    # one block at a time (each thread has a block in flight)
    model.block_rows, model.threads = 256, 1
    K = 24
    p = np.r_[np.zeros(model.k_exog), 0.0]
    m, s = model._nodes(p, K, True)
    full = model.nobs * K * 8  # one (observations x nodes) float64 array
    for order in (0, 1, 2):
        tracemalloc.start()
        try:
            st = model._evaluate(p, m, s, K, order)
            kept, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert np.isfinite(st.llf)
        # the whole-array code needed 3-5 such arrays beyond its results
        assert peak - kept < 0.5 * full, (order, peak - kept, full)
    tracemalloc.start()
    try:
        st = model._score(p, m, s, K, keep_d1=True)
        model._moments_after_step(st, np.full(p.size, 0.01))
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * full  # the kept derivatives: at most KEEP_D1_BYTES (one such array here)


def test_an_error_in_any_block_is_raised(dynamic_sample):
    model = RandomEffectsProbit(dynamic_sample.y, dynamic_sample.X, dynamic_sample.groups)
    model.block_rows, model.threads = 50, 2
    blocks = model._blocks()
    for bad in (blocks[1], blocks[-1]):  # whichever thread takes it

        def fn(g0, g1, r0, r1, bad=bad):
            if (g0, g1, r0, r1) == bad:
                raise ValueError(f"block at group {g0}")
            return g0

        with pytest.raises(ValueError, match=f"block at group {bad[0]}"):
            model._map_blocks(fn)
    assert model._map_blocks(lambda g0, g1, r0, r1: g0) == [b[0] for b in blocks]
