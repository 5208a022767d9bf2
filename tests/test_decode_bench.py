"""The decoding benchmark's parts a user relies on: the LLaDA reference loop equals the sampler's one-token-per-step
greedy decoding, the speedup row is chosen by the documented quality rule, and the results writer refuses bad input
with one error line."""

import json
import os
import runpy
import sys

import pytest
import torch

from mdlm.evaluation.decode_choice import choose_speedup_row
from mdlm.evaluation.decode_keys import Bench, empty_share
from mdlm.evaluation.decode_report import paired_quality, quality
from mdlm.evaluation.decode_rows import row_config, row_overrides, sample_stem, select_rows
from mdlm.evaluation.llada_loop import block_aligned_fn, llada_generate, transfer_counts
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.sampling import as_logits_fn, generate
from mdlm.sampling.config import MDLMGenerationConfig

pytestmark = pytest.mark.usefixtures("one_thread")
V, MASK, PAD = 48, 47, 46
ROOT = os.path.join(os.path.dirname(__file__), "..")


def tiny_model() -> MDLMForMaskedLM:
    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64, mask_token_id=MASK, pad_token_id=PAD)
    return MDLMForMaskedLM(cfg).eval()


def ragged_canvas(gen: int):
    """Two left-padded prompts of 3 and 5 tokens, then ``gen`` masks: (canvas, attention_mask, prompt_mask)."""
    P = 5
    x = torch.full((2, P + gen), MASK)
    x[:, :P] = torch.tensor([[PAD, PAD, 3, 4, 5], [6, 7, 8, 9, 10]])
    attn = (x != PAD).long()
    return x, attn, (x != MASK) & (x != PAD)


def test_transfer_counts_are_llada_even_split():
    assert transfer_counts(10, 4) == [3, 3, 2, 2]
    assert transfer_counts(8, 8) == [1] * 8
    assert sum(transfer_counts(13, 5)) == 13


@pytest.mark.parametrize("gen,block", [(16, 8), (12, 4)])
def test_llada_loop_equals_generate_one_token_per_step(gen, block):
    model = tiny_model()
    x, attn, prompt = ragged_canvas(gen)
    ref = llada_generate(as_logits_fn(model), x, mask_id=MASK, gen_length=gen, block_length=block, steps=gen,
                         attention_mask=attn, suppress_ids=[PAD], vocab_size=V - 1)
    cfg, _ = row_config(gen, block, row_overrides(0.9, 1.0, 0.1)["uncached"])
    out = generate(model, x, mask_id=MASK, config=cfg, attention_mask=attn, cond_mask=prompt, suppress_tokens=[PAD],
                   vocab_size=V - 1)
    assert ref.nfe == gen
    assert (ref.sequences[:, -gen:] != MASK).all() and not (ref.sequences[:, -gen:] >= V - 1).any()
    assert torch.equal(ref.sequences, out.sequences)


def test_llada_loop_stops_at_max_steps():
    x, attn, _ = ragged_canvas(8)
    res = llada_generate(as_logits_fn(tiny_model()), x, mask_id=MASK, gen_length=8, block_length=4, steps=8,
                         attention_mask=attn, max_steps=3)
    assert res.nfe == 3 and int((res.sequences == MASK).sum()) == 2 * 5


def test_row_config_drops_graphs_with_a_note_and_refuses_unknown_options():
    cfg, note = row_config(32, 8, {"cuda_graphs": True}, graphs=False)
    assert isinstance(cfg, MDLMGenerationConfig) and not cfg.cuda_graphs and "no CUDA graphs" in note
    cfg, why = row_config(32, 8, {"no_such_option": 1})
    assert cfg is None and "no_such_option" in why


def test_speedup_row_is_the_fastest_that_passes_the_quality_bar():
    speed = {"llada": 1.0, "uncached": 1.2, "graphs": 4.0, "dual": 9.0, "threshold": 6.0, "eb": 7.0, "noq": 20.0}
    q = {"llada": {"genppl": 100.0, "entropy": 5.0}, "dual": {"genppl": 130.0, "entropy": 5.0},
         "threshold": {"genppl": 104.0, "entropy": 4.95}, "eb": {"genppl": 101.0, "entropy": 4.8}}
    agree = {"uncached": 1.0, "graphs": 1.0, "dual": 0.2, "threshold": 0.9, "eb": 0.8, "noq": 0.5}
    c = choose_speedup_row(speed, q, agree)
    assert (c.row, c.speedup) == ("threshold", 6.0)
    assert "genppl" in c.rejected["dual"] and "entropy" in c.rejected["eb"] and "not judged" in c.rejected["noq"]
    assert "slower" in c.rejected["graphs"]
    # exact rows pass unjudged; nothing passing gives no row, never a silent pick
    assert choose_speedup_row({"llada": 1, "graphs": 3.0}, {}, {"graphs": 1.0}).row == "graphs"
    none = choose_speedup_row({"llada": 1, "dual": 9.0}, q, {"dual": 0.2})
    assert none.row is None and none.speedup is None


def test_empty_answers_never_make_a_speedup():
    """An instruction model that emits EOS at once decodes nothing: an empty text equals the reference's and
    scores a perfect genppl, so neither may count."""
    speed = {"llada": 1.0, "graphs": 3.0, "threshold+eos": 900.0}
    agree = {"graphs": 1.0, "threshold+eos": 1.0}
    none = choose_speedup_row(speed, {}, agree, empty={"llada": 1.0, "graphs": 1.0, "threshold+eos": 1.0})
    assert none.row is None and set(none.rejected) == {"graphs", "threshold+eos"} and "empty" in none.why
    q = {"llada": {"genppl": 10.0, "entropy": 3.0}, "threshold+eos": {"genppl": 10.0, "entropy": 3.0}}
    c = choose_speedup_row(speed, q, {"graphs": 1.0}, empty={"llada": 0.0, "graphs": 0.0, "threshold+eos": 0.25})
    assert c.row == "graphs" and "25% of its answers are empty" in c.rejected["threshold+eos"]
    assert choose_speedup_row(speed, q, agree, empty={"llada": 0.0}).row == "threshold+eos"  # unknown: no check


def _bench_dir(path, rows, texts):
    (path / "samples").mkdir(parents=True)
    for r in rows:
        r["samples"] = f"samples/{r['run']}.jsonl"
        (path / r["samples"]).write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[r["run"]]))
    (path / "results.json").write_text(json.dumps({"meta": {}, "rows": rows}))
    return str(path)


def test_agreement_on_one_prompt_is_not_evidence_unless_exact_by_construction(tmp_path):
    row = {"batch_size": 1, "gen_length": 32, "nfe": 32, "tokens_per_s": 1.0, "agreement": 1.0}
    rows = [dict(row, run="llada", speedup=1.0), dict(row, run="graphs", speedup=3.0),
            dict(row, run="threshold", speedup=30.0, nfe=4)]
    b = Bench([_bench_dir(tmp_path / "b1", rows, {"llada": ["a b"], "graphs": ["a b"], "threshold": ["a b"]})])
    assert b.min_agreement(32, "graphs") == 1.0 and b.min_agreement(32, "threshold") is None
    choice, _ = b.choose(1, 32)
    assert choice.row == "graphs" and "not judged" in choice.rejected["threshold"]
    big = [dict(r, batch_size=8) for r in rows]
    b8 = Bench([b.dirs[0], _bench_dir(tmp_path / "b8", big, {n: ["a b"] * 8 for n in ("llada", "graphs", "threshold")})])
    assert b8.min_agreement(32, "threshold") == 1.0 and b8.choose(1, 32)[0].row == "threshold"
    k8 = [dict(r, sequences=8) for r in rows]  # batch 1 over 8 prompts (decode_bench.py --b1-prompts 8)
    assert Bench([_bench_dir(tmp_path / "k8", k8, {n: ["a b"] * 8 for n in ("llada", "graphs", "threshold")})]
                 ).min_agreement(32, "threshold") == 1.0
    empty = Bench([_bench_dir(tmp_path / "e", rows, {n: [" "] for n in ("llada", "graphs", "threshold")})])
    assert empty_share(os.path.join(empty.dirs[0], "samples", "llada.jsonl")) == 1.0
    assert empty.choose(1, 32)[0].row is None


def test_a_row_over_several_batch1_prompts_is_their_total_time_and_mean_nfe():
    """--b1-prompts K: K decodes of one prompt each are one row: tokens/s = K·G / total time, so a speedup is the
    ratio of total times; NFE the mean; the K generated parts stacked; an estimate anywhere leaves no tokens."""
    from mdlm.evaluation.decode_timing import Timed, merge_prompt_runs

    G = 4
    a = Timed(torch.arange(10).view(1, 10), 2.0, 3, 4, 40, 3, "x")
    b = Timed(torch.arange(8).view(1, 8), 1.0, 2, 1, 8, 0, "x", capture_failures=1)
    m = merge_prompt_runs([a, b], G)
    assert m.seconds == 1.5 and G / m.seconds == 2 * G / (2.0 + 1.0)
    assert (m.nfe, m.repeats, m.positions, m.graph_replays, m.note, m.capture_failures) == (2.5, 2, 48, 3, "x", 1)
    assert m.sequences.tolist() == [[6, 7, 8, 9], [4, 5, 6, 7]]
    assert merge_prompt_runs([a, Timed(None, 5.0, 0, 4)], G).sequences is None
    ref = merge_prompt_runs([Timed(None, 4.0, 0, 4), Timed(None, 8.0, 0, 4)], G)
    assert ref.seconds / m.seconds == (4.0 + 8.0) / (2.0 + 1.0)  # the speedup: total over total
    assert (m.launch_ahead, m.ahead_reads) == (None, None)  # neither prompt launched ahead


def test_a_merged_row_says_which_block_advance_ran_and_its_reads_per_decode():
    from mdlm.evaluation.decode_timing import Timed, merge_prompt_runs

    ahead = [Timed(None, 1.0, 1, 4, launch_ahead="triton", ahead_reads=r) for r in (3, 4)]
    m = merge_prompt_runs(ahead, 4)
    assert (m.launch_ahead, m.ahead_reads) == ("triton", 3.5)
    m = merge_prompt_runs([ahead[0], Timed(None, 1.0, 1, 4)], 4)  # one prompt estimated (or read back per step)
    assert (m.launch_ahead, m.ahead_reads) == (None, None)


def test_batch1_row_takes_the_quality_of_the_judged_batch64_file():
    judged = {"samples/G512_B64_threshold.jsonl": {"genppl": 30.0, "unigram_entropy": 4.0, "samples": 64},
              "samples/G256_B64_threshold.jsonl": {"genppl": 99.0, "unigram_entropy": 1.0, "samples": 64}}
    assert quality(judged, 512, "threshold", 1) == {"genppl": 30.0, "entropy": 4.0, "samples": 64, "batch_size": 64}
    assert quality(judged, 512, "dual+threshold", 1) is None


def test_quality_ratios_never_compare_two_batch_sizes():
    """A row judged only through another batch size's samples is compared with the reference's samples of that batch
    size: batch-1 greedy text of 8 prompts and batch-64 text of 64 prompts differ in genppl by themselves."""
    judged = {"samples/G512_B1_llada.jsonl": {"genppl": 1.6, "unigram_entropy": 2.6, "samples": 8},
              "samples/G512_B64_llada.jsonl": {"genppl": 1.2, "unigram_entropy": 2.3, "samples": 64},
              "samples/G512_B1_factor.jsonl": {"genppl": 1.64, "unigram_entropy": 2.62, "samples": 8},
              "samples/G512_B64_eb.jsonl": {"genppl": 1.5, "unigram_entropy": 2.55, "samples": 64}}
    q, ref = paired_quality(judged, 512, "factor", 64)  # a batch-64 row judged only at batch 1
    assert (q["batch_size"], ref["batch_size"], ref["genppl"]) == (1, 1, 1.6)
    q, ref = paired_quality(judged, 512, "eb", 1)  # a batch-1 row judged only at batch 64
    assert (q["batch_size"], ref["batch_size"], ref["genppl"]) == (64, 64, 1.2)
    assert paired_quality({"samples/G512_B64_eb.jsonl": judged["samples/G512_B64_eb.jsonl"]}, 512, "eb", 1)[1] is None
    speed, agree = {"llada": 1.0, "factor": 9.0, "eb": 5.0}, {"factor": 0.2, "eb": 0.3}
    qs = {r: paired_quality(judged, 512, r, 1) for r in speed}
    c = choose_speedup_row(speed, {r: v for r, (v, _) in qs.items()}, agree,
                           references={r: ref for r, (_, ref) in qs.items()})
    assert c.row == "factor" and "eb" in c.rejected  # factor: 1.025x its batch's llada; eb: 1.25x llada's at 64
    # against one reference for all (the batch-1 llada) eb would look better than it is: 1.5 / 1.6
    assert choose_speedup_row({"llada": 1.0, "eb": 5.0}, {"llada": qs["llada"][0], "eb": qs["eb"][0]}, agree).row == "eb"


def run_results(argv, capsys, monkeypatch):
    main = runpy.run_path(os.path.join(ROOT, "eval", "decode_results.py"))["main"]
    monkeypatch.setattr(sys, "argv", ["eval/decode_results.py", *argv])
    with pytest.raises(SystemExit) as e:
        main()
    return e.value.code, capsys.readouterr().err.strip().splitlines()


def test_results_writer_refuses_missing_or_invalid_input(tmp_path, capsys, monkeypatch):
    results = tmp_path / "results.json"
    results.write_text("{}")
    code, err = run_results(["--mdm", str(tmp_path / "nope"), "--results", str(results), "--print-only"], capsys, monkeypatch)
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "nope" in err[0]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{not json")
    code, err = run_results(["--mdm", str(bad), "--results", str(results), "--print-only"], capsys, monkeypatch)
    assert code == 2 and len(err) == 1 and "not valid JSON" in err[0]
    (bad / "results.json").write_text(json.dumps({"rows": []}))
    code, err = run_results(["--mdm", str(bad), "--results", str(results), "--print-only"], capsys, monkeypatch)
    assert code == 2 and len(err) == 1 and "decode_bench" in err[0]
    assert results.read_text() == "{}"


def test_block_aligned_forward_starts_a_block_at_the_first_generated_column():
    seen = {}

    def stub(input_ids, attention_mask, position_ids):  # records what a block-diffusion model would be given
        seen["pos"] = position_ids
        return torch.zeros(*input_ids.shape, V)

    x, attn, _ = ragged_canvas(8)  # prompts of 3 and 5 tokens end at column 5
    block_aligned_fn(stub, gen_start=5, block_size=4)(x, attn)
    pos = seen["pos"]
    assert (pos[:, 5] % 4 == 0).all()  # each row's first generated token begins a block
    assert torch.equal(pos[0, 3:] - pos[0, 2], torch.arange(1, 11)) and torch.equal(pos[1, 1:] - pos[1, 0], torch.arange(1, 13))


def test_rows_are_selected_in_order_and_threshold_rows_take_an_at_suffix():
    plan = row_overrides(0.9, 1.0, 0.1)
    rows = select_rows(plan, ["dual+threshold@0.7", "graphs", "dual+threshold"])
    assert list(rows) == ["dual+threshold@0.7", "graphs", "dual+threshold"]
    assert rows["dual+threshold@0.7"]["threshold"] == 0.7 and rows["dual+threshold"]["threshold"] == 0.9
    cfg, why = row_config(64, 32, rows["dual+threshold@0.7"])
    assert cfg is not None and cfg.threshold == 0.7, why
    assert sample_stem("dual+threshold@0.7") == "dual_threshold_t0.7"
    for bad in (["graphs@0.7"], ["factor@0.7"], ["nope"], ["threshold@1.5"], ["threshold@x"]):
        with pytest.raises(ValueError, match="unknown row|threshold after"):
            select_rows(plan, bad)


def test_nelbo_key_takes_the_first_run_and_keeps_longer_runs_of_fewer_models(tmp_path):
    from mdlm.evaluation.decode_keys import nelbo_key

    def run(name, steps, nll):
        d = tmp_path / name
        d.mkdir()
        (d / "train_meta.json").write_text(json.dumps({"steps": steps, "gpu": "g", "date": "d", "command": "c"}))
        for model, v in nll.items():
            (d / f"{model}_eval_metrics.json").write_text(json.dumps({"eval_nll": v}))
        return str(d)

    short = run("s400", 400, {"mdm": 5.0, "bd3_4": 4.5, "bd3_16": 4.0, "bd3_64": 5.5})
    long = run("s1500", 1500, {"mdm": 4.0, "bd3_16": 4.2})
    key = nelbo_key([short, long])
    assert key["value"] == {"4": 0.9, "16": 0.8, "64": 1.1} and key["missing"] is None
    (other,) = key["other_runs"]
    assert other["steps"] == 1500 and other["value"] == {"4": None, "16": 1.05, "64": None}
    assert other["missing"] == ["bd3_4", "bd3_64"]
    assert "400-step" in key["note"] and "block 16: 1.05" in key["note"]


def test_every_failed_graph_capture_of_a_row_is_counted_and_noted(monkeypatch):
    """A failed CUDA-graph capture leaves its steps eager (slower, same samples) and warns — once per place, so the
    benchmark reads the count every generation reports (SampleOutput.graph_capture_failures) instead, and says so in
    the row's note."""
    from mdlm.evaluation import decode_timing
    from mdlm.sampling import SampleOutput

    def flaky_generate(model, canvas, **kw):  # a row whose captures fail twice in every run
        return SampleOutput(canvas.clone(), 8, None, 8, 0, 0, graph_capture_failures=2)

    monkeypatch.setattr(decode_timing, "generate", flaky_generate)
    x, attn, prompt = ragged_canvas(8)
    case = decode_timing.Case(x, attn, prompt, 8, 4, MASK, [], V)
    cfg, _ = row_config(8, 4, row_overrides(0.9, 1.0, 0.1)["uncached"])
    t = decode_timing.time_generate(None, case, cfg, repeats=2, max_seconds=60.0, sync=lambda: None)
    assert t.repeats == 2 and t.capture_failures == 2 * (1 + 2)  # the warm-up and both timed runs
    assert "6 CUDA-graph capture(s) failed" in t.note


def test_sampler_key_takes_a_graphed_rows_per_step_overhead_only_where_it_was_measured(tmp_path):
    from mdlm.cli import UserError
    from mdlm.evaluation.decode_keys import sampler_key

    rows = [{"strategy": "greedy", "overhead_pct": 7.0, "overhead_synced_pct": 4.0},
            {"strategy": "graphs+compile", "overhead_pct": 15.0, "overhead_synced_pct": None,
             "overhead_per_step_pct": 2.6},
            {"strategy": "fast_dllm graphs", "overhead_pct": 18.0, "overhead_synced_pct": None,
             "overhead_per_step_pct": None}]
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"meta": {"device": "g", "command": "c", "model": "random 125m", "row_stats_used": "triton"},
                             "rows": rows}))
    assert sampler_key(str(p), None)["value"] == 4.0  # the first row's synced whole-call share
    key = sampler_key(str(p), None, "graphs+compile", per_step=True)
    assert (key["value"], key["whole_call_pct"], key["row_stats"]) == (2.6, 15.0, "triton")
    assert "per extra step" in key["unit"] and "before" not in key
    before = sampler_key(str(p), None)
    again = sampler_key(str(p), before, "graphs+compile", per_step=True)  # the measure changed: the old figure kept
    assert again["before"]["value"] == 4.0 and again["before"]["unit"] == before["unit"]
    assert sampler_key(str(p), again, "graphs+compile", per_step=True)["before"] == again["before"]  # rewritten: kept
    with pytest.raises(UserError, match="no per-step overhead"):
        sampler_key(str(p), None, "fast_dllm graphs", per_step=True)


def test_a_model_measured_at_one_length_only_gets_missing_entries_at_the_others(tmp_path, capsys, monkeypatch):
    """--by-model with runs at 1024 tokens only (e.g. a 16-prompt rerun): its 512 entries say what is missing, its
    1024 entry is chosen as usual; the MDM itself must have every length (one error line otherwise)."""
    def rows(G, fast=3.0):
        row = {"batch_size": 1, "gen_length": G, "nfe": G, "tokens_per_s": 1.0, "agreement": 1.0}
        return [dict(row, run="llada", speedup=1.0), dict(row, run="graphs", speedup=fast, tokens_per_s=fast)]

    texts = {"llada": ["a b"], "graphs": ["a b"]}
    mdm = _bench_dir(tmp_path / "mdm", rows(512) + rows(1024), texts)
    late = _bench_dir(tmp_path / "late", rows(1024, fast=5.0), texts)
    results, md = tmp_path / "results.json", tmp_path / "decoding.md"
    results.write_text("{}")
    md.write_text("<!-- decode-results:begin -->\n<!-- decode-results:end -->\n")
    args = ["--results", str(results), "--markdown", str(md)]
    code, err = run_results(["--mdm", mdm, "--by-model", "late", late, *args], capsys, monkeypatch)
    assert code in (0, None), err
    keys = json.loads(results.read_text())
    assert keys["decode_speedup_len1024"]["by_model"]["late"]["value"] == 5.0
    late512 = keys["decode_speedup_len512"]["by_model"]["late"]
    assert late512["value"] is None and "length 512" in late512["missing"]
    assert keys["decode_tokens_per_s_b1"]["by_model"]["late"]["value"] is None  # its head length is 512
    best = keys["decode_speedup_len1024"]["best_by_model"]  # the key's value stays the MDM's
    assert (best["name"], best["value"], keys["decode_speedup_len1024"]["value"]) == ("late", 5.0, 3.0)
    assert keys["decode_speedup_len512"]["best_by_model"]["name"] == "mdm"  # late has no 512 figure
    code, err = run_results(["--mdm", late, *args, "--overwrite"], capsys, monkeypatch)
    assert code == 2 and len(err) == 1 and "no llada row at batch 1, length 512" in err[0]
